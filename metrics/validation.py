"""Semantic rules over a read config, one function per rule, every problem collected.

Each rule yields ``(code, message, path)``; the path locates the definition so
the issue names file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from metrics.config_schema import NAME
from metrics.errors import Issue, did_you_mean
from metrics.expressions import names, parse
from metrics.loader import Config, Finding
from metrics.measure_rules import check_measures
from metrics.model import MATCHING, ROW_COUNT, SPINE, Aggregation, DataType, Fact, Measure, Metric
from metrics.rollup_rules import check_rollups
from metrics.window_rules import check_windows

RESERVED_NAMES = {
    "time": "the time dimension",
    "day_of_week": "the time dimension",
    "hour_of_day": "the time dimension",
    "is_weekend": "the time dimension",
    ROW_COUNT: "the row count of a result",
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def expression_names(expression: str) -> list[str]:
    """Metric names an expression uses; raises ``ValueError`` for anything but arithmetic on names and numbers."""
    return names(parse(expression))


def references(metric: Metric) -> list[str]:
    """Other metrics this one is computed from."""
    if metric.expression is not None:
        try:
            return expression_names(metric.expression)
        except ValueError:
            return []
    return [operand for operand in (metric.numerator, metric.denominator) if isinstance(operand, str)]


def check_fact_dimensions(config: Config) -> Iterator[Finding]:
    for fact in config.facts.values():
        for name, path in fact.dimensions.items():
            where = ("facts", fact.name, "dimensions", name)
            dimension = config.dimensions.get(name)
            if dimension is None and config.is_broken("dimensions", name):
                continue
            if dimension is None:
                yield (
                    "unknown_dimension",
                    f"fact {fact.name!r} names unknown dimension {name!r}{did_you_mean(name, config.dimensions)}",
                    where,
                )
            elif dimension.is_table and path.bridge is not None:
                yield (
                    "invalid_join",
                    f"table dimension {name!r} is reached by its key column, not through a bridge",
                    where,
                )
            elif dimension.is_table and not NAME.match(str(path.column)):
                yield (
                    "invalid_name",
                    f"fact {fact.name!r}: dimension {name!r} is reached by key column {path.column!r}, "
                    "which is not a snake_case column name",
                    where,
                )
            elif dimension.is_table and path.column in fact.expressions:
                yield (
                    "invalid_join",
                    f"fact {fact.name!r}: table dimension {name!r} joins on a stored key column, "
                    f"not on computed column {path.column!r}",
                    where,
                )
            elif not dimension.is_table:
                column = path.column if path.bridge is None else path.bridge.key
                if config.is_broken("facts", fact.name, "columns", column):
                    continue
                if column not in fact.columns:
                    hint = (
                        did_you_mean(str(column), fact.columns)
                        or f" (declared columns: {', '.join(sorted(fact.columns))})"
                    )
                    yield (
                        "unknown_column",
                        f"fact {fact.name!r}: dimension {name!r} uses undeclared column {column!r}{hint}",
                        where,
                    )
                elif path.bridge is None and fact.columns[column] is not dimension.type:
                    yield (
                        "type_mismatch",
                        f"fact {fact.name!r}: dimension {name!r} is {dimension.type.value} "
                        f"but column {column!r} is {fact.columns[column].value}",
                        where,
                    )


FUNCTIONS = {"coalesce": (1, None), "seconds_between": (2, 2)}
"""The functions a computed column may call, with their least and most arguments (None: any number)."""


@dataclass
class _ColumnTypes:
    """Infers the type of a computed column's expression, collecting every problem on the way."""

    fact: Fact
    where: tuple[str, ...]
    broken: set[str]
    """Columns left out for a structural problem: using one is not a second problem."""
    findings: list[Finding] = field(default_factory=list)

    def problem(self, code: str, message: str) -> None:
        self.findings.append(
            (
                code,
                f"fact {self.fact.name!r}: computed column {self.where[-1]!r}: {message}",
                (*self.where, "expression"),
            )
        )

    def numeric(self, node: ast.expr) -> DataType | None:
        data_type = self.of(node)
        if data_type is not None and not data_type.is_numeric:
            self.problem("type_mismatch", f"arithmetic needs numbers, but {ast.unparse(node)!r} is {data_type.value}")
            return None
        return data_type

    def of(self, node: ast.expr) -> DataType | None:
        """The expression's type; None where a problem already explains why it has none."""
        if isinstance(node, ast.Constant):
            return DataType.INTEGER if isinstance(node.value, int) else DataType.FLOAT
        if isinstance(node, ast.Name):
            if node.id not in self.fact.columns and node.id not in self.broken:
                self.problem("unknown_column", f"unknown column {node.id!r}{did_you_mean(node.id, self.fact.columns)}")
            return self.fact.columns.get(node.id)
        if isinstance(node, ast.UnaryOp):
            return self.numeric(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = self.numeric(node.left), self.numeric(node.right)
            if left is None or right is None:
                return None
            exact = isinstance(node.op, ast.Div) or DataType.FLOAT in (left, right)
            return DataType.FLOAT if exact else DataType.INTEGER
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # parse admits nothing else
        return self.call(node.func.id, node.args)

    def call(self, function: str, arguments: list[ast.expr]) -> DataType | None:
        types = [self.of(argument) for argument in arguments]
        if function not in FUNCTIONS:
            self.problem(
                "unknown_function",
                f"unknown function {function!r}{did_you_mean(function, FUNCTIONS)} (functions: {', '.join(FUNCTIONS)})",
            )
            return None
        least, most = FUNCTIONS[function]
        if len(arguments) < least or (most is not None and len(arguments) > most):
            self.problem(
                "wrong_arity",
                f"{function} takes {least if least == most else f'at least {least}'} argument(s), not {len(arguments)}",
            )
            return None
        if function == "seconds_between":
            wrong = [
                ast.unparse(a)
                for a, t in zip(arguments, types, strict=True)
                if t is not None and t is not DataType.TIMESTAMP
            ]
            if wrong:
                self.problem("type_mismatch", f"seconds_between takes two timestamps, not {', '.join(wrong)}")
            return None if wrong else DataType.FLOAT
        known = {t for t in types if t is not None}
        if known and all(t.is_numeric for t in known):
            common: DataType | None = DataType.FLOAT if DataType.FLOAT in known else DataType.INTEGER
        elif len(known) > 1:
            self.problem(
                "type_mismatch",
                f"coalesce needs arguments of one type, not {', '.join(sorted(t.value for t in known))}",
            )
            return None
        else:
            common = next(iter(known), None)
        return None if None in types else common


def check_computed_columns(config: Config) -> Iterator[Finding]:
    for fact in config.facts.values():
        for column, expression in fact.expressions.items():
            where = ("facts", fact.name, "columns", column)
            try:
                tree = parse(expression, what="column names", calls=True)
            except ValueError as exc:
                yield (
                    "invalid_expression",
                    f"fact {fact.name!r}: computed column {column!r}: expression {expression!r} {exc}",
                    (*where, "expression"),
                )
                continue
            types = _ColumnTypes(fact, where, config.broken_columns(fact.name))
            inferred = types.of(tree)
            yield from types.findings
            declared = fact.columns[column]
            if inferred is not None and inferred is not declared:
                yield (
                    "type_mismatch",
                    f"fact {fact.name!r}: computed column {column!r} is declared {declared.value} "
                    f"but its expression is {inferred.value}",
                    (*where, "type"),
                )
        yield from _column_cycles(fact)


def _column_cycles(fact: Fact) -> Iterator[Finding]:
    uses = {}
    for column, expression in fact.expressions.items():
        try:
            uses[column] = [name for name in names(parse(expression, calls=True)) if name in fact.expressions]
        except ValueError:
            uses[column] = []
    for column, loop in _cycles(uses):
        yield (
            "cycle",
            f"fact {fact.name!r}: computed columns depend on each other in a cycle: {' -> '.join(loop)}",
            ("facts", fact.name, "columns", column),
        )


def _cycles(uses: dict[str, list[str]]) -> Iterator[tuple[str, list[str]]]:
    """Each loop of a dependency graph once, as (where it closes, the names along it); unknown names are skipped."""
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> Iterator[tuple[str, list[str]]]:
        if state.get(name) == "done" or name not in uses:
            return
        if state.get(name) == "open":
            yield name, [*trail[trail.index(name) :], name]
            return
        state[name] = "open"
        for used in uses[name]:
            yield from visit(used, [*trail, name])
        state[name] = "done"

    for name in uses:
        yield from visit(name, [])


def _referenced(metric: Metric) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Metric names this one uses, each with the path of the key that names it."""
    if metric.expression is not None:
        for name in references(metric):
            yield name, ("metrics", metric.name, "expression")
    for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
        if isinstance(operand, str):
            yield operand, ("metrics", metric.name, "ratio", part)


def _is_timestamp(config: Config, measure: Measure) -> bool:
    fact = config.facts.get(measure.fact)
    column_type = fact.columns.get(measure.column or "") if fact else None
    return measure.aggregation in (Aggregation.MIN, Aggregation.MAX) and column_type is DataType.TIMESTAMP


def check_references(config: Config) -> Iterator[Finding]:
    for metric in config.metrics.values():
        if metric.expression is not None:
            try:
                expression_names(metric.expression)
            except ValueError as exc:
                yield (
                    "invalid_expression",
                    f"metric {metric.name!r}: expression {metric.expression!r} {exc}",
                    ("metrics", metric.name, "expression"),
                )
        for name, path in _referenced(metric):
            used = config.metrics.get(name)
            if used is None and config.is_broken("metrics", name):
                continue
            if used is None:
                yield (
                    "unknown_metric",
                    f"metric {metric.name!r} uses unknown metric {name!r}{did_you_mean(name, config.metrics)}",
                    path,
                )
            elif used.measure is not None and _is_timestamp(config, used.measure):
                yield (
                    "type_mismatch",
                    f"metric {metric.name!r}: {name!r} is a timestamp, which cannot be divided or added",
                    path,
                )
        for part, operand in (("numerator", metric.numerator), ("denominator", metric.denominator)):
            if isinstance(operand, Measure) and _is_timestamp(config, operand):
                yield (
                    "type_mismatch",
                    f"metric {metric.name!r}: the {part} is a timestamp, which cannot be divided",
                    ("metrics", metric.name, "ratio", part),
                )


def check_cycles(config: Config) -> Iterator[Finding]:
    for name, loop in _cycles({name: references(metric) for name, metric in config.metrics.items()}):
        yield "cycle", f"metrics depend on each other in a cycle: {' -> '.join(loop)}", ("metrics", name)


def check_names(config: Config) -> Iterator[Finding]:
    """GraphQL names must be unique; names must not clash with the time attributes or the compiler's labels.

    The compiler labels ``tier.name`` as ``tier__name``, so a ``__`` in a name
    could collide with another attribute's label.
    """
    seen: dict[str, str] = {}
    for section in ("dimensions", "metrics"):
        for name in config.names(section):
            path = (section, name)
            if name in RESERVED_NAMES:
                yield "reserved_name", f"{section[:-1]} name {name!r} is reserved for {RESERVED_NAMES[name]}", path
            if "__" in name:
                yield (
                    "invalid_name",
                    f"{section[:-1]} name {name!r} must not contain '__' (the compiler's separator)",
                    path,
                )
            graphql = camel(name)
            if graphql in seen:
                yield (
                    "name_clash",
                    f"{section[:-1]} {name!r} and {seen[graphql]} both become GraphQL field {graphql!r}",
                    path,
                )
            seen[graphql] = f"{section[:-1]} {name!r}"
    for dimension in config.dimensions.values():
        for attribute in dimension.attributes:
            if "__" in attribute.name:
                yield (
                    "invalid_name",
                    f"attribute name {attribute.name!r} must not contain '__' (the compiler's separator)",
                    ("dimensions", dimension.name, attribute.name),
                )
    yield from _check_sql_names(config)


def _check_sql_names(config: Config) -> Iterator[Finding]:
    """Facts name the compiled query's CTEs and dimensions its join aliases.

    Neither may shadow a table or the compiler's own names.
    """
    tables = {fact.table for fact in config.facts.values()} | {d.table for d in config.dimensions.values() if d.table}
    tables |= {path.bridge.table for fact in config.facts.values() for path in fact.dimensions.values() if path.bridge}
    for section in ("facts", "dimensions"):
        for name in config.names(section):
            if name in (SPINE, MATCHING):
                yield (
                    "reserved_name",
                    f"{section[:-1]} name {name!r} is reserved for the compiler's own SQL names",
                    (section, name),
                )
            elif name in tables:
                yield (
                    "reserved_name",
                    f"{section[:-1]} name {name!r} is also a table name; "
                    f"the compiled SQL names a {section[:-1]} after it",
                    (section, name),
                )


RULES: tuple[Callable[[Config], Iterator[Finding]], ...] = (
    check_computed_columns,
    check_fact_dimensions,
    check_measures,
    check_references,
    check_cycles,
    check_names,
    check_windows,
    check_rollups,
)


def validate(config: Config) -> list[Issue]:
    """Every problem of the config: the loader's structural ones first, then each rule's."""
    issues = list(config.issues)
    for rule in RULES:
        for code, message, path in rule(config):
            file, line = config.location(*path)
            issues.append(Issue(code, message, file, line))
    return issues
