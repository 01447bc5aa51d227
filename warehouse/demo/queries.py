"""Agent queries, grouped in conversations, and the annotation tasks sampled from them.

A query is reviewed (``approved`` set) hours after it ran, if ever, so recent
queries are mostly unreviewed; feedback rows are created right after the query
and annotated later, so recent feedback has no scores yet.
"""

from __future__ import annotations

import numpy as np

from warehouse.demo import cast
from warehouse.demo.batch import Batch, format_ids, row_ids
from warehouse.demo.sampling import chance, clip_updates, lag, lognormal
from warehouse.demo.scene import Scene
from warehouse.demo.timeline import HOUR, MINUTE
from warehouse.demo.vocabulary import LABELS, SCORES
from warehouse.source import agent_feedback, agent_queries

_LABEL_TEXT = np.asarray([f'"{label}"' for label, _ in LABELS], dtype=object)


def feedback_count(queries: int) -> int:
    """One annotation task per ten queries."""
    return queries // 10


def generate(rng: np.random.Generator, scene: Scene, times: np.ndarray, as_of: np.ndarray) -> list[Batch]:
    size = times.size
    seqs = scene.sequences.take("agent_queries", size)
    # Neighbouring queries (in time) share a conversation: about 3.5 queries each, interleaved.
    local = ((np.arange(size) + rng.integers(0, 8, size)) / 3.5).astype(np.int64)
    conversations = local.max(initial=-1) + 1
    # A conversation is named after its first query, so names stay unique across chunks and steps.
    first_query = np.full(conversations, np.iinfo(np.int64).max)
    np.minimum.at(first_query, local, seqs)
    conversation_ids = format_ids("conv_", first_query)
    users = scene.world.users[rng.choice(scene.world.users.size, size=conversations, p=scene.world.user_weights)]
    agents = cast.agents(rng, conversations)[local]

    latency = np.maximum(lognormal(rng, 1_100, 0.8, size), 20).astype(np.int64)
    reviewed_at = times + lognormal(rng, 3 * HOUR, 1.2, size).astype(np.int64)
    reviewed = chance(rng, 0.45, size) & (reviewed_at <= as_of)
    failed = chance(rng, 0.03, size)
    costs = cast.lookup(agents, cast.AGENT_COSTS, 0.02) * lognormal(rng, 1.0, 0.5, size)
    updated = np.where(reviewed, reviewed_at, times + latency * 1000) + lag(rng, size)
    queries = Batch(
        agent_queries,
        seqs,
        {
            "query_id": row_ids("agent_queries", seqs),
            "created_at": times,
            "agent_name": agents,
            "conversation_id": conversation_ids[local],
            "user_id": users[local],
            "latency_ms": latency,
            "approved": chance(rng, 0.84, size),
            "human_edited": chance(rng, 0.12, size),
            "error_occurred": failed,
            "result_size_bytes": lognormal(rng, 2_048, 1.0, size).astype(np.int64),
            "cost_usd": np.round(costs, 6),
            "updated_at": clip_updates(updated, times, as_of),
        },
        {"approved": ~reviewed, "result_size_bytes": failed | chance(rng, 0.04, size)},
    )
    return [queries, _feedback(rng, scene, queries, latency, as_of)]


def _labels(rng: np.random.Generator, size: int, annotated: np.ndarray) -> np.ndarray:
    """JSON arrays of 0-3 distinct labels; empty until annotated."""
    weights = np.asarray([weight for _, weight in LABELS])
    keys = rng.random((size, len(LABELS))) ** (1 / weights)
    order = np.argsort(-keys, axis=1)
    counts = np.where(annotated, rng.choice(4, size=size, p=[0.2, 0.45, 0.25, 0.1]), 0)
    return np.asarray(
        ["[" + ", ".join(_LABEL_TEXT[row[:n]]) + "]" for row, n in zip(order, counts, strict=True)], dtype=object
    )


def _feedback(rng: np.random.Generator, scene: Scene, queries: Batch, latency: np.ndarray, as_of: np.ndarray) -> Batch:
    count = feedback_count(len(queries))
    picked = np.sort(rng.choice(len(queries), size=count, replace=False))
    seqs = scene.sequences.take("agent_feedback", count)
    observed = as_of[picked]
    columns = queries.columns
    created = np.minimum(
        columns["created_at"][picked]
        + latency[picked] * 1000
        + lognormal(rng, 10 * MINUTE, 1.0, count).astype(np.int64),
        observed,
    )
    annotation = created + lognormal(rng, 6 * HOUR, 1.0, count).astype(np.int64)
    annotated = ~chance(rng, 0.05, count) & (annotation <= observed)
    updated = np.where(annotated, annotation, created) + lag(rng, count)
    score_weights = np.asarray(SCORES) / sum(SCORES)
    scores = {
        name: rng.choice(5, size=count, p=score_weights) + 1
        for name in ("clarity_score", "accuracy_score", "tone_score")
    }
    return Batch(
        agent_feedback,
        seqs,
        {
            "feedback_id": row_ids("agent_feedback", seqs),
            "query_id": columns["query_id"][picked],
            "agent_name": columns["agent_name"][picked],
            "conversation_id": columns["conversation_id"][picked],
            "annotator_id": cast.annotators(rng, count),
            "created_at": created,
            "annotated_at": np.where(annotated, annotation, 0),
            "safe_to_send": chance(rng, 0.93, count),
            **scores,
            "labels": _labels(rng, count, annotated),
            "updated_at": clip_updates(updated, created, observed),
        },
        {
            "query_id": chance(rng, 0.08, count),
            "annotated_at": ~annotated,
            "safe_to_send": ~annotated | chance(rng, 0.05, count),
            **{name: ~annotated | chance(rng, 0.07, count) for name in scores},
        },
    )
