"""The command line: start-up failures are one paragraph and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from graphql_api.cli import main
from graphql_api.graphiql import EXAMPLE_QUERY
from graphql_api.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV, Settings
from tests.graphql_api.conftest import CUSTOM_CONFIG, free_port
from tests.graphql_api.test_graphiql import OPERATIONS

ROOT = Path(__file__).parents[2]


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "--debug" not in err
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("warehouse", "message"),
    [
        ("foo://bar", "warehouse URL 'foo://bar' is not supported"),
        (
            "duckdb:////nonexistent/warehouse.duckdb",
            "has not been loaded yet. Load it from your operational database with "
            "`grace-metrics etl --source SOURCE_URL --warehouse duckdb:////nonexistent/warehouse.duckdb`, or add "
            "`--source SOURCE_URL` to this serve command",
        ),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/none", "cannot connect to the PostgreSQL warehouse"),
    ],
)
def test_serve_with_an_unusable_warehouse_says_so(
    capsys: pytest.CaptureFixture[str], warehouse: str, message: str
) -> None:
    assert message in _fails(capsys, "serve", "--warehouse", warehouse, "--port", "1")


def test_serve_with_a_file_that_is_not_a_warehouse(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = f"{tmp_path}/notes.duckdb"
    with open(path, "w") as file:
        file.write("not a database")
    assert "cannot open the DuckDB warehouse" in _fails(capsys, "serve", "--warehouse", f"duckdb:///{path}")


def test_serve_on_a_taken_port_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = _fails(capsys, "serve", "--warehouse", "foo://bar", "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in message


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GRACE_METRICS_MAX_ROWS", "lots", "GRACE_METRICS_MAX_ROWS: 'lots' is not a whole number greater than 0"),
        ("GRACE_METRICS_MAX_ROWS", "-5", "GRACE_METRICS_MAX_ROWS: '-5' is not a whole number greater than 0"),
        ("GRACE_METRICS_STATEMENT_TIMEOUT", "nan", "GRACE_METRICS_STATEMENT_TIMEOUT: 'nan' is not a number of seconds"),
        ("GRACE_METRICS_MAX_TOKENS", "1e3", "GRACE_METRICS_MAX_TOKENS"),
        (
            "GRACE_METRICS_API_KEYS",
            "k:boss",
            "GRACE_METRICS_API_KEYS: 'k:boss' is not KEY:ROLE or sha256:HEXDIGEST:ROLE with a role of "
            "viewer, analyst, admin, research",
        ),
    ],
)
def test_bad_settings_name_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert message in _fails(capsys, "serve", "--warehouse", "foo://bar")


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """A bad value is refused while parsing: usage, one line naming the argument, exit 2."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and "--debug" not in err, err
    return " ".join(err.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        *(
            (
                ("serve", "--etl-every", every),
                f"argument --etl-every: {every!r} is not a number of seconds greater than 0",
            )
            for every in ("nan", "inf", "0", "-1", "soon")
        ),
        *(
            (("serve", "--port", port), f"argument --port: {port!r} is not a port number from 1 to 65535")
            for port in ("80000", "-5", "0", "http")
        ),
        (("demo", "--port", "65536"), "argument --port: '65536' is not a port number"),
        (("demo", "--scale", "0"), "argument --scale: '0' is not a number greater than 0"),
        (("demo", "--scale", "nan"), "argument --scale: 'nan' is not a number greater than 0"),
        (
            ("etl", "--source", "s", "--warehouse", "w", "--lock-timeout", "inf"),
            "argument --lock-timeout: 'inf' is not a number of seconds greater than 0",
        ),
    ],
)
def test_bad_values_name_the_argument(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    assert message in _refused(capsys, *argv)


def test_demo_dir_must_be_a_directory_that_can_be_made(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("")
    assert f"argument --dir: '{tmp_path}/notes' is a file" in _refused(capsys, "demo", "--dir", str(tmp_path / "notes"))
    missing = tmp_path / "no" / "such"
    assert f"argument --dir: the directory '{tmp_path}/no' does not exist" in _refused(
        capsys, "demo", "--dir", str(missing)
    )
    assert not (tmp_path / "no").exists()


def _unreadable(directory: Path, kind: str) -> str:
    """A config file of ``kind`` in ``directory``; returns what the error must say about it."""
    path = directory / f"{kind}.yaml"
    if kind == "latin1":
        path.write_bytes("metrics:\n  caf\xe9: {}\n".encode("latin-1"))
        return "not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8"
    if kind == "dangling":
        path.symlink_to(directory / "gone.yaml")
        return f"a symbolic link to '{directory}/gone.yaml', which does not exist"
    if kind == "directory":
        path.mkdir()
        return "a directory, not a YAML file"
    path.write_text("metrics: {}\n")
    path.chmod(0)
    return "not readable by this user (permission denied)"


@pytest.mark.parametrize(
    "kind",
    [
        "latin1",
        "dangling",
        "directory",
        pytest.param(
            "unreadable", marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without permission")
        ),
    ],
)
def test_an_unreadable_config_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str) -> None:
    reason = _unreadable(tmp_path, kind)
    for command in ("serve", "validate"):
        code = main([command, "--config", str(tmp_path)])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and f"{tmp_path}/{kind}.yaml:0: error: {reason}" in err and "--debug" not in err, err


def test_serve_reads_the_warehouse_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WAREHOUSE_ENV, "foo://from-the-environment")
    assert "'foo://from-the-environment' is not supported" in _fails(capsys, "serve")
    assert Settings.from_env({}).warehouse_url == DEFAULT_WAREHOUSE
    assert (
        Settings.from_env({WAREHOUSE_ENV: "duckdb:///x.duckdb"}, warehouse_url="duckdb:///flag.duckdb").warehouse_url
        == "duckdb:///flag.duckdb"
    )


def test_the_docker_image_takes_its_warehouse_from_the_environment() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(
        rf"^ENV .*{WAREHOUSE_ENV}=duckdb:////data/warehouse\.duckdb", dockerfile, flags=re.MULTILINE | re.DOTALL
    )
    assert "--warehouse" not in dockerfile.split("ENTRYPOINT", 1)[1] and not re.search(
        r"^CMD .*--warehouse", dockerfile, flags=re.MULTILINE
    )


def test_the_docker_image_on_an_empty_volume_says_how_to_fill_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The image's own command and environment, with /data an empty directory: the message says what to run."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    environment = dockerfile.split("\nENV ", 1)[1]
    warehouse = re.search(rf"{WAREHOUSE_ENV}=(\S+)", environment).group(1)  # type: ignore[union-attr]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert entrypoint[:2] == ["grace-metrics", "serve"]
    monkeypatch.setenv(WAREHOUSE_ENV, warehouse.replace("/data/", f"{tmp_path}/"))
    monkeypatch.setenv("GRACE_METRICS_API_KEYS", "s3cret:viewer")  # beyond loopback, the image needs keys or tokens
    message = _fails(capsys, *entrypoint[1:])
    assert f"grace-metrics etl --source SOURCE_URL --warehouse duckdb:///{tmp_path}/warehouse.duckdb" in message
    assert "add `--source SOURCE_URL` to this serve command (in Docker: after the image name)" in message
    assert re.search(r"^#\s+--source postgresql://\S+", dockerfile, flags=re.MULTILINE), "the header shows --source"


def test_settings_limits_come_from_the_environment() -> None:
    env = {
        "GRACE_METRICS_MAX_DEPTH": "5",
        "GRACE_METRICS_MAX_ALIASES": "6",
        "GRACE_METRICS_MAX_TOKENS": "700",
        "GRACE_METRICS_MAX_BODY_BYTES": "8000",
        "GRACE_METRICS_STATEMENT_TIMEOUT": "2.5",
    }
    settings = Settings.from_env(env)
    assert (
        settings.max_depth,
        settings.max_aliases,
        settings.max_tokens,
        settings.max_body_bytes,
        settings.statement_timeout,
    ) == (5, 6, 700, 8000, 2.5)


# --- validate, schema, help -----------------------------------------------------------------------

SUBCOMMANDS = ("demo", "etl", "serve", "validate", "schema")


def test_validate_a_good_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(CUSTOM_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "custom_metric" in out


def test_validate_a_bad_config_prints_every_problem_with_file_and_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(
        "metrics:\n"
        "  broken_count:\n"
        "    label: Broken\n"
        "    fact: errors\n"
        "    aggregation: count\n"
        "  other_count:\n"
        "    label: Other\n"
        "    description: Counts a fact that does not exist.\n"
        "    fact: nowhere\n"
        "    aggregation: count\n"
    )
    assert main(["validate", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(str(tmp_path / "bad.yaml"))]
    assert len(lines) >= 2 and all(
        re.match(rf"{re.escape(str(tmp_path / 'bad.yaml'))}:\d+: error: ", line) for line in lines
    ), err
    assert "problem(s) found" in err


def test_schema_prints_the_committed_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and re.search(rf"examples?:\n  grace-metrics {command}", out), out


# --- the README's first command -------------------------------------------------------------------


def readme_first_query() -> str:
    match = re.search(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    assert match, "README.md has no ```graphql block"
    return match.group(1)


def test_demo_serves_the_readme_query_and_the_graphiql_examples(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "graphql_api.cli", "demo", "--port", str(port), "--config", str(CUSTOM_CONFIG)],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(f"{base}/healthz"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        body = httpx.post(f"{base}/graphql", json={"query": readme_first_query()}, timeout=30).json()
        assert "errors" not in body, body
        result = body["data"]["metrics"]
        assert (
            result["rows"]
            and result["totalCount"] >= len(result["rows"])
            and all(row["verificationCount"] > 0 for row in result["rows"])
        )
        for operation in OPERATIONS:
            answer = httpx.post(
                f"{base}/graphql", json={"query": EXAMPLE_QUERY, "operationName": operation}, timeout=30
            ).json()
            assert "errors" not in answer and answer["data"], (operation, answer)
        assert "3 ETL runs" in log.read_text()
        custom = httpx.post(f"{base}/graphql", json={"query": "{ metrics { rows { criticalErrorCount } } }"}).json()
        assert custom["data"]["metrics"]["rows"][0]["criticalErrorCount"] >= 0, custom  # demo --config's own metric
        process.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop, no ETL or error message
        assert process.wait(timeout=20) == 0, log.read_text()
        ending = log.read_text().split("Shutting down", 1)[1]
        assert "Finished server process" in ending and not re.search(r"ETL|interrupted|error|Traceback", ending), ending
    finally:
        process.terminate()
        process.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
