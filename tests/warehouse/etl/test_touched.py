"""What a run reports as touched covers every fact row whose contribution to an aggregate changed, and no more
than it must: checked against the warehouse's own rows before and after incremental runs of the demo source,
which has late commits, events arriving days late and type-2 changes of tiers and agents."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.warehouse.conftest import HASH_KEY
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse import schema
from warehouse.connections import warehouse_url
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl
from warehouse.etl.derived import DerivedWrite
from warehouse.etl.touched import MAX_RANGES, Touched, _merged, _runs

SCALE = 0.05
HISTORICAL = {"tier_key": schema.dim_tier, "agent_key": schema.dim_agent}


class Recorder:
    """Derived tables that compute nothing: they keep what each run reported as touched."""

    def __init__(self) -> None:
        self.runs: list[list[Touched]] = []

    def build(self, connection: sa.Connection) -> list[DerivedWrite]:
        return []

    def refresh(self, connection: sa.Connection, touched: list[Touched], *, skip: set[str]) -> list[DerivedWrite]:
        self.runs.append(touched)
        return [DerivedWrite("recorder", "refreshed", len(touched), 0.0)]


Contribution = tuple[Any, ...]


def contributions(url: str) -> dict[str, set[Contribution]]:
    """Per fact table, each row with every column and the version each type-2 member resolves to at event time."""
    engine = sa.create_engine(warehouse_url(url), poolclass=sa.pool.NullPool)
    found: dict[str, set[Contribution]] = {}
    with engine.connect() as connection:
        for mapping in schema.FACTS:
            fact = mapping.table
            columns: list[Any] = [c for c in fact.columns if c.name != "source_updated_at"]
            joined: sa.FromClause = fact
            for column, dimension in HISTORICAL.items():
                if column in fact.c:
                    version = dimension.alias(f"{column}_version")
                    event_time = fact.c[mapping.event_time]
                    joined = joined.outerjoin(
                        version,
                        (version.c[column] == fact.c[column])
                        & (event_time >= version.c.valid_from)
                        & (event_time < version.c.valid_to),
                    )
                    columns.append(version.c.valid_from.label(f"{column}_version"))
            rows = connection.execute(sa.select(*columns).select_from(joined)).mappings()
            found[fact.name] = {(row[mapping.event_time], tuple(sorted(row.items()))) for row in rows}
    engine.dispose()
    return found


def covers(touched: list[Touched], table: str, row: Contribution) -> bool:
    event_time, items = row
    values = dict(items)
    return any(
        t.fact_table == table
        and (t.start is None or event_time >= t.start)
        and (t.end is None or event_time < t.end)
        and (t.member is None or values[t.member[0]] == t.member[1])
        for t in touched
    )


@pytest.mark.slow
def test_incremental_runs_touch_every_changed_contribution_and_little_else(warehouse: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=SCALE)
    recorder = Recorder()
    run_etl(source, warehouse, hash_key=HASH_KEY, derived=recorder)
    member_touches = 0
    for step in (1, 2, 3):
        before = contributions(warehouse)
        advance_demo_source(source, step=step, scale=SCALE)
        result = run_etl(source, warehouse, hash_key=HASH_KEY, derived=recorder)
        after, touched = contributions(warehouse), recorder.runs[-1]
        for table in after:
            changed = before[table] ^ after[table]
            missed = [row for row in changed if not covers(touched, table, row)]
            assert missed == [], (table, missed[:3])
            untouched = [row for row in after[table] if not covers(touched, table, row)]
            assert len(untouched) > len(after[table]) / 2, f"{table}: most old rows should stay untouched"
        assert before["fact_verifications"] != after["fact_verifications"]
        member_touches += sum(t.member is not None for t in touched)
        assert [(w.name, w.action, w.rows) for w in result.derived] == [("recorder", "refreshed", len(touched))]
    assert member_touches, "the demo's steps change tiers and agents: some member's facts must be touched"


def test_without_derived_tables_nothing_is_tracked(warehouse: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=0.01)
    assert run_etl(source, warehouse, hash_key=HASH_KEY).derived == []


def day(n: int) -> datetime:
    return datetime(2026, 1, 1) + timedelta(days=n)


def test_consecutive_days_form_one_range() -> None:
    assert _runs([day(0), day(1), day(2), day(5)]) == [(day(0), day(3)), (day(5), day(6))]


def test_many_ranges_merge_across_the_smallest_gaps() -> None:
    runs = [(day(3 * i), day(3 * i + 1)) for i in range(MAX_RANGES)] + [(day(3 * MAX_RANGES), day(3 * MAX_RANGES + 1))]
    runs[-1] = (day(3 * MAX_RANGES - 1), day(3 * MAX_RANGES))  # one day after the last: the smallest gap
    merged = _merged(list(runs))
    assert len(merged) == MAX_RANGES
    assert merged[-1] == (day(3 * (MAX_RANGES - 1)), day(3 * MAX_RANGES))
    assert merged[:-1] == runs[: MAX_RANGES - 1]


def test_a_run_records_what_its_derived_tables_did(warehouse: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.sqlite'}"
    generate_demo_source(source, scale=0.01)
    result = run_etl(source, warehouse, hash_key=HASH_KEY, derived=Recorder())
    engine = sa.create_engine(warehouse_url(warehouse), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        log = connection.execute(sa.select(schema.etl_run_rollups)).all()
    engine.dispose()
    assert [tuple(row) for row in log] == [(result.run_id, "recorder", "refreshed", result.derived[0].rows, 0.0)]


def _contract(contract_id: str, at: datetime, updated: datetime | None = None) -> dict[str, object]:
    return {"contract_id": contract_id, "created_at": at, "updated_at": updated or at, "agent_name": "bot"}


def test_a_version_opened_before_loaded_facts_and_a_moved_event_touch_them(source: SourceDB, warehouse: str) -> None:
    """The agent's new version starts before facts loaded earlier, which now resolve to it; a corrected event
    time moves a fact out of the day it was in. Neither lies in the days of the run's new rows."""
    source.insert("agents", {"agent_name": "bot", "agent_type": "data", "updated_at": T0 - timedelta(days=30)})
    source.insert(
        "action_contracts",
        _contract("early", T0 + timedelta(hours=2)),
        _contract("later", T0 + timedelta(hours=3)),
        _contract("moved", T0 - timedelta(days=5), updated=T0 + timedelta(hours=3)),
    )
    recorder = Recorder()
    run_etl(source.url, warehouse, hash_key=HASH_KEY, derived=recorder)
    before = contributions(warehouse)
    changed_at = T0 + timedelta(hours=1)
    source.update("agents", "bot", agent_type="ops", updated_at=changed_at)
    source.update("action_contracts", "moved", created_at=T0 - timedelta(days=1), updated_at=T0 + timedelta(hours=4))
    run_etl(source.url, warehouse, hash_key=HASH_KEY, derived=recorder)
    after, touched = contributions(warehouse), recorder.runs[-1]
    changed = before["fact_verifications"] ^ after["fact_verifications"]
    assert len(changed) == 6 and all(covers(touched, "fact_verifications", row) for row in changed)
    [bot] = {dict(items)["agent_key"] for _, items in after["fact_verifications"]}
    assert Touched("fact_verifications", changed_at, None, ("agent_key", bot)) in touched
    assert {(t.start, t.end) for t in touched if t.member is None and t.fact_table == "fact_verifications"} == {
        (day_of(T0 - timedelta(days=5)), day_of(T0 - timedelta(days=4))),
        (day_of(T0 - timedelta(days=1)), day_of(T0)),
    }


def day_of(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), datetime.min.time())
