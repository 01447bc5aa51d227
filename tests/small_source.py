"""A small, hand-made source whose numbers tests can work out by hand, loaded on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.warehouse.sourcedb import T0, SourceDB

TIERS = [("tier_0", "Observe", 0), ("tier_1", "Assist", 1), ("tier_2", "Operational", 2)]
AGENTS = [("analyst", "data"), ("fixer", "engineer"), ("helper", "support")]


def build_source(url: str) -> SourceDB:
    source = SourceDB(url)
    source.insert(
        "autonomy_tiers",
        *(
            {"tier_id": t, "tier_name": n, "tier_level": lvl, "updated_at": T0 - timedelta(days=30)}
            for t, n, lvl in TIERS
        ),
    )
    source.insert(
        "agents", *({"agent_name": a, "agent_type": kind, "updated_at": T0 - timedelta(days=30)} for a, kind in AGENTS)
    )
    source.insert("components", {"component_name": "api", "kernel": "ingress", "updated_at": T0})
    source.insert(
        "action_contracts",
        *(
            {
                "contract_id": f"c{i}",
                "created_at": T0 + timedelta(hours=7 * i),
                "updated_at": T0,
                "tier_id": TIERS[i % 3][0],
                "agent_name": AGENTS[i % 3][0] if i % 4 else None,
                "status": ("verified", "verified", "failed", "pending")[i % 4],
                "duration_ms": 100 + 37 * i,
            }
            for i in range(60)
        ),
    )
    source.insert(
        "error_events",
        *(
            {
                "event_id": f"e{i}",
                "occurred_at": T0 + timedelta(hours=11 * i),
                "updated_at": T0,
                "tier_id": TIERS[i % 2][0],
                "agent_name": AGENTS[i % 3][0],
            }
            for i in range(20)
        ),
    )
    source.insert(
        "agent_queries",
        *(
            {
                "query_id": f"q{i}",
                "created_at": T0 + timedelta(hours=5 * i),
                "updated_at": T0,
                "agent_name": AGENTS[i % 3][0],
                "latency_ms": 50 * (i + 1),
                "user_id": f"u{i % 5}",
            }
            for i in range(30)
        ),
    )
    return source
