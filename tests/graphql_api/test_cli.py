"""The command line: start-up failures are one paragraph and a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from graphql_api.cli import main
from graphql_api.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV, Settings


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
        ("duckdb:////nonexistent/warehouse.duckdb", "does not exist; run `grace-metrics etl` first"),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/none", "cannot connect to the PostgreSQL warehouse"),
    ],
)
def test_serve_with_an_unusable_warehouse_says_so(capsys: pytest.CaptureFixture[str], warehouse: str, message: str) -> None:
    assert message in _fails(capsys, "serve", "--warehouse", warehouse, "--port", "1")


def test_serve_with_a_file_that_is_not_a_warehouse(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    path = f"{tmp_path}/notes.duckdb"
    with open(path, "w") as file:
        file.write("not a database")
    assert "cannot open the DuckDB warehouse" in _fails(capsys, "serve", "--warehouse", f"duckdb:///{path}")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GRACE_METRICS_MAX_ROWS", "lots", "GRACE_METRICS_MAX_ROWS: 'lots' is not a whole number greater than 0"),
        ("GRACE_METRICS_MAX_ROWS", "-5", "GRACE_METRICS_MAX_ROWS: '-5' is not a whole number greater than 0"),
        ("GRACE_METRICS_STATEMENT_TIMEOUT", "nan", "GRACE_METRICS_STATEMENT_TIMEOUT: 'nan' is not a number of seconds"),
        ("GRACE_METRICS_MAX_TOKENS", "1e3", "GRACE_METRICS_MAX_TOKENS"),
        ("GRACE_METRICS_API_KEYS", "k:boss", "GRACE_METRICS_API_KEYS: 'k:boss' is not KEY:ROLE with a role of viewer, analyst, admin"),
    ],
)
def test_bad_settings_name_the_variable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    assert message in _fails(capsys, "serve", "--warehouse", "foo://bar")


@pytest.mark.parametrize("every", ["0", "-1"])
def test_etl_every_must_be_positive(capsys: pytest.CaptureFixture[str], every: str) -> None:
    assert "--etl-every must be a number of seconds greater than 0" in _fails(capsys, "serve", "--source", "sqlite:///s.sqlite", "--etl-every", every)


def test_serve_reads_the_warehouse_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WAREHOUSE_ENV, "foo://from-the-environment")
    assert "'foo://from-the-environment' is not supported" in _fails(capsys, "serve")
    assert Settings.from_env({}).warehouse_url == DEFAULT_WAREHOUSE
    assert Settings.from_env({WAREHOUSE_ENV: "duckdb:///x.duckdb"}, warehouse_url="duckdb:///flag.duckdb").warehouse_url == "duckdb:///flag.duckdb"


def test_settings_limits_come_from_the_environment() -> None:
    env = {"GRACE_METRICS_MAX_DEPTH": "5", "GRACE_METRICS_MAX_ALIASES": "6", "GRACE_METRICS_MAX_TOKENS": "700", "GRACE_METRICS_MAX_BODY_BYTES": "8000", "GRACE_METRICS_STATEMENT_TIMEOUT": "2.5"}
    settings = Settings.from_env(env)
    assert (settings.max_depth, settings.max_aliases, settings.max_tokens, settings.max_body_bytes, settings.statement_timeout) == (5, 6, 700, 8000, 2.5)
