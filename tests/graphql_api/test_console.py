"""The ETL summary: several runs (the demo's load and its later changes) in one table."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from graphql_api.console import print_etl_summary
from warehouse.etl import EtlResult, TableStats

T = datetime(2025, 11, 3)


def _run(run_id: str, seconds: float, *stats: TableStats) -> EtlResult:
    return EtlResult(run_id, T, T + timedelta(seconds=seconds), list(stats))


def _printed(results: list[EtlResult], title: str | None = None) -> str:
    console = Console(record=True, width=100)
    print_etl_summary(results, console, title)
    return console.export_text()


def test_one_run_shows_its_id_and_counts() -> None:
    text = _printed([_run("abcdef123456", 1.5, TableStats("agents", 1200, 1000, 200))])
    assert "ETL run abcdef12 (1.5s)" in text and "1,200" in text and "1,000" in text


def test_several_runs_are_summed_per_table_under_the_callers_title() -> None:
    text = _printed(
        [
            _run("first", 2.0, TableStats("agents", 10, 10, 0), TableStats("error_events", 100, 100, 0)),
            _run("second", 0.5, TableStats("agents", 3, 1, 2), TableStats("error_events", 7, 7, 0)),
            _run("third", 0.5, TableStats("agents", 0, 0, 0), TableStats("error_events", 5, 4, 1)),
        ],
        "the demo's 3 ETL runs",
    )
    assert "the demo's 3 ETL runs (3.0s)" in text
    cells = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
    rows = {name: counts for name, *counts in cells}
    assert rows == {"agents": ["13", "11", "2"], "error_events": ["112", "111", "1"]}
