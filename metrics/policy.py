"""Access policies: which metrics, dimensions and facts a group may use, and which rows it may see.

Policies live beside the metrics, in a top-level ``policies:`` list of any
config file (``../shared/spec/access.md``). They are read once with the
registry, checked against it (unknown names are reported with file, line and
a suggestion, all at once), and bound per caller into a ``Scope``: the
caller's claims fill the row filters' ``{claims.x}`` placeholders, so the
scope is plain frozen data the compiler applies and cache keys can hold.

One ``Grant`` per matching policy: the metrics and dimensions it admits, and
its rows. A request is answered under the grants that admit everything it
names; their row filters are OR-ed (union), and that predicate is applied to
every fact of the query (``metrics.compiler.scope``). A metric is admitted
only when its facts are, when every fact has the dimensions the policy's
rows filter on (otherwise the filter could not apply), and when every metric
it is computed from is admitted too (an excluded metric must not leak through
a ratio or an expression built on it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from metrics.compiler.request import And, DimensionRef, Filter, Or, Predicate
from metrics.errors import ConfigError, Forbidden, Issue, UnknownDimension, did_you_mean
from metrics.loader import config_files
from metrics.model import Dimension, FilterOp, Measure, Metric
from metrics.registry import TIME, Registry
from metrics.validation import references
from metrics.yaml_lines import Document, read_yaml

EVERYONE = "*"
USER = "user"
"""The dimension of the anonymised user key: what k-anonymity counts, and what research may not slice by."""
_CLAIM = re.compile(r"^\{claims\.([A-Za-z_][A-Za-z0-9_]*)\}$")
_OPERATORS = {op.value: op for op in FilterOp} | {"notIn": FilterOp.NOT_IN, "isNull": FilterOp.IS_NULL}


@dataclass(frozen=True)
class Selector:
    """``includes`` / ``excludes`` of names; ``*`` stands for every name."""

    includes: tuple[str, ...] = (EVERYONE,)
    excludes: tuple[str, ...] = ()

    def admits(self, name: str) -> bool:
        included = EVERYONE in self.includes or name in self.includes
        return included and EVERYONE not in self.excludes and name not in self.excludes


@dataclass(frozen=True)
class RowFilter:
    """A mandatory predicate whose value may be a claim of the caller (``{claims.team}``)."""

    ref: DimensionRef
    op: FilterOp
    value: object

    def bind(self, claims: Mapping[str, Any]) -> Predicate | None:
        """The predicate for this caller, or None when the caller lacks the claim (the policy then grants nothing)."""
        match = _CLAIM.match(self.value) if isinstance(self.value, str) else None
        if match is None:
            return Predicate(self.ref, self.op, self.value)
        value = claims.get(match.group(1))
        if value is None:
            return None
        if self.op in (FilterOp.IN, FilterOp.NOT_IN):
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        elif isinstance(value, list):  # kept hashable (scopes key caches); the compiler refuses it as a bad value
            value = tuple(value)
        return Predicate(self.ref, self.op, value)


@dataclass(frozen=True)
class Policy:
    groups: tuple[str, ...]
    metrics: Selector = Selector()
    dimensions: Selector = Selector()
    facts: Selector = Selector()
    rows: tuple[RowFilter, ...] = ()
    file: str = ""
    line: int = 0

    def matches(self, groups: Iterable[str]) -> bool:
        return EVERYONE in self.groups or not set(self.groups).isdisjoint(groups)

    def __str__(self) -> str:
        return f"policy {'/'.join(self.groups)} ({self.file}:{self.line})"


@dataclass(frozen=True)
class Grant:
    """What one matching policy lets this caller use, with its rows bound to the caller's claims."""

    policy: str
    metrics: frozenset[str]
    dimensions: frozenset[str]
    rows: Filter | None


@dataclass(frozen=True)
class Scope:
    """A caller's effective access: hashable, so it can be part of a request and of every cache key."""

    grants: tuple[Grant, ...]
    k_anonymity: int | None = None
    """The research role's k: result rows over a fact with users aggregate at least k distinct users."""

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset().union(*(grant.metrics for grant in self.grants))

    @property
    def dimensions(self) -> frozenset[str]:
        return frozenset().union(*(grant.dimensions for grant in self.grants))

    def members(self, dimension: str) -> Filter | None:
        """Which members of a table dimension the caller may list: those its row filters on that dimension admit,
        under any grant that shows the dimension (all of them as soon as one such grant does not filter it)."""
        filters: list[Filter | None] = []
        for grant in self.grants:
            if dimension in grant.dimensions:
                own = [p for p in _conjuncts(grant.rows) if p.ref.dimension == dimension]
                filters.append(None if not own else own[0] if len(own) == 1 else And(tuple(own)))
        return union(filters)

    @property
    def visible(self) -> tuple[frozenset[str], frozenset[str]]:
        """What the caller's GraphQL schema shows: one schema per distinct visible set."""
        return self.metrics, self.dimensions


@dataclass(frozen=True)
class Policies:
    policies: tuple[Policy, ...] = ()

    def scope(self, registry: Registry, groups: Iterable[str], claims: Mapping[str, Any]) -> Scope | None:
        """The caller's scope; None when no policy exists (nothing is restricted). Admins are not scoped."""
        if not self.policies:
            return None
        groups = tuple(groups)
        grants = [_grant(registry, p, claims) for p in self.policies if p.matches(groups)]
        return Scope(tuple(grant for grant in grants if grant is not None))


def research_scope(registry: Registry, scope: Scope | None, k: int) -> Scope:
    """The research role's scope: its policies' (or everything), without the user key and the sensitive dimensions
    (filtering or grouping by them would isolate people), without time-relative metrics over users (see
    ``across_buckets``), and k-anonymous."""
    hidden = {USER} | {name for name, dimension in registry.dimensions.items() if dimension.sensitive}
    windowed = _across_buckets(registry)
    grants = (
        scope.grants
        if scope is not None
        else (Grant("research", frozenset(registry.metrics), frozenset((TIME, *registry.dimensions)), None),)
    )
    return Scope(
        tuple(
            replace(grant, metrics=grant.metrics - windowed, dimensions=grant.dimensions - hidden) for grant in grants
        ),
        k,
    )


@functools.lru_cache(maxsize=8)
def _across_buckets(registry: Registry) -> frozenset[str]:
    """The registry's metrics that ``across_buckets`` (found once per registry, not per research request)."""
    return frozenset(name for name, metric in registry.metrics.items() if across_buckets(registry, metric))


def across_buckets(registry: Registry, metric: Metric) -> bool:
    """Whether a metric reads users' rows outside its own row's bucket (a window, an earlier bucket). k-anonymity
    releases a row by the users of its own bucket, so such a value could carry a bucket it left out: a previous
    period's value is that bucket's, and a rolling total minus the released buckets in it is the rest."""
    known = registry if metric.name in registry.metrics else registry.extended([metric])
    return known.is_time_relative(metric.name) and any(USER in fact.dimensions for fact in known.facts_of(metric.name))


def _computed_from(metric: Metric) -> list[str]:
    """The metrics a metric is computed from, a time-relative one's base included: hidden parts hide the whole."""
    return [*references(metric), *([metric.base] if metric.base else [])]


def _grant(registry: Registry, policy: Policy, claims: Mapping[str, Any]) -> Grant | None:
    rows = [row.bind(claims) for row in policy.rows]
    if any(row is None for row in rows):
        return None
    filtered = {row.ref.dimension for row in policy.rows}
    facts = {
        name
        for name, fact in registry.facts.items()
        if policy.facts.admits(name) and filtered <= {TIME, *fact.dimensions}
    }
    admitted: dict[str, bool] = {}

    def admits(metric: str) -> bool:
        if metric not in admitted:
            admitted[metric] = False  # a cycle cannot admit itself (validation refuses cycles anyway)
            admitted[metric] = (
                policy.metrics.admits(metric)
                and all(fact.name in facts for fact in registry.facts_of(metric))
                and all(admits(other) for other in _computed_from(registry.metric(metric)))
            )
        return admitted[metric]

    metrics = frozenset(name for name in registry.metrics if admits(name))
    dimensions = frozenset(name for name in (TIME, *registry.dimensions) if policy.dimensions.admits(name))
    bound = [row for row in rows if row is not None]
    where = None if not bound else bound[0] if len(bound) == 1 else And(tuple(bound))
    return Grant(str(policy), metrics, dimensions, where)


def _conjuncts(rows: Filter | None) -> list[Predicate]:
    """A grant's rows are one predicate or an ``And`` of predicates (see ``_grant``)."""
    if rows is None:
        return []
    return [item for item in rows.items if isinstance(item, Predicate)] if isinstance(rows, And) else [rows]  # type: ignore[list-item]


def union(filters: list[Filter | None]) -> Filter | None:
    """Rows visible under any of the grants: None (every row) as soon as one grant has no row filter."""
    if not filters or any(f is None for f in filters):
        return None
    return filters[0] if len(filters) == 1 else Or(tuple(f for f in filters if f is not None))


# Loading ----------------------------------------------------------------------------------------------------


def load_policies(directories: Iterable[Any], registry: Registry) -> Policies:
    """Every ``policies:`` entry of the config files; raises ``ConfigError`` listing every problem."""
    policies: list[Policy] = []
    issues: list[Issue] = []
    for file in config_files(directories):
        document = read_yaml(file.read_text(encoding="utf-8"))
        entries = document.data.get("policies") if isinstance(document.data, dict) else None
        if entries is None:
            continue
        reader = _Reader(registry, str(file), document)
        if not isinstance(entries, list):
            reader.issue("invalid_value", "policies must be a list of policies", ("policies",))
        else:
            policies += [p for i, entry in enumerate(entries) if (p := reader.policy(entry, i)) is not None]
        issues += reader.issues
    if issues:
        raise ConfigError(issues)
    return Policies(tuple(policies))


@dataclass
class _Reader:
    registry: Registry
    file: str
    document: Document
    issues: list[Issue] = field(default_factory=list)

    def issue(self, code: str, message: str, path: tuple[str | int, ...]) -> None:
        self.issues.append(Issue(code, message, self.file, self.document.line(path)))

    def policy(self, entry: Any, index: int) -> Policy | None:
        at = ("policies", index)
        if not isinstance(entry, dict):
            self.issue("invalid_value", "a policy is a mapping with group (or groups), metrics, dimensions, rows", at)
            return None
        before = len(self.issues)
        for key in entry.keys() - {"group", "groups", "metrics", "dimensions", "facts", "rows"}:
            hint = did_you_mean(key, ["group", "groups", "metrics", "dimensions", "facts", "rows"])
            self.issue("unknown_key", f"policy: unknown key {key!r}{hint}", (*at, key))
        groups = self._groups(entry, at)
        policy = Policy(
            groups=groups,
            metrics=self._selector(entry, "metrics", list(self.registry.metrics), at),
            dimensions=self._selector(entry, "dimensions", [TIME, *self.registry.dimensions], at),
            facts=self._selector(entry, "facts", list(self.registry.facts), at),
            rows=tuple(self._rows(entry.get("rows"), (*at, "rows"))),
            file=self.file,
            line=self.document.line(at),
        )
        return policy if len(self.issues) == before else None

    def _groups(self, entry: dict[str, Any], at: tuple[str | int, ...]) -> tuple[str, ...]:
        value = entry.get("groups", [entry["group"]] if "group" in entry else None)
        if not isinstance(value, list) or not value or not all(isinstance(g, str) and g for g in value):
            self.issue("missing_key", "a policy needs group: NAME or groups: [NAMES] ('*' for every caller)", at)
            return ()
        return tuple(value)

    def _selector(self, entry: dict[str, Any], key: str, known: list[str], at: tuple[str | int, ...]) -> Selector:
        value = entry.get(key, {})
        if not isinstance(value, dict) or value.keys() - {"includes", "excludes"}:
            self.issue("invalid_value", f"policy {key}: give includes and/or excludes (lists of names or '*')", at)
            return Selector()
        lists = {}
        for part in ("includes", "excludes"):
            names = value.get(part, EVERYONE if part == "includes" else [])
            names = [names] if isinstance(names, str) else names
            if not isinstance(names, list):
                self.issue("invalid_value", f"policy {key}.{part}: a list of names or '*'", (*at, key, part))
                names = []
            for name in names:
                if name != EVERYONE and name not in known:
                    message = f"policy {key}.{part}: unknown {key[:-1]} {name!r}{did_you_mean(str(name), known)}"
                    self.issue(f"unknown_{key[:-1]}", message, (*at, key, part))
            lists[part] = tuple(names)
        return Selector(lists["includes"], lists["excludes"])

    def _rows(self, rows: Any, at: tuple[str | int, ...]) -> Iterator[RowFilter]:
        if rows is None:
            return
        if not isinstance(rows, dict):
            self.issue("invalid_value", "policy rows: a mapping of dimension attribute -> {operator: value}", at)
            return
        for attribute, operators in rows.items():
            try:
                ref = DimensionRef.parse(attribute)
                self._check_attribute(ref)
            except UnknownDimension as error:
                self.issue("unknown_dimension", f"policy rows: {error}", (*at, attribute))
                continue
            if not isinstance(operators, dict):
                self.issue("invalid_value", f"policy rows.{attribute}: give {{operator: value}}", (*at, attribute))
                continue
            for op, value in operators.items():
                if op not in _OPERATORS:
                    hint = did_you_mean(str(op), _OPERATORS) or f" (one of: {', '.join(_OPERATORS)})"
                    self.issue(
                        "invalid_value", f"policy rows.{attribute}: unknown operator {op!r}{hint}", (*at, attribute)
                    )
                    continue
                yield RowFilter(ref, _OPERATORS[op], tuple(value) if isinstance(value, list) else value)

    def _check_attribute(self, ref: DimensionRef) -> None:
        if ref.dimension == TIME:
            return
        dimension = self.registry.dimension(ref.dimension)
        if dimension.is_table and dimension.attribute(ref.attribute or "") is None:
            raise UnknownDimension(ref.key, [f"{dimension.name}.{a.name}" for a in dimension.attributes])
        if not dimension.is_table and ref.attribute is not None:
            raise UnknownDimension(ref.key, [dimension.name])


class ScopedRegistry(Registry):
    """The registry as one caller sees it: hidden metrics and dimensions are absent, and naming one is
    ``Forbidden`` in the same words as naming one that does not exist. Facts stay whole (a visible metric
    needs its fact); the compiler still compiles against the full registry, after the scope is applied."""

    def __init__(self, full: Registry, scope: Scope) -> None:  # noqa: D107 - no config to read: a view
        self.full = full
        self.facts = full.facts
        self.metrics = {name: m for name, m in full.metrics.items() if name in scope.metrics}
        self.dimensions = {name: d for name, d in full.dimensions.items() if name in scope.dimensions}

    def metric(self, name: str) -> Metric:
        if name not in self.metrics:
            raise Forbidden(f"metric {name!r} is not available to you{did_you_mean(name, self.metrics)}")
        return self.metrics[name]

    def dimension(self, name: str) -> Dimension:
        if name not in self.dimensions:
            known = [TIME, *self.dimensions]
            raise Forbidden(f"dimension {name!r} is not available to you{did_you_mean(name, known)}")
        return self.dimensions[name]

    def measures(self, name: str) -> dict[str, Measure]:
        self.metric(name)
        return self.full.measures(name)


@functools.lru_cache(maxsize=256)
def scoped_view(registry: Registry, scope: Scope) -> ScopedRegistry:
    """The caller's view, built once per scope: requests of one caller, and callers of one scope, share it."""
    return ScopedRegistry(registry, scope)
