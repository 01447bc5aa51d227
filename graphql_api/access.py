"""A schema per caller's visible set: hidden metrics and dimensions are not in that caller's schema at all.

Introspection, GraphiQL's completion, ``catalog`` and GraphQL's own "did you
mean" all read the schema, so a schema built from the caller's view of the
registry (``metrics.policy.ScopedRegistry``) cannot name what the caller may
not see. Schemas are built on first use and cached by the visible set, so a
thousand callers in three groups cost three schemas.

For a scoped caller, a name outside its schema is ``FORBIDDEN`` whether it
exists or not (``Restricted``); a caller whose credentials failed gets one
``UNAUTHORIZED`` error whatever it asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from graphql_api.audit import AuditTrail
from graphql_api.errors import ErrorCodes
from graphql_api.schema import MetricsSchema, build_schema
from graphql_api.settings import Settings
from graphql_api.types import Catalog
from metrics.policy import Scope, ScopedRegistry
from metrics.registry import Registry

NOT_AUTHENTICATED = "missing or unknown API key: send `Authorization: Bearer <key or token>`"


class Restricted(SchemaExtension):
    """Unknown names are FORBIDDEN for scoped callers; every error is UNAUTHORIZED for unauthenticated ones; a
    research caller's response says how many rows k-anonymity left out."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context
        result, request = context.result, context.context
        if result is not None and request.caller is None:
            message = request.auth_failure or NOT_AUTHENTICATED
            result.data, result.errors = None, [GraphQLError(message, extensions={"code": "UNAUTHORIZED"})]
        elif result is not None and result.errors:
            result.errors = [_forbidden(error) for error in result.errors]

    def get_results(self) -> dict[str, Any]:
        """``suppressedRows`` for a k-anonymous caller: how many rows its answer left out."""
        request = self.execution_context.context
        scope = request.scope
        return {"suppressedRows": request.suppressed_rows} if scope is not None and scope.k_anonymity else {}


def _forbidden(error: GraphQLError) -> GraphQLError:
    """An unknown field, argument or input field (a where or having on a hidden name) is FORBIDDEN."""
    code = (error.extensions or {}).get("code")
    unknown_input = code == "INVALID_FILTER" and (
        "unknown field" in error.message or "is not defined by" in error.message
    )
    if code != "UNKNOWN_FIELD" and not unknown_input:
        return error
    return GraphQLError(
        error.message, nodes=error.nodes, path=error.path, extensions={**error.extensions, "code": "FORBIDDEN"}
    )


@strawberry.type(description="Nothing is visible to this caller.")
class _Nothing:
    @strawberry.field(description="Empty: no policy gives you any metric.")
    def catalog(self) -> Catalog:
        return Catalog(metrics=[], dimensions=[])


class Schemas:
    """Picks the request's schema (``Context.schema``); stands in for the one schema Strawberry's view expects."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.full = build_schema(registry, settings, extensions=[AuditTrail])
        self.nothing = MetricsSchema(query=_Nothing, extensions=[AuditTrail, Restricted, ErrorCodes])
        self._scoped: dict[tuple[frozenset[str], frozenset[str]], strawberry.Schema] = {}

    def for_scope(self, scope: Scope | None, *, authenticated: bool) -> strawberry.Schema:
        if not authenticated:  # not even the names of metrics before credentials
            return self.nothing
        if scope is None:
            return self.full
        if not scope.metrics:
            return self.nothing
        schema = self._scoped.get(scope.visible)
        if schema is None:
            schema = build_schema(
                ScopedRegistry(self.registry, scope), self.settings, extensions=[AuditTrail, Restricted]
            )
            self._scoped[scope.visible] = schema
        return schema

    async def execute(self, query: str | None, *, context_value: Any, **options: Any) -> Any:
        return await context_value.schema.execute(query, context_value=context_value, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.full, name)
