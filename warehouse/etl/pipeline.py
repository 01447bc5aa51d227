"""One ETL run: lock the warehouse, load every source table, commit once.

The whole run is one warehouse transaction: the watermarks advance with the
rows they cover, so a run killed at any point leaves the warehouse as it was,
and bad input changes nothing. The run log is written around that transaction
so a failed or killed run still leaves a trace: a failed run's row keeps its
error and the per-table counts it had gathered.
"""

from __future__ import annotations

import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from warehouse import schema
from warehouse.connections import display_url, exclusive_connection, source_engine, warehouse_engine
from warehouse.errors import HashKeyError
from warehouse.etl.extract import check_contract, count_changed, read_changed
from warehouse.etl.loads import LOADS, LoadContext, SourceLoad
from warehouse.etl.members import DIMENSIONS, MemberKeys, apply_history
from warehouse.etl.merge import MergeCount, Merger
from warehouse.etl.rows import parse_row
from warehouse.etl.values import UserKeyer


class Progress(Protocol):
    def start(self, table: str, total: int) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


@dataclass
class TableStats:
    source_table: str
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0


@dataclass
class EtlResult:
    run_id: str
    started_at: datetime
    finished_at: datetime
    tables: list[TableStats] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check_hash_key(connection: sa.Connection, keyer: UserKeyer) -> None:
    settings = schema.etl_settings
    stored = connection.execute(sa.select(settings.c.value).where(settings.c.name == "user_key_fingerprint")).scalar()
    if stored is None:
        connection.execute(sa.insert(settings).values(name="user_key_fingerprint", value=keyer.fingerprint))
    elif stored != keyer.fingerprint:
        raise HashKeyError(
            "the user-hash key differs from the one this warehouse was loaded with; user keys would no longer "
            "match. Use the original GRACE_METRICS_HASH_KEY, or load into a new warehouse."
        )


class _Run:
    def __init__(
        self,
        source: sa.Connection,
        warehouse: sa.Connection,
        keyer: UserKeyer,
        progress: Progress | None,
        tables: list[TableStats],
        nullable_stamps: frozenset[str],
    ) -> None:
        self.source = source
        self.nullable_stamps = nullable_stamps
        self.warehouse = warehouse
        self.progress = progress
        self.context = LoadContext({d.name: MemberKeys(warehouse, d) for d in DIMENSIONS}, keyer)
        self.mergers: dict[str, Merger] = {}
        self.tables = tables
        """Counts so far, the table being loaded included, appended to the caller's list so a failed run keeps them."""

    def merger(self, load: SourceLoad, index: int) -> Merger:
        target = load.targets[index]
        name = target.table.name
        if name not in self.mergers:
            self.mergers[name] = Merger(self.warehouse, target.table, load.natural_key, target.children)
        return self.mergers[name]

    def load(self, load: SourceLoad) -> None:
        stats = TableStats(load.source.name)
        self.tables.append(stats)
        marks = schema.etl_watermarks
        since = self.warehouse.execute(
            sa.select(marks.c.watermark).where(marks.c.source_table == load.source.name)
        ).scalar()
        nullable = load.source.name in self.nullable_stamps
        if self.progress:
            self.progress.start(load.source.name, count_changed(self.source, load.source, since, nullable=nullable))
        newest = since
        history_rows: list[dict[str, Any]] = []
        for batch in read_changed(self.source, load.source, since, nullable=nullable):
            rows = [load.prepare(parse_row(load.source, load.natural_key, raw)) for raw in batch]
            stats.rows_read += len(rows)
            batch_newest = max(row["updated_at"] for row in rows)
            newest = batch_newest if newest is None else max(newest, batch_newest)
            if load.history is not None:
                history_rows.extend(rows)
            else:
                count = self._merge(load, rows)
                stats.rows_inserted += count.inserted
                stats.rows_updated += count.updated
            if self.progress:
                self.progress.advance(load.source.name, len(rows))
        if load.history is not None:
            stats.rows_inserted, stats.rows_updated = apply_history(
                self.warehouse, load.history, self.context.keys[load.history.name], history_rows
            )
        if newest is not None and newest != since:
            self.warehouse.execute(sa.delete(marks).where(marks.c.source_table == load.source.name))
            self.warehouse.execute(
                sa.insert(marks).values(source_table=load.source.name, watermark=newest, loaded_at=_now())
            )

    def _merge(self, load: SourceLoad, rows: list[dict[str, Any]]) -> MergeCount:
        """Upsert the rows into every target; the counts are the last target's (the fact, for missions)."""
        count = MergeCount()
        for index, target in enumerate(load.targets):
            facts = [target.transform(row, self.context) for row in rows]
            for keys in self.context.keys.values():
                keys.flush(self.warehouse)
            children = (
                [child for row, fact in zip(rows, facts, strict=True) for child in target.child_rows(row, fact)]
                if target.child_rows
                else None
            )
            count = self.merger(load, index).merge(facts, children)
        return count


def run_etl(
    source_url: str,
    warehouse_url: str,
    *,
    hash_key: str,
    lock_timeout: float = 600.0,
    progress: Progress | None = None,
) -> EtlResult:
    """Load everything that changed in the source since the last run; safe to repeat and to run concurrently."""
    keyer = UserKeyer(hash_key)
    engine = warehouse_engine(warehouse_url)
    source = source_engine(source_url)
    nullable_stamps = check_contract(source)
    run_id = uuid.uuid4().hex
    started_at = _now()
    with exclusive_connection(engine, timeout=lock_timeout) as warehouse:
        with warehouse.begin():
            schema.create_schema(warehouse)
        runs = schema.etl_runs
        with warehouse.begin():
            warehouse.execute(sa.update(runs).where(runs.c.status == "running").values(status="abandoned"))
            warehouse.execute(
                sa.insert(runs).values(
                    run_id=run_id, started_at=started_at, status="running", source=display_url(source_url)
                )
            )
        tables: list[TableStats] = []
        try:
            with warehouse.begin(), source.connect() as source_connection:
                _check_hash_key(warehouse, keyer)
                run = _Run(source_connection, warehouse, keyer, progress, tables, nullable_stamps)
                for load in LOADS:
                    run.load(load)
                _record_tables(warehouse, run_id, tables)
                finished_at = _now()
                warehouse.execute(
                    sa.update(runs).where(runs.c.run_id == run_id).values(status="succeeded", finished_at=finished_at)
                )
        except BaseException as exc:
            with warehouse.begin():
                _record_tables(warehouse, run_id, tables)
                warehouse.execute(
                    sa.update(runs)
                    .where(runs.c.run_id == run_id)
                    .values(status="failed", finished_at=_now(), error="".join(traceback.format_exception_only(exc)))
                )
            raise
    source.dispose()
    engine.dispose()
    return EtlResult(run_id, started_at, finished_at, tables)


def _record_tables(warehouse: sa.Connection, run_id: str, tables: list[TableStats]) -> None:
    if tables:
        warehouse.execute(sa.insert(schema.etl_run_tables), [{"run_id": run_id, **vars(stats)} for stats in tables])
