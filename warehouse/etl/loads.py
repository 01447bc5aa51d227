"""How each source table lands in the warehouse, derived from the mappings in ``warehouse.schema``.

A source table feeds type-2 history (tiers, agents), type-1 members (actors,
components, missions) and/or a fact (missions and the event tables). The
transforms work on whole Arrow batches: columns are copied as parsed, member
references staged as natural keys for the merge to resolve, user ids keyed by
HMAC and JSON re-serialised once per distinct value, and a trace's practices
extracted in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from warehouse import schema, source
from warehouse.etl.members import ACTOR, AGENT, COMPONENT, DIMENSIONS, MISSION, TIER, Dimension
from warehouse.etl.merge import MemberColumn, stage_columns
from warehouse.etl.values import UserKeyer


def per_distinct(values: pa.ChunkedArray | pa.Array, convert: Callable[[Any], Any]) -> pa.Array:
    """``convert`` applied once per distinct non-null value: user ids and JSON repeat across many rows."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values.dictionary_encode()
    converted = pa.array([convert(value) for value in encoded.dictionary.to_pylist()], pa.string())
    return converted.take(encoded.indices)


def canonical_json(text: str) -> str:
    """JSON text as the warehouse has always stored it: Python's serialisation of the parsed value."""
    return json.dumps(json.loads(text))


@dataclass(frozen=True)
class FactLoad:
    """A fact's mapping, and the staging shape and transform that follow from it."""

    mapping: schema.FactMapping

    @property
    def members(self) -> list[MemberColumn]:
        return [MemberColumn(m.name, DIMENSIONS[m.dimension]) for m in self.mapping.of(schema.MemberKey)]

    @property
    def stage_columns(self) -> list[sa.Column[Any]]:
        return stage_columns(self.mapping.table, self.members)

    def rows(self, parsed: pa.Table, user_key: UserKeyer) -> pa.Table:
        """The staged fact rows of a parsed source batch."""
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for column in self.mapping.columns:
            if isinstance(column, schema.UserKey):
                columns[column.name] = per_distinct(parsed.column(column.source), user_key)
            elif isinstance(column, schema.MemberKey):
                columns[column.name] = parsed.column(column.source)
            elif isinstance(self.mapping.source.c[column.name].type, sa.JSON):
                columns[column.name] = per_distinct(parsed.column(column.name), canonical_json)
            else:
                columns[column.name] = parsed.column(column.name)
        columns["source_updated_at"] = parsed.column("updated_at")
        return pa.table(columns)


@dataclass(frozen=True)
class Practices:
    """A trace's recommended practices, one child row per (trace, practice) with its count of steps."""

    table: sa.Table = schema.bridge_trace_practices
    parent_key: str = "trace_id"
    own_columns: tuple[str, ...] = ("trace_id", "practice", "step_count")

    SQL = """
        SELECT trace_id, step->>'detail' AS practice, count(*)::INTEGER AS step_count
        FROM (
            SELECT trace_id, unnest(json_extract(trace, '$.plan.steps[*]')) AS step
            FROM traces WHERE json_type(trace, '$.plan.steps') = 'ARRAY'
        )
        WHERE json_type(step) = 'OBJECT' AND json_type(step, '$.kind') = 'VARCHAR' AND step->>'kind' = 'practice'
            AND json_type(step, '$.detail') = 'VARCHAR'
        GROUP BY ALL
    """
    """sources.md: a step recommends its detail if its kind is "practice"; a plan, steps or step of another JSON
    type recommends nothing, and neither does a kind or detail that is not a string."""

    @property
    def stage_columns(self) -> list[sa.Column[Any]]:
        return [sa.Column(name, self.table.c[name].type) for name in self.own_columns]

    def rows(self, scratch: duckdb.DuckDBPyConnection, parsed: pa.Table) -> pa.Table:
        scratch.register("traces", parsed.select(["trace_id", "trace"]))
        try:
            return scratch.sql(self.SQL).to_arrow_table()
        finally:
            scratch.unregister("traces")


@dataclass(frozen=True)
class SourceLoad:
    """One source table: its type-2 history, type-1 members and/or fact, loaded in that order."""

    source: sa.Table
    history: Dimension | None = None
    members: Dimension | None = None
    fact: FactLoad | None = None
    children: Practices | None = None

    def member_rows(self, parsed: pa.Table) -> pa.Table:
        """The staged type-1 member rows of a parsed source batch (see ``member_stage_columns``)."""
        assert self.members is not None
        return self._dimension_rows(self.members, parsed)

    def history_rows(self, parsed: pa.Table) -> pa.Table:
        """The staged type-2 member rows of a parsed source batch (see ``member_stage_columns``)."""
        assert self.history is not None
        return self._dimension_rows(self.history, parsed)

    def _dimension_rows(self, dimension: Dimension, parsed: pa.Table) -> pa.Table:
        """JSON attributes (agents' capabilities) are stored as text, and compared as text between versions."""
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for name in (dimension.natural_key, *dimension.attributes):
            json = isinstance(self.source.c[name].type, sa.JSON)
            columns[name] = per_distinct(parsed.column(name), canonical_json) if json else parsed.column(name)
        columns["is_inferred"] = pa.repeat(False, parsed.num_rows)  # type: ignore[assignment]
        columns["source_updated_at"] = parsed.column("updated_at")
        return pa.table(columns)


def member_stage_columns(dimension: Dimension) -> list[sa.Column[Any]]:
    table = dimension.table
    names = (dimension.natural_key, *dimension.attributes, "is_inferred", "source_updated_at")
    return [sa.Column(name, table.c[name].type) for name in names]


LOADS: tuple[SourceLoad, ...] = (
    SourceLoad(source.autonomy_tiers, history=TIER),
    SourceLoad(source.agents, history=AGENT),
    SourceLoad(source.actors, members=ACTOR),
    SourceLoad(source.components, members=COMPONENT),
    SourceLoad(source.missions, members=MISSION, fact=FactLoad(schema.MISSIONS)),
    SourceLoad(source.action_contracts, fact=FactLoad(schema.VERIFICATIONS)),
    SourceLoad(source.error_events, fact=FactLoad(schema.ERRORS)),
    SourceLoad(source.approval_requests, fact=FactLoad(schema.APPROVALS)),
    SourceLoad(source.agent_queries, fact=FactLoad(schema.QUERIES)),
    SourceLoad(source.agent_feedback, fact=FactLoad(schema.FEEDBACK)),
    SourceLoad(source.agent_traces, fact=FactLoad(schema.TRACES), children=Practices()),
)
"""In load order: members before the events that reference them."""
