"""The ``grace-metrics`` command line.

Every failure the user can fix is one paragraph on stderr and a non-zero exit;
a stack trace only appears for bugs, and only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warehouse.errors import WarehouseError
from warehouse.etl import EtlResult, run_etl

HASH_KEY_ENV = "GRACE_METRICS_HASH_KEY"

_err = Console(stderr=True)


class CommandError(Exception):
    """A problem with how a command was called, reported as one paragraph."""


class ProgressBars:
    """Draws one bar per source table on stderr as the ETL reads it."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> ProgressBars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, table: str, total: int) -> None:
        self._tasks[table] = self._progress.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        self._progress.advance(self._tasks[table], rows)


def print_etl_summary(result: EtlResult, console: Console) -> None:
    table = Table(title=f"ETL run {result.run_id[:8]} ({(result.finished_at - result.started_at).total_seconds():.1f}s)")
    table.add_column("source table")
    for heading in ("read", "inserted", "updated"):
        table.add_column(heading, justify="right")
    for stats in result.tables:
        table.add_row(stats.source_table, f"{stats.rows_read:,}", f"{stats.rows_inserted:,}", f"{stats.rows_updated:,}")
    console.print(table)


def _hash_key(args: argparse.Namespace) -> str:
    key = args.hash_key or os.environ.get(HASH_KEY_ENV)
    if not key:
        raise CommandError(
            f"no user-hash key: set {HASH_KEY_ENV} (or pass --hash-key) to a secret that stays the same for "
            "this warehouse; user ids are only stored as keyed hashes."
        )
    return key


def _etl(args: argparse.Namespace) -> None:
    options = {"hash_key": _hash_key(args), "lock_timeout": args.lock_timeout}
    if args.quiet:
        run_etl(args.source, args.warehouse, **options)
        return
    with ProgressBars(_err) as bars:
        result = run_etl(args.source, args.warehouse, progress=bars, **options)
    print_etl_summary(result, Console())


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
    etl.add_argument("--source", required=True, help="SQLAlchemy URL of the operational database (SQLite or PostgreSQL)")
    etl.add_argument("--warehouse", required=True, help="SQLAlchemy URL of the warehouse (duckdb:///PATH or PostgreSQL)")
    etl.add_argument("--hash-key", help=f"secret for hashing user ids (default: ${HASH_KEY_ENV})")
    etl.add_argument("--lock-timeout", type=float, default=600.0, help="seconds to wait for another run (default 600)")
    etl.add_argument("--quiet", action="store_true", help="no progress and no summary, for scripts")
    etl.set_defaults(handler=_etl)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except (CommandError, WarehouseError) as exc:
        _err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        _err.print("interrupted; nothing partial was committed.")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        _err.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc}\nRun again with --debug for details.", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
