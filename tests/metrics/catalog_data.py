"""The catalog dataset: one small, nasty source loaded by three ETL runs (with changes between them)
into a DuckDB and a PostgreSQL warehouse, and the source as each run saw it for the reference.

Random but reproducible rows; members known, registered late (tier_3, scout) and never registered;
instants that slice differently in UTC and in Berlin; type-2 changes between runs; late rows.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from metrics.compiler import MetricRequest
from metrics.engine import MetricsEngine
from metrics.registry import Registry
from metrics.results import QueryResult
from tests.metrics.reference import Reference, Snapshot, read_snapshot
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.etl import run_etl
from warehouse.source import EVENT_TABLES, SOURCE_TABLES

HASH_KEY = "catalog-secret"
BERLIN = "Europe/Berlin"

# Members and the references facts make to them: known ones, ones registered only
# by the second run (inferred: tier_3, scout) and ones that never exist (unknown).
TIERS = ["tier_0", "tier_1", "tier_2", "tier_3", "tier_9"]
AGENTS = ["analyst", "fixer", "helper", "scout", "ghost"]
ACTORS = ["alice", "bob", "ci", "mallory"]
COMPONENTS = ["api", "scheduler", "legacy"]
MISSIONS = ["m1", "m2", "m3", "m4", "m5", "m404"]
USERS = ["u1", "u2", "u3", "ü-4"]
TRACES: list[dict[str, Any]] = [
    {},
    {"plan": {}},
    {"plan": {"steps": []}, "rules": {"fired": ["r1"]}},
    {"plan": {"steps": [{"kind": "practice", "detail": "tdd"}]}},
    {
        "plan": {
            "steps": [
                {"kind": "practice", "detail": "tdd"},
                {"kind": "tool", "detail": "grep"},
                {"kind": "practice", "detail": "tdd"},
                {"kind": "practice", "detail": "review"},
            ]
        }
    },
    {
        "plan": {"steps": [{"kind": "practice", "detail": "pairing"}, {"kind": "tool", "detail": "tdd"}]},
        "inference": {"rationale": ["x"]},
    },
]

# Instants that slice differently in UTC and in Berlin: the end of summer time
# (02:30 happens twice), a Sunday night that is Monday in Berlin, New Year's Eve.
EDGES = [
    datetime(2025, 10, 26, 0, 30),
    datetime(2025, 10, 26, 1, 30),
    datetime(2025, 10, 25, 22, 30),
    datetime(2025, 10, 26, 23, 30, 0, 250),
]
LATE_EVENTS = [datetime(2024, 12, 31, 23, 30), datetime(2025, 10, 22, 12, 0, 0, 500_000)]
TIER_1_RENAMED = (
    datetime(2025, 11, 4, 10, 0),
    datetime(2025, 11, 5, 12, 0),
)  # twice between runs: the run sees the second
FIXER_RETYPED = datetime(2025, 11, 5, 8, 0)
TIER_2_RENAMED = datetime(2025, 11, 8, 0, 0)


class Builder:
    """Writes random but reproducible rows with a clock for ``updated_at`` that only moves forward."""

    def __init__(self, source: SourceDB, seed: int) -> None:
        self.source = source
        self.rng = random.Random(seed)
        self.clock = T0 - timedelta(days=1)
        self.serial = 0

    def tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def pick(self, values: Sequence[Any], none: float = 0.0) -> Any:
        return None if self.rng.random() < none else self.rng.choice(values)

    def maybe(self, value: Any, none: float = 0.25) -> Any:
        return None if self.rng.random() < none else value

    def later(self, start: datetime, most_seconds: int) -> datetime:
        return start + timedelta(seconds=self.rng.randint(1, most_seconds), microseconds=self.rng.choice([0, 123_456]))

    def key(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def contract(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        status = self.pick(["pending", "verified", "verified", "failed"])
        row = {
            "contract_id": self.key("c"),
            "mission_id": self.pick(MISSIONS, none=0.3),
            "action_type": self.pick(["deploy", "scale", "restart"]),
            "component_name": self.pick(COMPONENTS),
            "tier_id": self.pick(TIERS),
            "actor_id": self.pick(ACTORS),
            "agent_name": self.pick(AGENTS, none=0.2),
            "status": status,
            "rolled_back": self.rng.random() < 0.3,
            "confidence": self.maybe(round(self.rng.random(), 3)),
            "duration_ms": self.maybe(self.rng.randint(20, 9000)),
            "created_at": at,
            "completed_at": None if status == "pending" else self.later(at, 600),
        }
        return row | overrides

    def error(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        row = {
            "event_id": self.key("e"),
            "occurred_at": at,
            "component_name": self.pick(COMPONENTS),
            "tier_id": self.pick(TIERS, none=0.2),
            "agent_name": self.pick(AGENTS, none=0.2),
            "error_type": self.pick(["timeout", "oom", "auth"]),
            "severity": self.pick(["low", "medium", "high", "critical"]),
            "auto_resolved": self.rng.random() < 0.4,
            "resolved_at": self.maybe(self.later(at, 7200), none=0.35),
        }
        return row | overrides

    def approval(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        status = self.pick(["pending", "approved", "approved", "rejected", "expired"])
        resolved = None if status == "pending" else self.maybe(self.later(at, 1200), none=0.2)
        row = {
            "approval_id": self.key("a"),
            "requested_at": at,
            "resolved_at": resolved,
            "status": status,
            "agent_name": self.pick(AGENTS, none=0.2),
            "approver_id": self.pick(ACTORS, none=0.25),
            "tier_id": self.pick(TIERS),
            "component_name": self.pick(COMPONENTS),
            "risk_score": self.maybe(round(self.rng.random(), 2)),
            "sla_seconds": self.pick([60, 300, 900]),
            "contract_id": self.maybe("c1"),
        }
        return row | overrides

    def query(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        row = {
            "query_id": self.key("q"),
            "created_at": at,
            "agent_name": self.pick(AGENTS),
            "conversation_id": self.pick(["conv-1", "conv-2", "conv-3"]),
            "user_id": self.pick(USERS),
            "latency_ms": self.rng.randint(5, 4000),
            "approved": self.pick([True, False, None]),
            "human_edited": self.rng.random() < 0.3,
            "error_occurred": self.rng.random() < 0.2,
            "result_size_bytes": self.maybe(self.rng.randint(0, 10_000)),
            "cost_usd": round(self.rng.random() / 10, 5),
        }
        return row | overrides

    def feedback(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        scores = {
            name: self.maybe(self.rng.randint(1, 5), none=0.3)
            for name in ("clarity_score", "accuracy_score", "tone_score")
        }
        row = {
            "feedback_id": self.key("f"),
            "query_id": self.maybe("q1"),
            "agent_name": self.pick(AGENTS),
            "conversation_id": "conv-1",
            "annotator_id": self.pick(ACTORS),
            "created_at": at,
            "annotated_at": self.maybe(self.later(at, 3600)),
            "safe_to_send": self.pick([True, False, None]),
            "labels": self.pick([[], ["tone"]]),
            **scores,
        }
        return row | overrides

    def trace(self, at: datetime, **overrides: Any) -> dict[str, Any]:
        row = {
            "trace_id": self.key("t"),
            "created_at": at,
            "user_id": self.pick(USERS),
            "agent_name": self.pick(AGENTS),
            "facet": self.pick(["code", "ops"], none=0.3),
            "mode": self.pick(["fast", "deep"], none=0.3),
            "confidence": self.maybe(round(self.rng.random(), 3)),
            "safety_level": self.pick(["normal", "normal", "elevated", "critical"]),
            "latency_ms": self.rng.randint(10, 3000),
            "trace": self.pick(TRACES),
        }
        return row | overrides

    def events(self, times: Sequence[datetime], **overrides: Any) -> None:
        """One row of every event table (and a mission) at each instant."""
        makers: dict[str, Callable[..., dict[str, Any]]] = {
            "action_contracts": self.contract,
            "error_events": self.error,
            "approval_requests": self.approval,
            "agent_queries": self.query,
            "agent_feedback": self.feedback,
            "agent_traces": self.trace,
        }
        for table, make in makers.items():
            names = {c.name for c in next(t for t in EVENT_TABLES if t.name == table).columns}
            relevant = {name: value for name, value in overrides.items() if name in names}
            self.source.insert(table, *({**make(at, **relevant), "updated_at": self.tick()} for at in times))

    def random_times(self, start: datetime, end: datetime, count: int) -> list[datetime]:
        span = int((end - start).total_seconds())
        return [
            start + timedelta(seconds=self.rng.randint(0, span), microseconds=self.rng.choice([0, 0, 654_321]))
            for _ in range(count)
        ]

    def missions(self, *rows: tuple[str, str, datetime, datetime | None]) -> None:
        self.source.insert(
            "missions",
            *(
                {
                    "mission_id": m,
                    "status": s,
                    "started_at": at,
                    "completed_at": end,
                    "mission_type": self.pick(["deploy", "migrate"]),
                    "updated_at": self.tick(),
                }
                for m, s, at, end in rows
            ),
        )

    def update(self, table: str, key: str, **values: Any) -> None:
        self.source.update(table, key, **values, updated_at=self.tick())


def first_run(build: Builder) -> None:
    registered = T0 - timedelta(days=30)
    source = build.source
    source.insert(
        "autonomy_tiers",
        *(
            {
                "tier_id": f"tier_{lvl}",
                "tier_name": name,
                "tier_level": lvl,
                "max_risk_score": risk,
                "updated_at": registered,
            }
            for lvl, name, risk in [(0, "Observe", 0.2), (1, "Assist", 0.4), (2, "Operational", 0.6)]
        ),
    )
    source.insert(
        "agents",
        *(
            {
                "agent_name": a,
                "agent_type": t,
                "sla_target_seconds": sla,
                "cost_per_query_usd": cost,
                "updated_at": registered,
            }
            for a, t, sla, cost in [
                ("analyst", "data", 30, 0.01),
                ("fixer", "engineer", 60, 0.25),
                ("helper", "support", 30, 0.5),
            ]
        ),
    )
    source.insert(
        "actors",
        *(
            {"actor_id": a, "actor_type": t, "team": team, "display_name": a.title(), "updated_at": registered}
            for a, t, team in [("alice", "human", "ops"), ("bob", "human", None), ("ci", "system", "platform")]
        ),
    )
    source.insert(
        "components",
        *(
            {"component_name": c, "kernel": k, "updated_at": registered}
            for c, k in [("api", "ingress"), ("scheduler", "orchestration")]
        ),
    )
    start = datetime(2025, 10, 13)
    build.missions(
        ("m1", "completed", start, start + timedelta(hours=3, microseconds=5)),
        ("m2", "failed", start + timedelta(days=2), start + timedelta(days=3)),
        ("m3", "running", start + timedelta(days=4), None),
        ("m4", "cancelled", datetime(2025, 10, 26, 0, 45), datetime(2025, 10, 26, 1, 50)),
    )
    build.events(build.random_times(start, T0 - timedelta(days=1), 40))
    build.events(EDGES)


def second_run(build: Builder) -> None:
    build.clock = datetime(2025, 11, 3, 12, 0)
    build.source.insert(
        "autonomy_tiers",
        {
            "tier_id": "tier_3",
            "tier_name": "Autonomous",
            "tier_level": 3,
            "max_risk_score": 0.9,
            "updated_at": datetime(2025, 11, 4),
        },
    )
    build.source.insert(
        "agents",
        {
            "agent_name": "scout",
            "agent_type": "qa",
            "sla_target_seconds": 10,
            "cost_per_query_usd": 0.125,
            "updated_at": datetime(2025, 11, 4),
        },
    )
    build.source.update("autonomy_tiers", "tier_1", tier_name="Assist v2", updated_at=TIER_1_RENAMED[0])
    build.source.update(
        "autonomy_tiers", "tier_1", tier_name="Copilot", max_risk_score=0.45, updated_at=TIER_1_RENAMED[1]
    )
    build.source.update("agents", "fixer", agent_type="ops", updated_at=FIXER_RETYPED)
    build.clock = datetime(2025, 11, 7, 6, 0)
    build.events(build.random_times(T0, datetime(2025, 11, 7), 40))
    build.events([*TIER_1_RENAMED, FIXER_RETYPED], tier_id="tier_1", agent_name="fixer")
    build.events(LATE_EVENTS)
    build.missions(
        ("m5", "completed", datetime(2025, 11, 4, 8), datetime(2025, 11, 4, 9, 30)),
        ("m6", "running", datetime(2025, 11, 5), None),
    )
    build.update("missions", "m3", status="completed", completed_at=datetime(2025, 11, 4, 1, 2, 3, 456_789))
    build.update("actors", "alice", team="sre")
    build.update(
        "action_contracts",
        "c1",
        status="verified",
        completed_at=datetime(2025, 11, 5),
        duration_ms=4242,
        rolled_back=True,
    )
    build.source.insert(
        "approval_requests",
        {
            **build.approval(datetime(2025, 11, 6)),
            "status": "approved",
            "resolved_at": datetime(2025, 11, 6, 0, 5),
            "sla_seconds": 300,
            "updated_at": build.tick(),
        },
    )


def third_run(build: Builder, loaded: Snapshot) -> None:
    """More events, a tier renamed again, and a row that commits three minutes behind rows already loaded."""
    newest = max(row["updated_at"] for table in SOURCE_TABLES for row in loaded[table.name])
    build.source.insert(
        "action_contracts",
        {**build.contract(datetime(2025, 11, 6, 18), tier_id="tier_2"), "updated_at": newest - timedelta(minutes=3)},
    )
    build.source.insert(
        "agent_traces",
        {**build.trace(datetime(2025, 11, 6, 19), trace=TRACES[4]), "updated_at": newest - timedelta(minutes=4)},
    )
    build.clock = newest + timedelta(hours=1)
    build.source.update("autonomy_tiers", "tier_2", tier_name="Operations", updated_at=TIER_2_RENAMED)
    build.update("components", "scheduler", kernel="resilience")
    build.events(build.random_times(datetime(2025, 11, 7, 9), datetime(2025, 11, 10), 30))
    build.events([TIER_2_RENAMED], tier_id="tier_2")


@dataclass
class Loaded:
    reference: Reference
    urls: dict[str, str]


def load_catalog_data(root: Path, postgresql_url: str) -> Loaded:
    """Build the source under ``root``, run the ETL three times into both warehouses, keep the snapshots."""
    source = SourceDB(f"sqlite:///{root / 'source.sqlite'}")
    urls = {"duckdb": f"duckdb:///{root / 'warehouse.duckdb'}", "postgresql": postgresql_url}
    build, snapshots = Builder(source, seed=20251103), []
    for stage in (first_run, second_run, lambda b: third_run(b, snapshots[-1])):
        stage(build)
        snapshots.append(read_snapshot(source.url))
        for url in urls.values():
            run_etl(source.url, url, hash_key=HASH_KEY)
    source.dispose()
    urls["postgresql"] = urls["postgresql"].replace("postgresql+psycopg", "postgresql+asyncpg")
    return Loaded(Reference(snapshots, hash_key=HASH_KEY), urls)


class Engines:
    """One engine per backend on a private event loop, for synchronous tests."""

    def __init__(self, urls: dict[str, str], registry: Registry | None = None) -> None:
        self._runner = asyncio.Runner()
        self._engines = {name: self._runner.run(MetricsEngine.connect(url, registry)) for name, url in urls.items()}

    def query(self, backend: str, request: MetricRequest) -> QueryResult:
        return self._runner.run(self._engines[backend].query(request))

    def fetch(self, backend: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of hand-written (or golden) SQL, straight from the backend."""
        return self._runner.run(self._engines[backend].backend.fetch(sql, [], timeout=30))

    def close(self) -> None:
        for engine in self._engines.values():
            self._runner.run(engine.close())
        self._runner.close()
