"""One ETL run: lock the warehouse, load every source table, commit once.

The whole run is one warehouse transaction: the watermarks advance with the
rows they cover, so a run killed at any point leaves the warehouse as it was,
and bad input changes nothing. The run log is written around that transaction
so a failed or killed run still leaves a trace: a failed run's row keeps its
error and the per-table counts it had gathered.

Each source table is read in batches of at most ``batch_rows`` (what bounds
the run's memory): read as Arrow, parsed and checked in bulk, staged, and
merged into the warehouse by set-based SQL.
"""

from __future__ import annotations

import functools
import traceback
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from warehouse import schema
from warehouse.connections import display_url, exclusive_connection, source_engine, warehouse_engine
from warehouse.errors import HashKeyError
from warehouse.etl import data_version
from warehouse.etl.batches import read_batches
from warehouse.etl.derived import DerivedTables, DerivedWrite
from warehouse.etl.extract import BATCH_ROWS, check_contract, count_changed
from warehouse.etl.loads import LOADS, SourceLoad, member_stage_columns
from warehouse.etl.merge import (
    MergeCount,
    Staging,
    is_empty,
    merge_facts,
    merge_history,
    merge_members,
    replace_children,
    resolved,
)
from warehouse.etl.parse import Parser
from warehouse.etl.probe import unchanged_rows
from warehouse.etl.touched import Touched, TouchedDays, VersionChanges
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
    derived: list[DerivedWrite] = field(default_factory=list)


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
        batch_rows: int,
        touched: TouchedDays | None,
    ) -> None:
        self.source = source
        self.nullable_stamps = nullable_stamps
        self.warehouse = warehouse
        self.keyer = keyer
        self.progress = progress
        self.batch_rows = batch_rows
        self.touched = touched
        """The days of the facts the run inserts or replaces, when derived tables need them."""
        self.staging = Staging(warehouse)
        marks = schema.etl_watermarks
        self.watermarks = dict(warehouse.execute(sa.select(marks.c.source_table, marks.c.watermark)).all())
        self.tables = tables
        """Counts so far, the table being loaded included, appended to the caller's list so a failed run keeps them."""

    def load(self, load: SourceLoad) -> None:
        name = load.source.name
        stats = TableStats(name)
        self.tables.append(stats)
        since = self.watermarks.get(name)
        nullable = name in self.nullable_stamps
        unchanged = unchanged_rows(self.source, self.warehouse, load, since, nullable=nullable)
        if self.progress:
            changed = count_changed(self.source, load.source, since, nullable=nullable) if unchanged is None else 0
            self.progress.start(name, unchanged or changed)
        if unchanged is not None:  # the rows the overlap re-reads are all loaded already
            stats.rows_read = unchanged
            if self.progress:
                self.progress.advance(name, unchanged)
            return
        newest = since
        dimension, history = load.history, None
        if dimension is not None:  # its batches add up: the history is merged once, in the order of change
            history = self.staging.table(f"stage_{dimension.table.name}", member_stage_columns(dimension))
            self.staging.clear(history)
        fresh = load.fact is not None and is_empty(self.warehouse, load.fact.mapping.table)
        parser = Parser(load.source, self.scratch)
        batches = read_batches(self.source, load.source, since, nullable=nullable, batch_rows=self.batch_rows)
        with closing(batches):  # a failed batch stops the reader (and its thread) now, not when collected
            for batch in batches:
                parsed = parser.parse(batch)
                stats.rows_read += parsed.num_rows
                batch_newest = pc.max(parsed.column("updated_at")).as_py()
                newest = batch_newest if newest is None else max(newest, batch_newest)
                if history is not None:
                    self.staging.append(history, load.history_rows(parsed))
                else:
                    count = self._merge(load, parsed, fresh)
                    stats.rows_inserted += count.inserted
                    stats.rows_updated += count.updated
                if self.progress:
                    self.progress.advance(name, parsed.num_rows)
        if dimension is not None and history is not None:
            count = merge_history(self.warehouse, history, dimension)
            stats.rows_inserted, stats.rows_updated = count.inserted, count.updated
        if newest is not None and newest != since:
            marks = schema.etl_watermarks
            self.warehouse.execute(sa.delete(marks).where(marks.c.source_table == name))
            self.warehouse.execute(sa.insert(marks).values(source_table=name, watermark=newest, loaded_at=_now()))

    def _merge(self, load: SourceLoad, parsed: pa.Table, fresh: bool) -> MergeCount:
        """Upsert the batch into the members and the fact; the counts are the fact's, when there is one."""
        count = MergeCount()
        if load.members is not None:
            dimension = load.members
            stage = self.staging.table(f"stage_{dimension.table.name}", member_stage_columns(dimension))
            self.staging.fill(stage, load.member_rows(parsed))
            count = merge_members(self.warehouse, stage, dimension)
        if load.fact is not None:
            mapping = load.fact.mapping
            stage = self.staging.table(f"stage_{mapping.table.name}", load.fact.stage_columns)
            self.staging.fill(stage, load.fact.rows(parsed, self.keyer))
            members = load.fact.members
            touched = None if self.touched is None else (self.touched, mapping.event_time)
            count = merge_facts(
                self.warehouse, stage, mapping.table, mapping.natural_key, members, fresh=fresh, touched=touched
            )
            if load.children is not None and count.inserted + count.updated:
                children = load.children
                child_stage = self.staging.table(f"stage_{children.table.name}", children.stage_columns)
                self.staging.fill(child_stage, children.rows(self.scratch, parsed))
                parents = sa.select(stage.c[mapping.natural_key])
                stored = resolved(stage, members).subquery()
                replace_children(self.warehouse, child_stage, children.table, parents, stored, fresh=fresh)
        return count

    @functools.cached_property
    def scratch(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB for the SQL transforms of a batch (parsing, a trace's practices); opened when used."""
        scratch = duckdb.connect()
        scratch.execute("SET TimeZone = 'UTC'")
        scratch.execute("SET enable_progress_bar = false")  # DuckDB would draw one on stderr for a long batch
        return scratch

    def close(self) -> None:
        if "scratch" in vars(self):
            self.scratch.close()


def run_etl(
    source_url: str,
    warehouse_url: str,
    *,
    hash_key: str,
    lock_timeout: float = 600.0,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
    derived: DerivedTables | None = None,
) -> EtlResult:
    """Load everything that changed in the source since the last run; safe to repeat and to run concurrently.

    ``derived`` tables (rollups) are built or refreshed in the same transaction as the facts they derive from, so
    no reader ever sees the two disagree.
    """
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
        writes: list[DerivedWrite] = []
        try:
            with warehouse.begin(), source.connect() as source_connection:
                _check_hash_key(warehouse, keyer)
                versions = None if derived is None else VersionChanges(warehouse)
                touched = None if derived is None else TouchedDays()
                run = _Run(source_connection, warehouse, keyer, progress, tables, nullable_stamps, batch_rows, touched)
                try:
                    for load in LOADS:
                        run.load(load)
                finally:
                    run.close()
                if derived is not None and versions is not None and touched is not None:
                    writes = _maintain(warehouse, derived, [*touched.ranges(), *versions.touched(warehouse)])
                _record_tables(warehouse, run_id, tables)
                _record_derived(warehouse, run_id, writes)
                if writes or any(stats.rows_inserted or stats.rows_updated for stats in tables):
                    data_version.advance(warehouse, run_id)
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
    return EtlResult(run_id, started_at, finished_at, tables, writes)


def _maintain(warehouse: sa.Connection, derived: DerivedTables, touched: list[Touched]) -> list[DerivedWrite]:
    built = derived.build(warehouse)
    return [*built, *derived.refresh(warehouse, touched, skip={write.name for write in built})]


def _record_derived(warehouse: sa.Connection, run_id: str, writes: list[DerivedWrite]) -> None:
    if writes:
        rows = [
            {"run_id": run_id, "rollup": w.name, "action": w.action, "rows": w.rows, "seconds": w.seconds}
            for w in writes
        ]
        warehouse.execute(sa.insert(schema.etl_run_rollups), rows)


def _record_tables(warehouse: sa.Connection, run_id: str, tables: list[TableStats]) -> None:
    if tables:
        warehouse.execute(sa.insert(schema.etl_run_tables), [{"run_id": run_id, **vars(stats)} for stats in tables])
