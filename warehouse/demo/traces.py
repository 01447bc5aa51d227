"""Reasoning traces, whose JSON plans recommend practices.

The ``practice`` dimension is read from plan steps of kind ``practice``, so
the mix must hold traces without a plan, plans without a practice step, and
plans naming one practice twice (which still count once per trace). JSON is
assembled from fragments encoded once, because encoding millions of small
documents with ``json.dumps`` would dominate large runs.
"""

from __future__ import annotations

import json

import numpy as np

from warehouse.demo import cast
from warehouse.demo.batch import Batch, row_ids
from warehouse.demo.sampling import chance, choose_weighted, clip_updates, lag, lognormal
from warehouse.demo.scene import Scene
from warehouse.demo.vocabulary import (
    FACETS,
    MODES,
    PLAN_STEPS,
    PRACTICES,
    RATIONALES,
    RULES,
    SAFETY_LEVELS,
    STEP_DETAILS,
)
from warehouse.source import agent_traces

NO_PLAN, PLAN_WITHOUT_PRACTICE, PLAN_WITH_PRACTICE = 0, 1, 2
_SHAPES = (0.1, 0.18, 0.72)
_MAX_PRACTICES = 3
_MAX_OTHER_STEPS = 3

_PRACTICE_STEPS = [json.dumps({"kind": "practice", "detail": name}) for name, _ in PRACTICES]
_PRACTICE_WEIGHTS = np.asarray([weight for _, weight in PRACTICES])
_OTHER_STEPS = [json.dumps({"kind": kind, "detail": detail}) for kind, _ in PLAN_STEPS for detail in STEP_DETAILS[kind]]
_OTHER_WEIGHTS = np.asarray(
    [weight / len(STEP_DETAILS[kind]) for kind, weight in PLAN_STEPS for _ in STEP_DETAILS[kind]]
)
_RULES = [json.dumps(rule) for rule in RULES]
_RATIONALES = [json.dumps(text) for text in RATIONALES]


def _distinct(rng: np.random.Generator, weights: np.ndarray, size: int, per_row: int) -> np.ndarray:
    """``per_row`` distinct weighted picks per row (weighted sampling without replacement, by random keys)."""
    keys = rng.random((size, weights.size)) ** (1 / weights)
    return np.argsort(-keys, axis=1)[:, :per_row]


def _documents(rng: np.random.Generator, size: int) -> list[str]:
    shapes = rng.choice(3, size=size, p=_SHAPES)
    practice_counts = rng.choice(np.arange(1, _MAX_PRACTICES + 1), size=size, p=[0.6, 0.3, 0.1])
    practices = _distinct(rng, _PRACTICE_WEIGHTS, size, _MAX_PRACTICES)
    repeated = chance(rng, 0.1, size)
    other_counts = np.where(shapes == PLAN_WITHOUT_PRACTICE, rng.integers(1, 4, size), rng.integers(0, 3, size))
    others = rng.choice(len(_OTHER_STEPS), size=(size, _MAX_OTHER_STEPS), p=_OTHER_WEIGHTS / _OTHER_WEIGHTS.sum())
    has_rules, has_inference = chance(rng, 0.8, size), chance(rng, 0.75, size)
    rules = _distinct(rng, np.ones(len(_RULES)), size, 2)
    rule_counts = rng.integers(0, 3, size)
    rationales = _distinct(rng, np.ones(len(_RATIONALES)), size, 2)
    rationale_counts = rng.integers(1, 3, size)

    documents = []
    for row in range(size):
        parts = []
        if shapes[row] != NO_PLAN:
            steps = [_OTHER_STEPS[i] for i in others[row, : other_counts[row]]]
            if shapes[row] == PLAN_WITH_PRACTICE:
                named = [_PRACTICE_STEPS[i] for i in practices[row, : practice_counts[row]]]
                steps[1:1] = named + named[:1] * bool(repeated[row])
            parts.append('"plan": {"steps": [' + ", ".join(steps) + "]}")
        if has_rules[row]:
            parts.append('"rules": {"fired": [' + ", ".join(_RULES[i] for i in rules[row, : rule_counts[row]]) + "]}")
        if has_inference[row]:
            chosen = rationales[row, : rationale_counts[row]]
            parts.append('"inference": {"rationale": [' + ", ".join(_RATIONALES[i] for i in chosen) + "]}")
        documents.append("{" + ", ".join(parts) + "}")
    return documents


def generate(rng: np.random.Generator, scene: Scene, times: np.ndarray, as_of: np.ndarray) -> list[Batch]:
    size = times.size
    seqs = scene.sequences.take("agent_traces", size)
    world = scene.world
    latency = np.maximum(lognormal(rng, 2_500, 0.9, size), 50).astype(np.int64)
    updated = times + latency * 1000 + lag(rng, size)
    trace = Batch(
        agent_traces,
        seqs,
        {
            "trace_id": row_ids("agent_traces", seqs),
            "created_at": times,
            "user_id": world.users[rng.choice(world.users.size, size=size, p=world.user_weights)],
            "agent_name": cast.agents(rng, size),
            "facet": choose_weighted(rng, FACETS, size),
            "mode": choose_weighted(rng, MODES, size),
            "confidence": np.round(rng.beta(6, 2, size), 4),
            "safety_level": choose_weighted(rng, SAFETY_LEVELS, size),
            "latency_ms": latency,
            "trace": np.asarray(_documents(rng, size), dtype=object),
            "updated_at": clip_updates(updated, times, as_of),
        },
        {"facet": chance(rng, 0.12, size), "mode": chance(rng, 0.2, size), "confidence": chance(rng, 0.1, size)},
    )
    return [trace]
