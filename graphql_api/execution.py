"""A fast path for result rows: response rows built from the result's columns, not cell by cell.

graphql-core completes every cell of every row through a resolver call, an
info object and a type check (some 240 µs per row of five fields). A result
is a table whose cells all come from known columns, so the selection set of
``rows`` is compiled once per field into a projection (the idea of
graphql-jit): for each response key, a column, a nested projection
(``tier { name }``) or ``__typename``. Fragments, aliases, ``@skip`` and
``@include`` are resolved by graphql-core's own field collection, so the
shape is the one ordinary execution gives.

Only clean columns take the fast path: a value a scalar would coerce, reject
or turn into an error (an Int outside 32 bits, a non-finite Float, a null in
a non-null field, a field the layout does not know) sends the whole list back
to ordinary execution, which reports it exactly as before. A test compares
both paths byte for byte over random selections.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from math import isfinite
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetails
from graphql.execution.values import get_argument_values
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_api.selection import RowLayout, row_layout
from graphql_api.types import ResultRows, TableRows

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class _Unsupported(Exception):
    """The projection cannot promise ordinary execution's answer; fall back to it."""


def _all_ints(values: list[Any]) -> bool:
    return {type(v) for v in values} <= {int} and (not values or (min(values) >= _INT_MIN and max(values) <= _INT_MAX))


def _all_floats(values: list[Any]) -> bool:
    return {type(v) for v in values} <= {float} and all(map(isfinite, values))


def _all_of(kind: type) -> Callable[[list[Any]], bool]:
    return lambda values: {type(v) for v in values} <= {kind}


_UNCHANGED: dict[GraphQLLeafType, Callable[[list[Any]], bool]] = {
    GraphQLInt: _all_ints,
    GraphQLFloat: _all_floats,
    GraphQLString: _all_of(str),
    GraphQLBoolean: _all_of(bool),
}
"""Built-in scalars, and when their output coercion returns every value unchanged (checked per column)."""


def _leaf_column(field_type: GraphQLOutputType, values: Sequence[Any]) -> list[Any]:
    """The column as the scalar outputs it, or ``_Unsupported`` where a cell would be an error."""
    leaf = get_nullable_type(field_type)
    present = [v for v in values if v is not None]
    if is_non_null_type(field_type) and len(present) != len(values):
        raise _Unsupported
    unchanged = _UNCHANGED.get(leaf)
    if unchanged is not None and unchanged(present):
        return list(values)
    try:
        coerced = _coerce_each(leaf.coerce_output_value, values)
    except Exception:  # noqa: BLE001  # whatever the scalar raises, ordinary execution reports it
        raise _Unsupported from None
    if any((c is None or c is Undefined) and v is not None for c, v in zip(coerced, values, strict=True)):
        raise _Unsupported
    return coerced


def _coerce_each(coerce: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """Each value coerced, each object once: results share one object per time bucket, repeated down a column."""
    done: dict[int, Any] = {}
    coerced = []
    for value in values:
        if value is None:
            coerced.append(None)
            continue
        key = id(value)  # the values are alive throughout, so an id names one object
        if key not in done:
            done[key] = coerce(value)
        coerced.append(done[key])
    return coerced


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


@lru_cache(maxsize=256)
def _row_builder(keys: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``lambda v0, v1, ...: {"key0": v0, "key1": v1, ...}``: a row's dict in one call, as graphql-jit compiles it.

    The keys are GraphQL response keys (names by the grammar, checked again here), so the source is safe.
    """
    assert all(_NAME.fullmatch(key) for key in keys), keys
    parameters = ", ".join(f"v{i}" for i in range(len(keys)))
    items = ", ".join(f"{key!r}: v{i}" for i, key in enumerate(keys))
    return eval(f"lambda {parameters}: {{{items}}}")  # noqa: S307


class RowsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with ``rows`` and ``table.rows`` completed by column."""

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: list[FieldDetails],
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, (ResultRows, TableRows)):
            try:
                return self._complete_rows(return_type, field_details_list, result)
            except _Unsupported:
                pass
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def _complete_rows(
        self, return_type: GraphQLOutputType, details: list[FieldDetails], result: ResultRows | TableRows
    ) -> list[Any]:
        list_type = get_nullable_type(return_type)
        if not is_list_type(list_type):
            raise _Unsupported
        item_type = list_type.of_type
        if isinstance(result, TableRows):
            if not is_leaf_type(get_nullable_type(item_type)):
                raise _Unsupported
            return _leaf_column(item_type, result)
        object_type = get_nullable_type(item_type)
        if not is_object_type(object_type):
            raise _Unsupported
        query = result.result
        columns = dict(zip((c.name for c in query.columns), query.values, strict=True))
        layout = row_layout(self.context_value.engine.registry)
        return self._objects(object_type, details, len(query), columns, layout, None)

    def _objects(
        self,
        object_type: GraphQLObjectType,
        details: list[FieldDetails],
        count: int,
        columns: dict[str, list[Any]],
        layout: RowLayout,
        attributes: dict[str, str] | None,
    ) -> list[dict[str, Any]]:
        """One dict per row, keyed like ordinary execution's (response keys in selection order)."""
        grouped = self.collect_subfields(object_type, details).grouped_field_set
        keys, data = [], []
        for response_key, field_details in grouped.items():
            first = field_details[0]
            if first.defer_usage is not None or first.fragment_variable_values is not None:
                raise _Unsupported
            name = first.node.name.value
            if name == "__typename":
                column: list[Any] = [object_type.name] * count
            else:
                field = object_type.fields[name]
                field_type = get_nullable_type(field.type)
                if is_object_type(field_type):
                    if attributes is not None or name not in layout.objects or not is_non_null_type(field.type):
                        raise _Unsupported
                    nested = layout.objects[name]
                    column = self._objects(field_type, field_details, count, columns, layout, nested)
                else:
                    key = self._column_key(name, field, first, layout, attributes)
                    column = _leaf_column(field.type, columns.get(key) or [None] * count)
            keys.append(response_key)
            data.append(column)
        if not keys:  # every field skipped: an empty object per row
            return [{} for _ in range(count)]
        return list(map(_row_builder(tuple(keys)), *data))

    def _column_key(
        self, name: str, field: Any, details: FieldDetails, layout: RowLayout, attributes: dict[str, str] | None
    ) -> str:
        if attributes is not None:
            key = attributes.get(name)
        elif name == "time":
            grain = get_argument_values(field, details.node, self.variable_values).get("grain")
            key = None if grain is None else layout.time_key(grain)
        elif details.node.arguments:  # an ad hoc window or comparison: its column is named by its resolver
            raise _Unsupported
        else:
            key = layout.values.get(name)
        if key is None:
            raise _Unsupported
        return key
