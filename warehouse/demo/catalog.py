"""The demo platform's members: tiers, agents, actors, components, and the ones nobody registered yet.

Weights say how often events reference a member, so slices by member are
uneven the way real traffic is. Late members are referenced by events from the
start but enter their reference table only at a given ``advance`` step (the
ETL must keep their facts under an unknown member until then); ghost ids are
referenced and never registered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    tier_id: str
    name: str
    level: int
    max_risk_score: float
    approval_sla_seconds: int
    weight: float


@dataclass(frozen=True)
class Agent:
    name: str
    agent_type: str
    capabilities: tuple[str, ...]
    sla_target_seconds: int
    cost_per_query_usd: float
    weight: float


@dataclass(frozen=True)
class Actor:
    actor_id: str
    actor_type: str
    display_name: str
    team: str | None
    weight: float
    approves: bool = False
    annotates: bool = False


@dataclass(frozen=True)
class Component:
    name: str
    kernel: str
    weight: float
    error_weight: float


TIERS: tuple[Tier, ...] = (
    Tier("tier_0", "Observe", 0, 0.2, 14_400, 0.30),
    Tier("tier_1", "Assist", 1, 0.45, 3_600, 0.34),
    Tier("tier_2", "Operational", 2, 0.7, 1_800, 0.26),
    Tier("tier_3", "Autonomous", 3, 0.9, 900, 0.10),
)

AGENT_TYPES: tuple[str, ...] = ("data", "engineer", "support", "marketing", "ai", "qa", "ops")

CAPABILITIES: dict[str, tuple[str, ...]] = {
    "data": ("sql", "dbt", "data_quality", "forecasting"),
    "engineer": ("git", "ci", "terraform", "code_review"),
    "support": ("tickets", "knowledge_base", "refunds", "escalation"),
    "marketing": ("copywriting", "seo", "campaigns", "segmentation"),
    "ai": ("rag", "evaluation", "fine_tuning", "prompt_design"),
    "qa": ("test_generation", "fuzzing", "regression", "accessibility"),
    "ops": ("deploy", "paging", "autoscaling", "cost_control"),
}

AGENTS: tuple[Agent, ...] = (
    Agent("atlas", "data", ("sql", "dbt", "data_quality"), 30, 0.012, 1.6),
    Agent("ledger", "data", ("sql", "forecasting"), 45, 0.009, 0.7),
    Agent("forge", "engineer", ("git", "ci", "code_review"), 120, 0.031, 1.4),
    Agent("anvil", "engineer", ("git", "terraform"), 180, 0.036, 0.6),
    Agent("helix", "support", ("tickets", "knowledge_base", "refunds"), 20, 0.004, 2.0),
    Agent("echo", "support", ("tickets", "escalation"), 25, 0.003, 0.9),
    Agent("muse", "marketing", ("copywriting", "seo", "campaigns"), 60, 0.008, 0.8),
    Agent("sage", "ai", ("rag", "evaluation"), 45, 0.052, 1.1),
    Agent("nova", "ai", ("rag", "prompt_design", "fine_tuning"), 90, 0.064, 0.5),
    Agent("probe", "qa", ("test_generation", "regression"), 90, 0.010, 0.8),
    Agent("sentinel", "ops", ("paging", "autoscaling"), 10, 0.015, 1.2),
    Agent("relay", "ops", ("deploy", "cost_control"), 15, 0.018, 0.7),
)

_HUMANS = (
    ("amara.okafor", "Amara Okafor", "platform", True, False),
    ("bruno.costa", "Bruno Costa", "platform", True, False),
    ("chen.wei", "Chen Wei", "platform", False, False),
    ("dana.levi", "Dana Levi", "security", True, False),
    ("elias.berg", "Elias Berg", "security", True, False),
    ("fatima.zahra", "Fatima Zahra", "data-science", False, True),
    ("goran.petrov", "Goran Petrov", "data-science", False, True),
    ("hana.sato", "Hana Sato", "data-science", False, True),
    ("ines.moreau", "Ines Moreau", "support", False, True),
    ("jonas.keller", "Jonas Keller", "support", True, True),
    ("kofi.mensah", "Kofi Mensah", "support", False, False),
    ("lena.novak", "Lena Novak", "growth", False, False),
    ("mateo.ruiz", "Mateo Ruiz", "growth", True, False),
    ("nadia.haddad", "Nadia Haddad", "growth", False, True),
    ("oscar.lind", "Oscar Lind", "operations", True, False),
    ("priya.nair", "Priya Nair", "operations", True, False),
    ("quinn.obrien", "Quinn O'Brien", "operations", False, False),
    ("rosa.silva", "Rosa Silva", "finance", True, False),
    ("samir.khan", "Samir Khan", "finance", False, False),
    ("tomas.horvat", "Tomas Horvat", "legal", True, False),
    ("uma.iyer", None, None, False, True),
    ("viktor.smirnov", None, None, False, False),
    ("wren.taylor", None, None, True, False),
    ("yara.aziz", None, None, False, True),
)
"""(login, display name, team, approves, annotates); a None display name means a contractor without a team."""

_SYSTEMS = (
    "scheduler",
    "ci-pipeline",
    "webhook-relay",
    "policy-bot",
    "backfill-runner",
    "monitoring",
    "billing-sync",
    "chatops",
)


def _humans() -> tuple[Actor, ...]:
    return tuple(
        Actor(
            actor_id=f"human:{login}",
            actor_type="human",
            display_name=name or login.replace(".", " ").title() + " (contractor)",
            team=team,
            weight=1.0 if team in ("platform", "operations", "data-science") else 0.5,
            approves=approves,
            annotates=annotates,
        )
        for login, name, team, approves, annotates in _HUMANS
    )


ACTORS: tuple[Actor, ...] = (
    _humans()
    + tuple(
        Actor(f"system:{name}", "system", f"{name.replace('-', ' ').title()} service", "platform", 1.5)
        for name in _SYSTEMS
    )
    + tuple(
        Actor(f"agent:{agent.name}", "agent", f"{agent.name.title()} agent", None, 2.0)
        for agent in AGENTS[::3] + AGENTS[1::3]
    )
)

COMPONENTS: tuple[Component, ...] = (
    Component("kernel-api", "core", 1.5, 0.8),
    Component("policy-engine", "core", 1.2, 0.6),
    Component("contract-verifier", "core", 2.0, 0.9),
    Component("api-gateway", "ingress", 1.4, 1.6),
    Component("webhook-receiver", "ingress", 0.8, 1.2),
    Component("planner", "intelligence", 1.6, 0.9),
    Component("reasoner", "intelligence", 1.3, 1.1),
    Component("tool-router", "intelligence", 1.1, 1.3),
    Component("feedback-trainer", "learning", 0.4, 0.5),
    Component("eval-harness", "learning", 0.5, 0.4),
    Component("vector-store", "memory", 1.2, 1.4),
    Component("episodic-memory", "memory", 0.7, 0.6),
    Component("knowledge-graph", "memory", 0.6, 0.7),
    Component("mission-scheduler", "orchestration", 1.0, 0.8),
    Component("workflow-engine", "orchestration", 1.4, 1.0),
    Component("task-queue", "orchestration", 0.9, 1.5),
    Component("circuit-breaker", "resilience", 0.5, 0.9),
    Component("rollback-manager", "resilience", 0.4, 0.5),
    Component("metrics-collector", "mlt", 0.6, 0.7),
    Component("log-pipeline", "mlt", 0.5, 1.1),
    Component("model-registry", "mldl", 0.5, 0.4),
    Component("training-pipeline", "mldl", 0.6, 1.2),
    Component("email-sender", "communications", 0.7, 0.9),
    Component("slack-bridge", "communications", 0.8, 0.8),
    Component("notification-hub", "communications", 0.6, 0.6),
)

LATE_AGENTS: tuple[tuple[int, Agent], ...] = (
    (1, Agent("oracle", "ai", ("forecasting", "rag"), 60, 0.045, 0.0)),
    (2, Agent("patch", "engineer", ("git", "regression"), 150, 0.028, 0.0)),
)
LATE_ACTORS: tuple[tuple[int, Actor], ...] = (
    (1, Actor("system:nightly-reconciler", "system", "Nightly Reconciler service", "platform", 0.0)),
    (2, Actor("human:zoe.martin", "human", "Zoe Martin", "security", 0.0, approves=True)),
)
LATE_COMPONENTS: tuple[tuple[int, Component], ...] = ((2, Component("semantic-cache", "memory", 0.0, 0.0)),)

GHOST_AGENTS: tuple[str, ...] = ("shadow-runner",)
GHOST_ACTORS: tuple[str, ...] = ("human:former.employee",)
GHOST_COMPONENTS: tuple[str, ...] = ("legacy-gateway",)
GHOST_TIERS: tuple[str, ...] = ("tier_legacy",)

UNKNOWN_AGENTS: tuple[str, ...] = tuple(agent.name for _, agent in LATE_AGENTS) + GHOST_AGENTS
UNKNOWN_ACTORS: tuple[str, ...] = tuple(actor.actor_id for _, actor in LATE_ACTORS) + GHOST_ACTORS
UNKNOWN_COMPONENTS: tuple[str, ...] = tuple(component.name for _, component in LATE_COMPONENTS) + GHOST_COMPONENTS
UNKNOWN_TIERS: tuple[str, ...] = GHOST_TIERS
