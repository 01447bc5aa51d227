"""Terminal output shared by the commands: progress bars and summary tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from warehouse.etl import EtlResult


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


def print_etl_summary(result: EtlResult, console: Console) -> None:
    table = Table(title=f"ETL run {result.run_id[:8]} ({(result.finished_at - result.started_at).total_seconds():.1f}s)")
    table.add_column("source table")
    for heading in ("read", "inserted", "updated"):
        table.add_column(heading, justify="right")
    for stats in result.tables:
        table.add_row(stats.source_table, f"{stats.rows_read:,}", f"{stats.rows_inserted:,}", f"{stats.rows_updated:,}")
    console.print(table)
