"""Terminal output shared by the commands: progress bars and summary tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warehouse.etl import DerivedWrite, EtlResult


class ProgressBars:
    """One bar per table on the console: the ETL reading, or the demo generator writing."""

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

    def __call__(self, table: str, done: int, total: int) -> None:
        """The demo generator's callback: absolute progress per table."""
        if table not in self._tasks:
            self.start(table, total)
        self._progress.update(self._tasks[table], completed=done, total=total)


def print_etl_summary(results: Sequence[EtlResult], console: Console, title: str | None = None) -> None:
    """One table for one or several runs: rows read, inserted and updated per source table, summed over the runs."""
    seconds = sum((r.finished_at - r.started_at).total_seconds() for r in results)
    table = Table(title=f"{title or f'ETL run {results[0].run_id[:8]}'} ({seconds:.1f}s)")
    table.add_column("source table")
    for heading in ("read", "inserted", "updated"):
        table.add_column(heading, justify="right")
    totals: dict[str, list[int]] = {}
    for result in results:
        for stats in result.tables:
            row = totals.setdefault(stats.source_table, [0, 0, 0])
            for i, count in enumerate((stats.rows_read, stats.rows_inserted, stats.rows_updated)):
                row[i] += count
    for source_table, counts in totals.items():
        table.add_row(source_table, *(f"{count:,}" for count in counts))
    console.print(table)
    writes = [write for result in results for write in result.derived]
    if writes:
        print_derived(writes, console, "rollups kept in step")


def print_derived(writes: Sequence[DerivedWrite], console: Console, title: str) -> None:
    """What each rollup did: built from all facts or refreshed where the run touched them, its rows and time."""
    table = Table(title=title)
    table.add_column("rollup")
    table.add_column("action")
    table.add_column("rows", justify="right")
    table.add_column("seconds", justify="right")
    for write in writes:
        table.add_row(write.name, write.action, f"{write.rows:,}", f"{write.seconds:.2f}")
    console.print(table)


def print_audit_tail(entries: Sequence[dict[str, Any]], console: Console) -> None:
    """The latest audit entries, oldest first, one line each; the hash is shortened to tell entries apart."""
    table = Table(title=f"audit log: latest {len(entries)} entries")
    for column in ("id", "time (UTC)", "caller", "role", "groups", "operation", "metrics", "dimensions"):
        table.add_column(column)
    for column in ("rows", "suppressed", "ms"):
        table.add_column(column, justify="right")
    table.add_column("outcome")
    table.add_column("hash")
    for e in entries:
        table.add_row(
            str(e["id"]),
            e["logged_at"].isoformat(sep=" ", timespec="seconds"),
            e["caller"],
            e["role"] or "-",
            ", ".join(e["groups"]),
            e["operation"] or "-",
            ", ".join(e["metrics"]),
            ", ".join(e["dimensions"]),
            str(e["rows_returned"]),
            str(e["suppressed_rows"]),
            f"{e['duration_ms']:.1f}",
            e["outcome"],
            e["hash"][:12],
        )
    console.print(table)
