"""Distinct counts over windows without a distinct count per window: each value counted once per output bucket.

A value is in the count of an output bucket B when one of its input buckets lies in B's window. Windows are
contiguous runs of input buckets whose first and last grow with B, so the output buckets whose window holds
an input bucket i are a run too, [first(i), last(i)]. Counting each value at the last of its input buckets
inside the window, an input bucket i with the value's next input bucket j counts for the buckets from first(i)
up to the earlier of last(i) and the one before first(j) (from there on the window holds j, which counts).
That is a run of bucket numbers per (value, input bucket): +1 where it starts, -1 after it ends, and each
output bucket's count is the running sum over the bucket numbers, per partition. The work is one pass over
the distinct (input bucket, value) pairs, not one per pair and window that holds it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import ColumnElement

from metrics.compiler.fact_query import label
from metrics.compiler.window_plan import WindowAggregate


def distinct_counts(aggregate: WindowAggregate, found: sa.Subquery, keys: list[str], pairs: sa.CTE) -> sa.CTE:
    """Per output bucket and partition, the distinct ``value`` of ``found`` (input, partitions, value) that some
    input bucket of its window holds; ``pairs`` numbers the output buckets (``number``) in order."""
    name = aggregate.name
    parts = [found.c[key] for key in keys]
    following = sa.func.lead(found.c.input).over(partition_by=[*parts, found.c.value], order_by=found.c.input)
    ranked = sa.select(found.c.input, *parts, following.label("next")).subquery(f"{name}__ranked")
    number = pairs.c.number
    runs = sa.select(pairs.c.input, sa.func.min(number).label("first"), sa.func.max(number).label("last"))
    runs = runs.group_by(pairs.c.input).cte(f"{name}__runs")
    here, then = runs.alias(f"{name}__here"), runs.alias(f"{name}__then")
    after = here.c.last + 1
    stop = sa.case((sa.and_(then.c.first.is_not(None), then.c.first < after), then.c.first), else_=after)
    counted = ranked.join(here, here.c.input == ranked.c.input).outerjoin(then, then.c.input == ranked.c.next)
    spans = sa.select(*(ranked.c[key] for key in keys), here.c.first.label("start"), stop.label("stop"))
    spans = spans.select_from(counted).where(here.c.first < stop).cte(f"{name}__spans")
    ends = sa.union_all(
        sa.select(spans.c.start.label("number"), *(spans.c[key] for key in keys), sa.literal(1).label("change")),
        sa.select(spans.c.stop.label("number"), *(spans.c[key] for key in keys), sa.literal(-1).label("change")),
    ).subquery(f"{name}__ends")
    group = [sa.literal_column(str(i)) for i in range(1, len(keys) + 2)]
    changes = sa.select(ends.c.number, *(ends.c[key] for key in keys), sa.func.sum(ends.c.change).label("change"))
    changes = changes.group_by(*group).subquery(f"{name}__changes")
    return _running(aggregate, changes, keys, pairs)


def _running(aggregate: WindowAggregate, changes: sa.Subquery, keys: list[str], pairs: sa.CTE) -> sa.CTE:
    """The running sum of the changes over every output bucket, per partition with any."""
    numbered = sa.select(pairs.c.bucket, pairs.c.number).distinct().subquery(f"{aggregate.name}__numbered")
    partitions = sa.select(*(changes.c[key] for key in keys)).distinct().subquery(f"{aggregate.name}__counted")
    grid = numbered.join(partitions, sa.true()) if keys else numbered
    matched = [changes.c.number == numbered.c.number] + [
        changes.c[key].is_not_distinct_from(partitions.c[key]) for key in keys
    ]
    total: ColumnElement[Any] = sa.func.sum(sa.func.coalesce(changes.c.change, 0)).over(
        partition_by=[partitions.c[key] for key in keys] or None,
        order_by=numbered.c.number,
        rows=(None, 0),
    )
    counts = [sa.cast(total, sa.BigInteger()).label(label(name)) for name, _ in aggregate.measures]
    statement = sa.select(numbered.c.bucket, *(partitions.c[key] for key in keys), *counts)
    return statement.select_from(grid.outerjoin(changes, sa.and_(*matched))).cte(f"{aggregate.name}__values")
