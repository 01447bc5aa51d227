"""Parsed and validated documents, remembered by their text: a dashboard sends the same few queries again and again.

Validation was most of a small request's cost (about 7 ms of ``{ __typename }``:
every rule, the limiters' included, visits the whole document). Both steps
depend only on the text, the operation name and the schema's fixed limits,
so their outcome is reused as is: the same errors, with the same codes, for
the same text. The caches are bounded: an LRU of ``size`` texts of at most
``MAX_TEXT`` characters (a dashboard's queries are far shorter; longer ones
are parsed each time), so unique texts cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

MAX_TEXT = 10_000


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any) -> Any:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class DocumentCache:
    """One per schema: the documents and validation outcomes of the last ``size`` distinct requests."""

    def __init__(self, size: int = 256) -> None:
        self.documents = _Lru(size)
        self.validations = _Lru(size)

    def extension(self) -> SchemaExtension:
        return _Cached(self)


class _Cached(SchemaExtension):
    def __init__(self, cache: DocumentCache) -> None:
        super().__init__()
        self.cache = cache

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if not context.query or len(context.query) > MAX_TEXT:
            yield
            return
        key = (context.query, tuple(sorted(context.parse_options.items())))
        document: DocumentNode | None = self.cache.documents.get(key)
        if document is None:
            try:
                document = parse(context.query, **context.parse_options)
            except GraphQLError:
                document = None  # Strawberry parses again and reports the error its own way
            else:
                self.cache.documents.put(key, document)
        if document is not None:
            context.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if not context.query or len(context.query) > MAX_TEXT:
            yield
            return
        key = (context.query, context._provided_operation_name)
        # An extension that already decided (an error of its own) keeps its answer uncached.
        decided = context.pre_execution_errors is not None
        errors: list[GraphQLError] | None = None if decided else self.cache.validations.get(key)
        if errors is not None:
            context.pre_execution_errors = errors
        yield
        if not decided and errors is None and context.pre_execution_errors is not None:
            self.cache.validations.put(key, list(context.pre_execution_errors))
