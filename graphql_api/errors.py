"""Every GraphQL error leaves with an ``extensions.code``; unexpected ones are masked.

The outer catch-all: expected errors (the metrics layer's, GraphQL validation)
keep their message and get their code; anything else is logged with a request
id and shown as INTERNAL, never as a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from metrics.errors import MetricsError

log = logging.getLogger("grace_metrics.api")


class ApiError(Exception):
    """An error the API raises itself (authentication, permissions)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


_VALIDATION_CODES = (
    ("Cannot query field", "UNKNOWN_FIELD"),
    ("Unknown argument", "UNKNOWN_FIELD"),
    ("Unknown type", "UNKNOWN_FIELD"),
    ("is not defined by type", "UNKNOWN_FIELD"),
    ("exceeds maximum operation depth", "LIMIT_EXCEEDED"),
    ("number of tokens", "LIMIT_EXCEEDED"),
    ("aliases found", "LIMIT_EXCEEDED"),
    ("Syntax Error", "BAD_REQUEST"),
)


def _code(error: GraphQLError) -> str | None:
    original = error.original_error
    if isinstance(original, (MetricsError, ApiError)):
        return original.code
    if original is None:
        for fragment, code in _VALIDATION_CODES:
            if fragment in error.message:
                return code
        return "INVALID_FILTER" if "value" in error.message.lower() else "BAD_REQUEST"
    return None


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        request_id = getattr(self.execution_context.context, "request_id", "-")
        coded = []
        for error in result.errors:
            code = _code(error)
            if code is None:
                log.error("request %s failed", request_id, exc_info=error.original_error)
                error = GraphQLError(
                    f"internal error (request id {request_id}); the server log has the details",
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL", "requestId": request_id},
                )
            else:
                error = GraphQLError(
                    error.message, nodes=error.nodes, source=error.source, positions=error.positions, path=error.path, extensions={**(error.extensions or {}), "code": code}
                )
            coded.append(error)
        result.errors = coded
