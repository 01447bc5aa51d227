"""``grace-metrics etl`` as a person sees it: one paragraph per problem, the warehouse untouched, quiet when asked.

Each bad input ends with a non-zero exit and one paragraph on stderr naming
the problem: no stack trace and never "unexpected error". The warehouse is
left exactly as it was, watermarks included (or is never created).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from graphql_api.cli import main
from tests.warehouse.conftest import HASH_KEY, hold_duckdb_file, query, snapshot
from tests.warehouse.sourcedb import T0, SourceDB

LATER = T0 + timedelta(hours=1)


@dataclass
class Setup:
    source: SourceDB
    warehouse: str
    tmp_path: Path


def _etl(source: str, warehouse: str, *options: str) -> int:
    return main(["etl", "--source", source, "--warehouse", warehouse, "--hash-key", HASH_KEY, *options])


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Setup]:
    """A small SQLite source already loaded once into a DuckDB warehouse."""
    source = SourceDB(f"sqlite:///{tmp_path / 'grace.sqlite'}")
    source.loosen("agent_queries")
    source.insert("agent_queries", {"query_id": "q1", "created_at": T0, "updated_at": T0})
    source.insert("action_contracts", {"contract_id": "c1", "created_at": T0, "updated_at": T0})
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    assert _etl(source.url, warehouse, "--quiet") == 0
    capsys.readouterr()
    yield Setup(source, warehouse, tmp_path)
    source.dispose()


def _bad_timestamp(s: Setup) -> tuple[str, str]:
    s.source.insert("action_contracts", {"contract_id": "c2", "created_at": T0, "updated_at": LATER})
    s.source.execute("UPDATE action_contracts SET created_at = 'yesterday' WHERE contract_id = 'c2'")
    return s.source.url, s.warehouse


def _bad_integer(s: Setup) -> tuple[str, str]:
    s.source.insert("agent_queries", {"query_id": "q2", "created_at": T0, "latency_ms": "fast", "updated_at": LATER})
    return s.source.url, s.warehouse


def _null_key(s: Setup) -> tuple[str, str]:
    s.source.insert("agent_queries", {"query_id": None, "created_at": T0, "updated_at": LATER})
    return s.source.url, s.warehouse


def _missing_table_and_column(s: Setup) -> tuple[str, str]:
    s.source.execute("DROP TABLE agent_feedback")
    s.source.execute("ALTER TABLE agents DROP COLUMN capabilities")
    return s.source.url, s.warehouse


CASES: list[tuple[str, Callable[[Setup], tuple[str, str]], str]] = [
    (
        "missing-source-file",
        lambda s: (f"sqlite:///{s.tmp_path / 'none.sqlite'}", s.warehouse),
        "none.sqlite' does not exist",
    ),
    ("missing-table-and-column", _missing_table_and_column, "table agents has no column capabilities"),
    ("bad-timestamp", _bad_timestamp, "action_contracts row 'c2': column created_at holds 'yesterday'"),
    ("bad-integer", _bad_integer, "agent_queries row 'q2': column latency_ms holds 'fast', which is not an integer"),
    ("null-key", _null_key, "agent_queries row None: column query_id holds None"),
    (
        "unsupported-warehouse",
        lambda s: (s.source.url, f"sqlite:///{s.tmp_path}/w.db"),
        "w.db' is not supported; use duckdb",
    ),
    (
        "unreachable-source",
        lambda s: ("postgresql://app:pw@127.0.0.1:1/grace", s.warehouse),
        "cannot read the source database",
    ),
    (
        "unreachable-warehouse",
        lambda s: (s.source.url, "postgresql://etl:pw@127.0.0.1:1/dw"),
        "cannot open the warehouse",
    ),
    ("duckdb-without-path", lambda s: (s.source.url, "duckdb://"), "names no file"),
    (
        "missing-warehouse-directory",
        lambda s: (s.source.url, f"duckdb:///{s.tmp_path}/no/w.duckdb"),
        "does not exist; create it",
    ),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_paragraph_and_changes_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str], make: Callable[[Setup], tuple[str, str]], message: str
) -> None:
    before = snapshot(setup.warehouse)
    marks = query(setup.warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1")
    source, warehouse = make(setup)
    assert _etl(source, warehouse) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert err.count("error: ") == 1, err
    error = err[err.index("error: ") :].strip()  # after the progress bars, if the run got that far
    assert message in error, err
    assert "\n\n" not in error, "more than one paragraph"
    assert ":pw@" not in err, "a password was printed"
    assert snapshot(setup.warehouse) == before
    assert query(setup.warehouse, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1") == marks
    assert not (setup.tmp_path / "w.db").exists() and not (setup.tmp_path / "no").exists()


def test_lock_timeout_is_one_paragraph(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    with hold_duckdb_file(sa.make_url(setup.warehouse).database or ""):
        assert _etl(setup.source.url, setup.warehouse, "--lock-timeout", "0.5", "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: another process held the DuckDB warehouse") and "raise --lock-timeout" in err, err
    assert _etl(setup.source.url, setup.warehouse, "--lock-timeout", "0.5", "--quiet") == 0


def test_quiet_prints_nothing(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup.source.insert("agent_queries", {"query_id": "q2", "created_at": T0, "updated_at": LATER})
    assert _etl(setup.source.url, setup.warehouse, "--quiet") == 0
    assert capsys.readouterr() == ("", "")
    assert query(setup.warehouse, "SELECT count(*) FROM fact_queries") == [(2,)]


def test_summary_table_counts_each_source_table(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    setup.source.insert("agent_queries", {"query_id": "q2", "created_at": T0, "updated_at": LATER})
    assert _etl(setup.source.url, setup.warehouse) == 0
    out, err = capsys.readouterr()
    assert "ETL run" in out and "source table" in out
    [queries] = [line for line in out.splitlines() if "agent_queries" in line]
    assert re.findall(r"\d+", queries) == ["2", "1", "0"], out  # read (q1 again, in the overlap), inserted, updated
    assert "Traceback" not in err
