"""The ``grace-metrics`` command line.

Every failure the user can fix is one paragraph on stderr and a non-zero exit;
a stack trace only appears for bugs, and only with ``--debug``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from graphql_api.console import ProgressBars, print_derived, print_etl_summary
from graphql_api.rollups import RegistryRollups
from graphql_api.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV, ListenError, Settings, SettingsError
from metrics.errors import ConfigError, MetricsError
from metrics.loader import config_files
from metrics.policy import load_policies
from metrics.registry import config_directories, load_registry
from warehouse.errors import WarehouseError
from warehouse.etl import build_derived, run_etl

HASH_KEY_ENV = "GRACE_METRICS_HASH_KEY"

_err = Console(stderr=True, soft_wrap=True)


class CommandError(Exception):
    """A problem with how a command was called, reported as one paragraph."""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535")
    return port


def _positive(what: str) -> Callable[[str], float]:
    """A finite number greater than 0 (so neither nan nor inf), described as ``what`` in the error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} greater than 0")
        return value

    return parse


def _demo_directory(text: str) -> Path:
    """An existing directory, or a new one in an existing, writable directory (created by the demo)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; give a directory for the demo databases")
    where = path if path.exists() else path.parent
    if not where.is_dir():
        raise argparse.ArgumentTypeError(f"the directory {str(where)!r} does not exist; create it or choose another")
    if not os.access(where, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {str(where)!r}; choose a directory you may write")
    return path


def _hash_key(args: argparse.Namespace) -> str:
    key = args.hash_key or os.environ.get(HASH_KEY_ENV)
    if not key:
        raise CommandError(
            f"no user-hash key: set {HASH_KEY_ENV} (or pass --hash-key) to a secret that stays the same for "
            "this warehouse; user ids are only stored as keyed hashes."
        )
    return key


def _etl(args: argparse.Namespace) -> None:
    rollups = RegistryRollups(load_registry(args.config or []))
    options = {"hash_key": _hash_key(args), "lock_timeout": args.lock_timeout, "derived": rollups}
    if args.quiet:
        run_etl(args.source, args.warehouse, **options)
        return
    with ProgressBars(_err) as bars:
        result = run_etl(args.source, args.warehouse, progress=bars, **options)
    print_etl_summary([result], Console())


def _rollups(args: argparse.Namespace) -> None:
    rollups = RegistryRollups(load_registry(args.config or []))
    writes = build_derived(args.warehouse, rollups, lock_timeout=args.lock_timeout)
    declared = len(rollups.registry.rollups)
    if writes:
        print_derived(writes, Console(), f"rollups: {len(writes)} of {declared} changed")
    else:
        Console().print(f"ok: the {declared} declared rollups are built and current", highlight=False)


def _validate(args: argparse.Namespace) -> None:
    directories = config_directories(args.config or [])
    try:
        registry = load_registry(args.config or [])
        policies = load_policies(directories, registry)
    except ConfigError as error:
        for issue in error.issues:
            _err.print(str(issue), highlight=False, markup=False)
        raise CommandError(f"{len(error.issues)} problem(s) found; nothing was changed.") from None
    files = len(config_files([d for d in directories if d.is_dir()]))
    Console().print(
        f"ok: {len(registry.metrics)} metrics, {len(registry.dimensions)} dimensions, {len(registry.facts)} facts, "
        f"{len(policies.policies)} access policies "
        f"from {files} file(s) in {', '.join(map(str, directories))}",
        highlight=False,
    )


def _schema(args: argparse.Namespace) -> None:
    from graphql_api.schema import build_schema

    print(build_schema(load_registry(args.config or [])).as_str())


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except SettingsError as error:
        raise CommandError(f"{error}. Fix or unset the variable and start again.") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _serve(args: argparse.Namespace) -> None:
    from graphql_api.server import serve

    settings = _settings(warehouse_url=args.warehouse, config_dirs=tuple(Path(c) for c in args.config or ()))
    _check_exposure(settings, args)
    serve(
        settings,
        host=args.host,
        port=args.port,
        source=args.source,
        etl_every=args.etl_every,
        hash_key=_hash_key(args) if args.source else None,
        workers=args.workers,
    )


def _demo(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from graphql_api.demo import run_demo

    settings = _settings(config_dirs=tuple(Path(c) for c in args.config or ()))
    _check_exposure(settings, args)
    settings = replace(settings, access=replace(settings.access, audit_fail_open=True))  # a demo keeps answering
    run_demo(settings, host=args.host, port=args.port, directory=args.dir, scale=args.scale, console=_err)


def _audit(args: argparse.Namespace) -> None:
    from graphql_api.console import print_audit_tail
    from warehouse.audit import AuditLog, verify

    log = AuditLog(args.warehouse or os.environ.get(WAREHOUSE_ENV, DEFAULT_WAREHOUSE))
    try:
        if args.action == "tail":
            print_audit_tail(log.tail(args.count), Console())
            return
        verdict = verify(log)
    finally:
        log.close()
    if verdict.broken is not None:
        raise AuditBroken(
            f"the audit chain is broken at entry {verdict.broken}: {verdict.reason}. "
            f"The {verdict.entries} entries before it verify."
        )
    Console().print(f"ok: the audit chain of {verdict.entries} entries verifies", highlight=False)


class AuditBroken(Exception):
    """``audit verify`` found an entry that does not verify: exit 1, not 2 (the command itself worked)."""


def _check_exposure(settings: Settings, args: argparse.Namespace) -> None:
    from graphql_api.auth import AuthError, check_exposure

    try:
        check_exposure(settings, args.host, insecure=args.insecure)
    except AuthError as error:
        raise CommandError(str(error)) from None


def _add_server_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    command.add_argument(
        "--insecure", action="store_true", help="serve beyond loopback without API keys or tokens (everyone is admin)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grace-metrics",
        description="Grace Metrics: a GraphQL semantic metrics layer for agent-platform operations data.",
    )
    parser.add_argument("--debug", action="store_true", help="show stack traces of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    etl = commands.add_parser(
        "etl",
        help="incremental load from an operational database into a warehouse",
        description="Load every source row changed since the last run, exactly once. Safe to repeat and to run "
        "concurrently.",
        epilog="examples:\n"
        "  grace-metrics etl --source sqlite:///grace.sqlite --warehouse duckdb:///warehouse.duckdb\n"
        "  grace-metrics etl --source postgresql://app@db/grace --warehouse postgresql://etl@dw/metrics --quiet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    etl.add_argument(
        "--source", required=True, help="SQLAlchemy URL of the operational database (SQLite or PostgreSQL)"
    )
    etl.add_argument(
        "--warehouse", required=True, help="SQLAlchemy URL of the warehouse (duckdb:///PATH or PostgreSQL)"
    )
    etl.add_argument("--hash-key", help=f"secret for hashing user ids (default: ${HASH_KEY_ENV})")
    etl.add_argument(
        "--lock-timeout",
        type=_positive("a number of seconds"),
        default=600.0,
        help="seconds to wait for another run (default 600)",
    )
    etl.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    etl.add_argument("--quiet", action="store_true", help="no progress and no summary, for scripts")
    etl.set_defaults(handler=_etl)

    rollups = commands.add_parser(
        "rollups",
        help="build the declared rollups now, without loading anything",
        description="build: create the declared rollups a warehouse lacks, rebuild those whose definition changed "
        "and drop those no longer declared, as the next ETL run would. Runs under the ETL's lock.",
        epilog="example:\n  grace-metrics rollups build --warehouse duckdb:///warehouse.duckdb --config ./metrics",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rollups.add_argument("action", choices=["build"])
    rollups.add_argument(
        "--warehouse", required=True, help="SQLAlchemy URL of the warehouse (duckdb:///PATH or PostgreSQL)"
    )
    rollups.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    rollups.add_argument(
        "--lock-timeout",
        type=_positive("a number of seconds"),
        default=600.0,
        help="seconds to wait for a running ETL (default 600)",
    )
    rollups.set_defaults(handler=_rollups)

    demo = commands.add_parser(
        "demo",
        help="generate demo data, load the embedded warehouse and serve the API with GraphiQL",
        description="Build a demo operational database, load it into a DuckDB warehouse and serve GraphQL with "
        "GraphiQL at http://HOST:PORT/graphql. Needs nothing but this package.",
        epilog="examples:\n  grace-metrics demo\n  grace-metrics demo --port 9000 --scale 5\n"
        "  grace-metrics demo --config ./metrics",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_server_options(demo)
    demo.add_argument(
        "--dir", type=_demo_directory, default=".grace-demo", help="where the demo databases go (default .grace-demo)"
    )
    demo.add_argument(
        "--scale", type=_positive("a number"), default=1.0, help="data size; 1 = 20,000 verified actions (default 1)"
    )
    demo.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    demo.set_defaults(handler=_demo)

    serve = commands.add_parser(
        "serve",
        help="serve the GraphQL API over an existing warehouse",
        description="Serve GraphQL (POST /graphql), GraphiQL (GET /graphql) and /healthz over a warehouse.",
        epilog="examples:\n  grace-metrics serve --warehouse duckdb:///warehouse.duckdb\n"
        "  grace-metrics serve --warehouse postgresql+asyncpg://api@dw/metrics --config ./metrics\n"
        "  grace-metrics serve --warehouse duckdb:///w.duckdb --source sqlite:///grace.sqlite --etl-every 60\n"
        f"  {WAREHOUSE_ENV}=postgresql+asyncpg://api@dw/metrics grace-metrics serve --port 9000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--warehouse", help=f"SQLAlchemy URL of the warehouse (default: ${WAREHOUSE_ENV}, else {DEFAULT_WAREHOUSE})"
    )
    _add_server_options(serve)
    serve.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    serve.add_argument("--source", help="also run the ETL from this source inside the server")
    serve.add_argument(
        "--etl-every",
        type=_positive("a number of seconds"),
        default=60.0,
        help="seconds between in-server ETL runs (default 60)",
    )
    serve.add_argument("--hash-key", help=f"secret for hashing user ids (default: ${HASH_KEY_ENV})")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="server processes sharing the port, one per core (default 1; PostgreSQL warehouses only)",
    )
    serve.set_defaults(handler=_serve)

    validate = commands.add_parser(
        "validate",
        help="check metric config and print every problem with file and line",
        epilog="example:\n  grace-metrics validate --config ./metrics",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    validate.set_defaults(handler=_validate)

    audit = commands.add_parser(
        "audit",
        help="verify the query audit log's hash chain, or show its latest entries",
        description="verify: exit 0 and the number of entries when the chain holds, exit 1 naming the first entry "
        "that does not. tail: the latest entries as a table.",
        epilog="examples:\n  grace-metrics audit verify --warehouse duckdb:///warehouse.duckdb\n"
        "  grace-metrics audit tail --warehouse postgresql://api@dw/metrics -n 50",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("action", choices=["verify", "tail"])
    audit.add_argument(
        "--warehouse", help=f"SQLAlchemy URL of the warehouse (default: ${WAREHOUSE_ENV}, else {DEFAULT_WAREHOUSE})"
    )
    audit.add_argument("-n", "--count", type=int, default=20, help="entries to show with tail (default 20)")
    audit.set_defaults(handler=_audit)

    schema = commands.add_parser(
        "schema",
        help="print the GraphQL SDL",
        description="Print the schema generated from the metric registry (built-in catalog plus --config).",
        epilog="examples:\n  grace-metrics schema > schema.graphql\n"
        "  grace-metrics schema --config ./metrics | grep -i critical",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    schema.add_argument("--config", action="append", help="a directory of your own metric YAML (repeatable)")
    schema.set_defaults(handler=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except (CommandError, ListenError, WarehouseError, MetricsError) as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except AuditBroken as exc:
        _err.print(f"[bold red]audit:[/] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        _err.print("interrupted; nothing partial was committed." if args.command == "etl" else "interrupted.")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        _err.print(
            f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}\nRun again with --debug for details.",
            highlight=False,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
