"""Size limits of a GraphQL document, measured in one linear pass before any validation rule runs.

A fragment spread twice per level doubles the work of every rule that walks
fragments as written (``fragment F0 { ...F1 ...F1 }``, ``F1 { ...F2 ...F2 }``,
...): a 2 KB document would expand to 2^300 fields. Here each fragment's
selection set is scanned once and summarised (how deep it reaches, how many
aliases and fields it holds, which fragments it spreads where); a spread adds
the fragment's summary instead of walking it again, so the pass is linear in
the document whatever it expands to. Spreads of unknown fragments and cycles
count as nothing: the standard rules report them, on a document that is by
then known to be small. Nothing here recurses, so a deep document cannot
exhaust the stack either.

The limits, on the expanded operation:

- depth: fields nested in fields (introspection fields not counted, as
  Strawberry's depth limiter does, so GraphiQL's schema query passes);
- aliases;
- cost: field selections, introspection included;
- introspection lists: lists of types, fields, arguments... nested in one
  another; each level multiplies the answer by the size of the schema.

Two more, on each selection set with its inline and spread fragments merged
in, bound graphql-core's check that fields of one response name can merge,
which compares such fields pairwise (300 copies of ``catalog { metrics { name
} }`` took 1.5 s): how often one response name repeats (``MAX_REPEATS``), and
how many fragments one selection set spreads (``MAX_SPREADS``). Within them,
graphql-core's own comparison budget is the last bound (a few tenths of a
second at most, measured on a shared 2-core machine).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

SATURATED = 10**9
"""Counts stop growing here: a bomb's true size does not fit in a message, and the limits are far below."""
MAX_INTROSPECTION_LISTS = 3
"""``types { fields { args } }`` is as deep as GraphiQL's schema query goes."""
MAX_REPEATS = 10
"""Fields of one response name in one selection set, fragments merged: clients repeat a field in a few fragments,
not in dozens."""
MAX_SPREADS = 50
"""Fragments spread into one selection set."""
_INTROSPECTION_LISTS = frozenset(
    {"types", "fields", "args", "interfaces", "possibleTypes", "enumValues", "inputFields", "directives"}
)


@dataclass(frozen=True)
class Size:
    """What a selection set expands to: depth, aliases, field selections, introspection list nesting; and the most
    fragments spread into one of its selection sets."""

    depth: int = 0
    aliases: int = 0
    cost: int = 0
    lists: int = 0
    spreads: int = 0


@dataclass(frozen=True)
class _Spread:
    fragment: str
    depth: int
    lists: int


@dataclass
class _Group:
    """One selection set with its inline fragments merged in: its fields' response names, the fragments it spreads."""

    names: Counter[str] = field(default_factory=Counter)
    fragments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Scan:
    """A selection set scanned alone: its size, the fragments it spreads (at which depth), its groups (root first)."""

    size: Size
    spreads: tuple[_Spread, ...]
    groups: tuple[_Group, ...]


def _is_introspection(name: str) -> bool:
    return name.startswith("__")


def _scan(selection_set: SelectionSetNode, *, introspection: bool) -> _Scan:
    """One pass over a selection set without following spreads; ``introspection``: it is inside ``__schema``."""
    depth = aliases = cost = lists = 0
    spreads: list[_Spread] = []
    groups: list[_Group] = []
    pending: list[tuple[SelectionSetNode, int, int, bool, _Group | None]] = [(selection_set, 0, 0, introspection, None)]
    while pending:
        current, level, nested_lists, inside, group = pending.pop()
        if group is None:
            group = _Group()
            groups.append(group)
        for selection in current.selections:
            if isinstance(selection, FragmentSpreadNode):
                spreads.append(_Spread(selection.name.value, level, nested_lists))
                group.fragments.append(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append((selection.selection_set, level, nested_lists, inside, group))
            elif isinstance(selection, FieldNode):
                name = selection.name.value
                cost += 1
                aliases += selection.alias is not None
                group.names[(selection.alias or selection.name).value] += 1
                counted = inside or _is_introspection(name)
                field_lists = nested_lists + (counted and name in _INTROSPECTION_LISTS)
                lists = max(lists, field_lists)
                if not counted:
                    depth = max(depth, level)
                if selection.selection_set is not None:
                    pending.append((selection.selection_set, level + (not counted), field_lists, counted, None))
    spread_count = max(len(group.fragments) for group in groups)
    return _Scan(Size(depth, aliases, cost, lists, spread_count), tuple(spreads), tuple(groups))


def _combine(scan: _Scan, sizes: dict[str, Size]) -> Size:
    """A scanned selection set with the sizes of the fragments it spreads (unknown or cyclic ones count nothing)."""
    depth, aliases, cost, lists, spreads = (
        getattr(scan.size, f) for f in ("depth", "aliases", "cost", "lists", "spreads")
    )
    for spread in scan.spreads:
        size = sizes.get(spread.fragment)
        if size is None:
            continue
        depth = max(depth, spread.depth + size.depth)
        aliases = min(SATURATED, aliases + size.aliases)
        cost = min(SATURATED, cost + size.cost)
        lists = max(lists, spread.lists + size.lists)
        spreads = max(spreads, size.spreads)
    return Size(depth, aliases, cost, lists, spreads)


class Measured:
    """A document's definitions, each scanned once; fragments in dependency order (an iterative depth-first walk)."""

    def __init__(self, document: DocumentNode) -> None:
        self.operations = [
            (d.name.value if d.name else "anonymous", d, _scan(d.selection_set, introspection=False))
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode)
        ]
        self.fragments: dict[str, tuple[FragmentDefinitionNode, _Scan]] = {}
        for d in document.definitions:
            if isinstance(d, FragmentDefinitionNode) and d.name.value not in self.fragments:
                scan = _scan(d.selection_set, introspection=_is_introspection(d.type_condition.name.value))
                self.fragments[d.name.value] = (d, scan)
        self.order = self._dependency_order()

    def _dependency_order(self) -> list[str]:
        """Every fragment after those it spreads; in a cycle, the spread that closes it is left unresolved."""
        order: list[str] = []
        done: set[str] = set()
        entered: set[str] = set()
        for root in self.fragments:
            stack = [root]
            while stack:
                name = stack[-1]
                if name in done:
                    stack.pop()
                elif name not in entered:  # first visit: the fragments it spreads go first
                    entered.add(name)
                    spreads = self.fragments[name][1].spreads
                    stack.extend(
                        s.fragment for s in spreads if s.fragment in self.fragments and s.fragment not in entered
                    )
                else:
                    stack.pop()
                    done.add(name)
                    order.append(name)
        return order

    def sizes(self) -> Iterator[tuple[str, OperationDefinitionNode | FragmentDefinitionNode, Size]]:
        """Each operation with its expanded size, then each fragment (used or not: validation walks them all)."""
        sizes: dict[str, Size] = {}
        for name in self.order:
            sizes[name] = _combine(self.fragments[name][1], sizes)
        for name, node, scan in self.operations:
            yield name, node, _combine(scan, sizes)
        for name in self.order:
            yield f"fragment {name}", self.fragments[name][0], sizes[name]

    def repeats(self) -> Iterator[tuple[str, OperationDefinitionNode | FragmentDefinitionNode, int]]:
        """The most fields of one response name in one selection set once spread fragments are merged into it.

        Merging costs the size of each spread fragment's top level, which the cost limit, checked first, bounds.
        """
        tops: dict[str, Counter[str]] = {}

        def merged(group: _Group) -> Counter[str]:
            names = Counter(group.names)
            for fragment in group.fragments:
                names.update(tops.get(fragment, {}))
            return names

        for name in self.order:
            tops[name] = merged(self.fragments[name][1].groups[0])
        named = [(f"fragment {n}", self.fragments[n][0], self.fragments[n][1]) for n in self.order]
        for name, node, scan in [*self.operations, *named]:
            yield name, node, max((max(merged(g).values(), default=0) for g in scan.groups), default=0)


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_cost: int

    def problems(self, name: str, size: Size) -> Iterator[str]:
        if size.depth > self.max_depth:
            yield f"'{name}' exceeds maximum operation depth of {self.max_depth}"
        if size.aliases > self.max_aliases:
            yield f"{_count(size.aliases)} aliases found. Allowed: {self.max_aliases}"
        if size.cost > self.max_cost:
            yield (
                f"'{name}' selects {_count(size.cost)} fields once fragments are expanded, more than the maximum of "
                f"{self.max_cost}; select fewer fields, or split the request"
            )
        if size.spreads > MAX_SPREADS:
            yield (
                f"'{name}' spreads {size.spreads} fragments into one selection set, more than the maximum of "
                f"{MAX_SPREADS}"
            )
        if size.lists > MAX_INTROSPECTION_LISTS:
            yield (
                f"'{name}' nests {size.lists} introspection lists (types, fields, args...), more than the maximum "
                f"of {MAX_INTROSPECTION_LISTS}"
            )


def _count(value: int) -> str:
    return f"over {SATURATED:,}" if value >= SATURATED else str(value)


class DocumentLimits(SchemaExtension):
    """Refuses an oversized document with LIMIT_EXCEEDED before graphql-core's validation rules see it.

    Strawberry skips validation when an extension has already set errors, so
    no standard rule ever walks a document larger than these limits.
    """

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            problems = self.problems(Measured(context.graphql_document))
            if problems:
                node, messages = problems
                extensions = {"code": "LIMIT_EXCEEDED"}
                context.pre_execution_errors = [GraphQLError(m, nodes=[node], extensions=extensions) for m in messages]
        yield

    def problems(self, measured: Measured) -> tuple[Node, list[str]] | None:
        """The first definition found too large and what is too large; the fragments it spreads would repeat it."""
        for name, node, size in measured.sizes():
            messages = list(self.limits.problems(name, size))
            if messages:
                return node, messages
        for name, node, repeats in measured.repeats():
            if repeats > MAX_REPEATS:
                return node, [
                    f"'{name}' repeats a field {repeats} times in one selection set (fragments included), more than "
                    f"the maximum of {MAX_REPEATS}; select it once, or give the copies aliases"
                ]
        return None
