"""Every GraphQL error leaves with an ``extensions.code``; unexpected ones are masked.

The outer catch-all: expected errors keep their message and get their code,
anything else is logged with a request id and shown as INTERNAL, never as a
stack trace. Expected errors are

- the metrics layer's and the API's own (``MetricsError``, ``ApiError``), which carry a code;
- GraphQL's: a validation rule's errors are tagged with the rule's code
  (``RULE_CODES``; a value of the wrong type is INVALID_FILTER inside
  ``where`` and ``having``, INVALID_ARGUMENT elsewhere) as the rule reports
  them; syntax errors are BAD_REQUEST; a variable whose value does not fit
  its type is INVALID_ARGUMENT. The size limits (``limits``) code their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    FieldsOnCorrectTypeRule,
    GraphQLError,
    GraphQLSyntaxError,
    KnownArgumentNamesRule,
    KnownTypeNamesRule,
    ValuesOfCorrectTypeRule,
    VariableDefinitionNode,
    VariablesInAllowedPositionRule,
    specified_rules,
)
from graphql.validation import ASTValidationRule, ValidationContext
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from metrics.errors import MetricsError

log = logging.getLogger("grace_metrics.api")


class ApiError(Exception):
    """An error the API raises itself (authentication, permissions, limits of a request)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


RULE_CODES: Mapping[type[ASTValidationRule], str] = {
    FieldsOnCorrectTypeRule: "UNKNOWN_FIELD",
    KnownArgumentNamesRule: "UNKNOWN_FIELD",
    KnownTypeNamesRule: "UNKNOWN_FIELD",
    VariablesInAllowedPositionRule: "INVALID_ARGUMENT",
}
"""Validation rules whose errors are not plain BAD_REQUEST (the other rules' are)."""
FILTER_ARGUMENTS = frozenset({"where", "having"})
ABORTED = (
    "the document is too costly to validate: it repeats fields of one name in many places, which GraphQL must compare "
    "pairwise; select each field once per selection set, or give the copies aliases"
)
"""What graphql-core's bare 'Validation aborted.' (its comparison budget ran out) means to a client."""


class _Tagging:
    """A validation context that stamps a code on every error a rule reports through it."""

    def __init__(self, context: ValidationContext, code: str) -> None:
        self._context = context
        self._code = code

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": self._code}
        self._context.report_error(error)


def coded_rule(rule: type[ASTValidationRule], code: str) -> type[ASTValidationRule]:
    """``rule``, with ``code`` on its errors (also those reported while it is created)."""

    def __init__(self: ASTValidationRule, context: ValidationContext) -> None:
        rule.__init__(self, _Tagging(context, code))  # type: ignore[arg-type]

    return type(rule.__name__, (rule,), {"__init__": __init__})


class ValuesOfCorrectType(ValuesOfCorrectTypeRule):
    """A literal of the wrong type: INVALID_FILTER in a filter argument, INVALID_ARGUMENT in any other."""

    argument: str | None = None

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.argument = node.name.value

    def leave_argument(self, *_: Any) -> None:
        self.argument = None

    def report_error(self, error: GraphQLError) -> None:
        code = "INVALID_FILTER" if self.argument in FILTER_ARGUMENTS else "INVALID_ARGUMENT"
        error.extensions = {**(error.extensions or {}), "code": code}
        super().report_error(error)


_CODED_RULES = {rule: coded_rule(rule, RULE_CODES.get(rule, "BAD_REQUEST")) for rule in specified_rules}
_CODED_RULES[ValuesOfCorrectTypeRule] = ValuesOfCorrectType


def _pre_execution_code(error: GraphQLError, max_tokens: int | None) -> str:
    # graphql-core reports its token limit and its nesting limit (of documents and of variable values) as plain
    # errors; their text is the only mark.
    if "nested too deeply" in error.message:
        return "LIMIT_EXCEEDED"
    if isinstance(error, GraphQLSyntaxError):
        too_long = max_tokens is not None and f"more than {max_tokens} tokens" in error.message
        return "LIMIT_EXCEEDED" if too_long else "BAD_REQUEST"
    if isinstance(error, ValidationAbortedError):  # graphql-core's budgets: comparisons, or 100 errors
        return "LIMIT_EXCEEDED"
    if error.nodes and isinstance(error.nodes[0], VariableDefinitionNode):
        return "INVALID_ARGUMENT"  # validation is tagged, so this is a variable's value not fitting its type
    return "BAD_REQUEST"


def error_code(error: GraphQLError, max_tokens: int | None = None) -> str | None:
    """The code of an error, or None for an unexpected one; both None and INTERNAL are masked."""
    original = error.original_error
    if isinstance(original, (MetricsError, ApiError)):
        return original.code
    if error.extensions and "code" in error.extensions:
        return str(error.extensions["code"])
    if error.path is None and (original is None or isinstance(original, (GraphQLError, ValueError, TypeError))):
        return _pre_execution_code(error, max_tokens)  # parsing, validation, variables: the request's fault
    return None


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = tuple(_CODED_RULES.get(rule, rule) for rule in context.validation_rules)
        yield
        result = context.result
        if result is None or not result.errors:
            return
        request_id = getattr(context.context, "request_id", "-")
        max_tokens = context.parse_options.get("max_tokens")
        coded = []
        reported: set[int] = set()
        for error in result.errors:
            if error.original_error is not None:
                # One batched load failing fails every member's field with the same exception: report it once.
                if id(error.original_error) in reported:
                    continue
                reported.add(id(error.original_error))
            code = error_code(error, max_tokens)
            if code in (None, "INTERNAL"):  # a bug or a warehouse failure: the details are for the log only
                log.error("request %s failed", request_id, exc_info=error.original_error)
                error = GraphQLError(
                    f"internal error (request id {request_id}); the server log has the details",
                    nodes=error.nodes,
                    path=error.path,
                    extensions={"code": "INTERNAL", "requestId": request_id},
                )
            else:
                error = GraphQLError(
                    ABORTED if error.message == "Validation aborted." else error.message,
                    nodes=error.nodes,
                    source=error.source,
                    positions=error.positions,
                    path=error.path,
                    extensions={**(error.extensions or {}), "code": code},
                )
            coded.append(error)
        result.errors = coded
