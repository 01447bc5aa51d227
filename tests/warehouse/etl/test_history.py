"""Type-2 history and inferred members, checked through the as-of join the query layer uses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from tests.warehouse.conftest import query
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse import schema
from warehouse.etl import EtlResult

Load = Callable[[], EtlResult]

AS_OF = (
    "SELECT f.contract_id, t.tier_name, a.agent_type FROM fact_verifications f "
    "LEFT JOIN dim_tier t ON t.tier_key = f.tier_key AND f.created_at >= t.valid_from AND f.created_at < t.valid_to "
    "LEFT JOIN dim_agent a ON a.agent_key = f.agent_key AND f.created_at >= a.valid_from AND f.created_at < a.valid_to "
    "ORDER BY 1"
)


def _contract(contract_id: str, at: object, updated: object = None, **extra: object) -> dict[str, object]:
    return {"contract_id": contract_id, "created_at": at, "updated_at": updated or at, "agent_name": "bot", **extra}


def test_rename_opens_a_version_and_facts_keep_the_name_of_their_time(
    source: SourceDB, warehouse: str, load: Load
) -> None:
    source.insert(
        "autonomy_tiers", {"tier_id": "tier_0", "tier_name": "Observe", "updated_at": T0 - timedelta(days=30)}
    )
    source.insert("agents", {"agent_name": "bot", "agent_type": "data", "updated_at": T0 - timedelta(days=30)})
    source.insert("action_contracts", _contract("before", T0 - timedelta(days=1)))
    load()
    renamed_at = T0 + timedelta(hours=1)
    source.update("autonomy_tiers", "tier_0", tier_name="Watch", updated_at=renamed_at)
    source.update("agents", "bot", agent_type="ops", updated_at=renamed_at + timedelta(minutes=30))
    source.insert(
        "action_contracts",
        _contract("after", renamed_at + timedelta(hours=1)),
        _contract("between", renamed_at + timedelta(minutes=10)),
        # Late-arriving: happened before the rename, loaded after it.
        _contract("late", T0 - timedelta(days=2), updated=renamed_at + timedelta(hours=2)),
    )
    load()
    assert query(warehouse, AS_OF) == [
        ("after", "Watch", "ops"),
        ("before", "Observe", "data"),
        ("between", "Watch", "data"),
        ("late", "Observe", "data"),
    ]
    assert query(
        warehouse, "SELECT tier_name, valid_to = TIMESTAMP '9999-12-31', is_current FROM dim_tier ORDER BY valid_from"
    ) == [
        ("Observe", False, False),
        ("Watch", True, True),
    ]
    load()
    assert query(warehouse, "SELECT count(*) FROM dim_tier") == [(2,)]


def test_unchanged_attributes_open_no_version(source: SourceDB, warehouse: str, load: Load) -> None:
    source.insert("agents", {"agent_name": "bot", "updated_at": T0})
    load()
    source.update("agents", "bot", updated_at=T0 + timedelta(hours=1))
    load()
    assert query(warehouse, "SELECT count(*), max(source_updated_at) FROM dim_agent") == [(1, T0 + timedelta(hours=1))]


def test_inferred_member_takes_real_attributes_for_all_earlier_facts(
    source: SourceDB, warehouse: str, load: Load
) -> None:
    source.insert("action_contracts", _contract("early", T0 - timedelta(days=3), tier_id="tier_9"))
    source.insert("actors", {"actor_id": "bob", "team": "sre", "updated_at": T0})
    source.insert("action_contracts", _contract("mine", T0, actor_id="ghost", mission_id="m1"))
    load()
    assert query(warehouse, AS_OF) == [("early", None, None), ("mine", None, None)]
    assert query(warehouse, "SELECT agent_name, is_inferred FROM dim_agent") == [("bot", True)]
    assert query(warehouse, "SELECT actor_id, team, is_inferred FROM dim_actor ORDER BY 1") == [
        ("alice", None, True),
        ("bob", "sre", False),
        ("ghost", None, True),
    ]

    later = T0 + timedelta(days=1)
    source.insert("agents", {"agent_name": "bot", "agent_type": "qa", "updated_at": later})
    source.insert("autonomy_tiers", {"tier_id": "tier_9", "tier_name": "Experimental", "updated_at": later})
    source.insert("actors", {"actor_id": "ghost", "team": "ml", "updated_at": later})
    source.insert("missions", {"mission_id": "m1", "started_at": T0, "updated_at": later})
    load()
    assert query(warehouse, AS_OF) == [("early", "Experimental", "qa"), ("mine", None, "qa")]
    assert query(warehouse, "SELECT actor_id, team, is_inferred FROM dim_actor ORDER BY 1") == [
        ("alice", None, True),
        ("bob", "sre", False),
        ("ghost", "ml", False),
    ]
    assert query(warehouse, "SELECT count(*), min(mission_type) FROM dim_mission") == [(1, "deploy")]
    assert query(
        warehouse,
        "SELECT m.mission_id FROM fact_verifications f JOIN dim_mission m USING (mission_key) "
        "WHERE contract_id = 'mine'",
    ) == [("m1",)]


def test_inferred_member_changed_again_chains_versions(source: SourceDB, warehouse: str, load: Load) -> None:
    """Inferred, then real, then renamed twice: early facts keep the first real version, later ones their own."""
    source.insert("action_contracts", _contract("early", T0 - timedelta(days=3), tier_id="tier_9"))
    load()
    source.insert("autonomy_tiers", {"tier_id": "tier_9", "tier_name": "Experimental", "updated_at": T0})
    source.insert("agents", {"agent_name": "bot", "agent_type": "qa", "updated_at": T0})
    load()
    renamed = [T0 + timedelta(days=1), T0 + timedelta(days=2)]
    source.update("autonomy_tiers", "tier_9", tier_name="Pilot", updated_at=renamed[0])
    source.update("agents", "bot", agent_type="ops", updated_at=renamed[0])
    source.insert("action_contracts", _contract("pilot", renamed[0] + timedelta(hours=1), tier_id="tier_9"))
    load()
    source.update("autonomy_tiers", "tier_9", tier_name="General", updated_at=renamed[1])
    source.insert("action_contracts", _contract("general", renamed[1] + timedelta(hours=1), tier_id="tier_9"))
    load()
    assert query(warehouse, AS_OF) == [
        ("early", "Experimental", "qa"),
        ("general", "General", "ops"),
        ("pilot", "Pilot", "ops"),
    ]
    versions = query(
        warehouse, "SELECT tier_name, valid_from, valid_to, is_current, is_inferred FROM dim_tier ORDER BY valid_from"
    )
    assert versions == [
        ("Experimental", schema.BEGINNING_OF_TIME, renamed[0], False, False),
        ("Pilot", renamed[0], renamed[1], False, False),
        ("General", renamed[1], schema.END_OF_TIME, True, False),
    ]
    assert len({key for (key,) in query(warehouse, "SELECT tier_key FROM dim_tier")}) == 1
