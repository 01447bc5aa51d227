"""YAML config files -> semantic model, with file and line for every problem.

Files are composed into YAML nodes (not plain dicts) so each value keeps its
line; duplicate keys, which PyYAML would silently overwrite, are reported.
Structural problems are collected, never raised one by one; semantic rules
live in ``validation``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from metrics.config_text import UnreadableFile, read_config_text
from metrics.errors import Issue, did_you_mean
from metrics.model import (
    Aggregation,
    Attribute,
    Bridge,
    ColumnRef,
    Condition,
    DataType,
    Dimension,
    DimensionPath,
    Fact,
    FilterOp,
    Format,
    History,
    Measure,
    Metric,
)

BUILTIN_CONFIG = Path(__file__).parent / "catalog"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SCALARS = yaml.constructor.SafeConstructor()

Path_ = tuple[str, ...]


@dataclass
class Node:
    """A YAML value with where it came from."""

    value: Any
    file: str
    line: int


@dataclass
class Config:
    """Everything the files declare, plus where each definition stands."""

    dimensions: dict[str, Dimension] = field(default_factory=dict)
    facts: dict[str, Fact] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    where: dict[Path_, tuple[str, int]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    def issue(self, code: str, message: str, at: Node | tuple[str, int]) -> None:
        file, line = (at.file, at.line) if isinstance(at, Node) else at
        self.issues.append(Issue(code, message, file, line))

    def location(self, *path: str) -> tuple[str, int]:
        """The nearest recorded position of ``path`` (its parents if it has none of its own)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.where:
                return self.where[path[:end]]
        return ("<config>", 0)


def _to_nodes(node: yaml.Node, file: str, config: Config) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in mapping:
                config.issue(
                    "duplicate_key", f"key {key!r} appears twice in this mapping", (file, key_node.start_mark.line + 1)
                )
            value = _to_nodes(value_node, file, config)
            value.line = key_node.start_mark.line + 1  # problems point at the key
            mapping[key] = value
        return Node(mapping, file, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_to_nodes(item, file, config) for item in node.value], file, line)
    return Node(_SCALARS.construct_object(node), file, line)


def plain(node: Node) -> Any:
    if isinstance(node.value, dict):
        return {key: plain(value) for key, value in node.value.items()}
    if isinstance(node.value, list):
        return [plain(item) for item in node.value]
    return node.value


def _mapping(node: Node, what: str, config: Config, allowed: Iterable[str] | None = None) -> dict[str, Node] | None:
    if not isinstance(node.value, dict):
        config.issue("not_a_mapping", f"{what} must be a mapping of keys to values", node)
        return None
    if allowed is not None:
        allowed = list(allowed)
        for key, value in node.value.items():
            if key not in allowed:
                config.issue("unknown_key", f"{what} has unknown key {key!r}{did_you_mean(key, allowed)}", value)
    return node.value


def _text(fields: dict[str, Node], key: str, config: Config, at: Node, *, required: bool = False) -> str | None:
    node = fields.get(key)
    if node is None:
        if required:
            config.issue("missing_key", f"missing required key {key!r}", at)
        return None
    if not isinstance(node.value, str) or not node.value:
        config.issue("not_a_string", f"{key!r} must be a non-empty string", node)
        return None
    return node.value


def _enum(enum: type[Any], node: Node | None, what: str, config: Config) -> Any:
    if node is None:
        return None
    choices = [member.value for member in enum]
    if node.value not in choices:
        hint = did_you_mean(str(node.value), choices) or f" (one of: {', '.join(choices)})"
        config.issue("invalid_value", f"{what} {node.value!r} is not valid{hint}", node)
        return None
    return enum(node.value)


def _named(section: Node, what: str, config: Config) -> Iterator[tuple[str, Node]]:
    entries = _mapping(section, f"section {what}", config)
    for name, node in (entries or {}).items():
        if not NAME.match(name):
            config.issue("invalid_name", f"{what[:-1]} name {name!r} must be snake_case (a-z, 0-9, _)", node)
            continue
        yield name, node


def _dimension(name: str, node: Node, config: Config) -> Dimension | None:
    fields = _mapping(
        node, f"dimension {name!r}", config, ["label", "description", "table", "key", "history", "attributes", "type"]
    )
    if fields is None:
        return None
    label = _text(fields, "label", config, node) or name.replace("_", " ").capitalize()
    description = _text(fields, "description", config, node) or ""
    table = _text(fields, "table", config, node)
    if table is None:
        value_type = _enum(DataType, fields.get("type"), "type", config) or DataType.STRING
        return Dimension(name, label, description, type=value_type)
    key = _text(fields, "key", config, node, required=True)
    history = None
    if "history" in fields:
        columns = _mapping(fields["history"], "history", config, ["valid_from", "valid_to"]) or {}
        valid_from = _text(columns, "valid_from", config, fields["history"], required=True)
        valid_to = _text(columns, "valid_to", config, fields["history"], required=True)
        history = History(valid_from, valid_to) if valid_from and valid_to else None
    attributes = []
    for attribute_name, attribute_node in _named(
        fields.get("attributes", Node({}, node.file, node.line)), "attributes", config
    ):
        config.where[("dimensions", name, attribute_name)] = (attribute_node.file, attribute_node.line)
        spec = (
            _mapping(
                attribute_node, f"attribute {name}.{attribute_name}", config, ["column", "type", "label", "description"]
            )
            or {}
        )
        column = _text(spec, "column", config, attribute_node, required=True)
        data_type = _enum(DataType, spec.get("type"), "type", config) or DataType.STRING
        if column:
            attributes.append(
                Attribute(
                    attribute_name,
                    column,
                    data_type,
                    _text(spec, "label", config, attribute_node) or attribute_name.replace("_", " ").capitalize(),
                    _text(spec, "description", config, attribute_node) or "",
                )
            )
    if not attributes:
        config.issue("no_attributes", f"table dimension {name!r} declares no attributes", node)
    return Dimension(name, label, description, table, key, history, tuple(attributes))


def _path(fact: str, dimension: str, node: Node, config: Config) -> DimensionPath | None:
    if isinstance(node.value, str):
        return DimensionPath(dimension, column=node.value)
    spec = _mapping(node, f"fact {fact!r} dimension {dimension!r}", config, ["bridge", "key", "column"])
    if spec is None:
        return None
    table = _text(spec, "bridge", config, node, required=True)
    key = _text(spec, "key", config, node, required=True)
    column = _text(spec, "column", config, node, required=True)
    return DimensionPath(dimension, bridge=Bridge(table, key, column)) if table and key and column else None


def _fact(name: str, node: Node, config: Config) -> Fact | None:
    fields = _mapping(
        node, f"fact {name!r}", config, ["label", "description", "table", "time", "columns", "dimensions"]
    )
    if fields is None:
        return None
    table = _text(fields, "table", config, node, required=True)
    time = _text(fields, "time", config, node, required=True)
    columns, expressions, paths = _fact_body(name, fields, node, config)
    if table is None or time is None:
        return None
    return Fact(
        name,
        _text(fields, "label", config, node) or name.replace("_", " ").capitalize(),
        table,
        time,
        _text(fields, "description", config, node) or "",
        columns,
        paths,
        expressions,
    )


def _fact_body(
    name: str, fields: dict[str, Node], node: Node, config: Config
) -> tuple[dict[str, DataType], dict[str, str], dict[str, DimensionPath]]:
    """A fact's columns, their expressions and its dimension paths: what a fact declares and an extension adds."""
    columns: dict[str, DataType] = {}
    expressions: dict[str, str] = {}
    for column, type_node in (
        _mapping(fields.get("columns", Node({}, node.file, node.line)), "columns", config) or {}
    ).items():
        config.where[("facts", name, "columns", column)] = (type_node.file, type_node.line)
        if isinstance(type_node.value, dict):
            spec = _mapping(type_node, f"computed column {column!r}", config, ["type", "expression"]) or {}
            _record(config, ("facts", name, "columns", column), spec)
            expression = _text(spec, "expression", config, type_node, required=True)
            if "type" not in spec:
                config.issue("missing_key", "missing required key 'type'", type_node)
            type_node = spec.get("type")
            if expression is not None:
                expressions[column] = expression
        data_type = _enum(DataType, type_node, f"type of column {column!r}", config)
        if data_type is not None:
            columns[column] = data_type
    paths: dict[str, DimensionPath] = {}
    for dimension, path_node in (
        _mapping(fields.get("dimensions", Node({}, node.file, node.line)), "dimensions", config) or {}
    ).items():
        config.where[("facts", name, "dimensions", dimension)] = (path_node.file, path_node.line)
        path = _path(name, dimension, path_node, config)
        if path is not None:
            paths[dimension] = path
    return columns, {column: expression for column, expression in expressions.items() if column in columns}, paths


def _extend_facts(extensions: list[tuple[str, Node]], config: Config) -> None:
    """Add columns and dimensions to facts declared elsewhere (a team slicing a built-in fact its own way).

    Applied after every file is read, so it does not matter which file comes first.
    """
    for name, node in extensions:
        fields = _mapping(node, f"extension of fact {name!r}", config, ["columns", "dimensions"])
        if fields is None:
            continue
        fact = config.facts.get(name)
        if fact is None:
            config.issue(
                "unknown_fact", f"extend_facts names unknown fact {name!r}{did_you_mean(name, config.facts)}", node
            )
            continue
        columns, expressions, paths = _fact_body(name, fields, node, config)
        for kind, added, existing in (("column", columns, fact.columns), ("dimension", paths, fact.dimensions)):
            for clash in sorted(set(added) & set(existing)):
                config.issue(
                    "duplicate_name",
                    f"fact {name!r} already has {kind} {clash!r}; an extension may only add",
                    config.location("facts", name, f"{kind}s", clash),
                )
        config.facts[name] = replace(
            fact,
            columns={**columns, **fact.columns},
            expressions={**expressions, **fact.expressions},
            dimensions={**paths, **fact.dimensions},
        )


def _record(config: Config, prefix: Path_, fields: dict[str, Node]) -> None:
    """Remember where each key stands, so an issue about it points at its own line."""
    for key, node in fields.items():
        config.where[(*prefix, key)] = (node.file, node.line)


def _conditions(node: Node, config: Config, prefix: Path_) -> tuple[Condition, ...]:
    conditions = []
    for column, ops_node in (_mapping(node, "filter", config) or {}).items():
        config.where[(*prefix, column)] = (ops_node.file, ops_node.line)
        operators = _mapping(ops_node, f"filter on {column!r}", config) or {}
        _record(config, (*prefix, column), operators)
        for op_name, value_node in operators.items():
            op = _enum(FilterOp, Node(op_name, value_node.file, value_node.line), "filter operator", config)
            value = plain(value_node)
            if isinstance(value, dict) and set(value) == {"column"}:
                value = ColumnRef(str(value["column"]))
            if op is not None:
                conditions.append(Condition(column, op, tuple(value) if isinstance(value, list) else value))
    return tuple(conditions)


_MEASURE_KEYS = ["fact", "aggregation", "column", "percentile", "filter"]


def _measure(fields: dict[str, Node], node: Node, config: Config, prefix: Path_) -> Measure | None:
    _record(config, prefix, fields)
    fact = _text(fields, "fact", config, node, required=True)
    aggregation = _enum(Aggregation, fields.get("aggregation"), "aggregation", config)
    if "aggregation" not in fields:
        config.issue("missing_key", "missing required key 'aggregation'", node)
    percentile_node = fields.get("percentile")
    percentile = percentile_node.value if percentile_node is not None else None
    if percentile is not None and (isinstance(percentile, bool) or not isinstance(percentile, (int, float))):
        config.issue("invalid_value", f"percentile {percentile!r} must be a number between 0 and 1", percentile_node)
        percentile = None
    filters = _conditions(fields["filter"], config, (*prefix, "filter")) if "filter" in fields else ()
    if fact is None or aggregation is None:
        return None
    return Measure(fact, aggregation, _text(fields, "column", config, node), percentile, filters)


def _operand(node: Node, config: Config, prefix: Path_) -> str | Measure | None:
    if isinstance(node.value, str):
        return node.value
    fields = _mapping(node, "ratio operand", config, _MEASURE_KEYS)
    return _measure(fields, node, config, prefix) if fields is not None else None


def _format(fields: dict[str, Node], config: Config, node: Node) -> str | None:
    text = _text(fields, "format", config, node)
    if text is None:
        return None
    known = _enum(Format, fields["format"], "format", config)
    return known.value if known is not None else None


def _metric(name: str, node: Node, config: Config) -> Metric | None:
    allowed = ["label", "description", "unit", "format", "ratio", "expression", *_MEASURE_KEYS]
    fields = _mapping(node, f"metric {name!r}", config, allowed)
    if fields is None:
        return None
    prefix = ("metrics", name)
    _record(config, prefix, fields)
    common = {
        "name": name,
        "label": _text(fields, "label", config, node, required=True) or name.replace("_", " ").capitalize(),
        "description": _text(fields, "description", config, node, required=True) or "",
        "unit": _text(fields, "unit", config, node),
        "format": _format(fields, config, node),
        "file": node.file,
        "line": node.line,
    }
    kinds = [kind for kind in ("aggregation", "ratio", "expression") if kind in fields]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        config.issue(
            "metric_kind", f"metric {name!r} needs exactly one of aggregation, ratio, expression (found: {found})", node
        )
        return None
    if kinds == ["expression"]:
        expression = _text(fields, "expression", config, node, required=True)
        return Metric(**common, expression=expression) if expression else None
    if kinds == ["ratio"]:
        parts = _mapping(fields["ratio"], f"ratio of {name!r}", config, ["numerator", "denominator"]) or {}
        _record(config, prefix, parts)
        for part in ("numerator", "denominator"):
            if part not in parts:
                config.issue("missing_key", f"ratio of {name!r} needs a {part}", fields["ratio"])
        numerator = _operand(parts["numerator"], config, (*prefix, "numerator")) if "numerator" in parts else None
        denominator = (
            _operand(parts["denominator"], config, (*prefix, "denominator")) if "denominator" in parts else None
        )
        if numerator is None or denominator is None:
            return None
        return Metric(**common, numerator=numerator, denominator=denominator)
    measure = _measure(fields, node, config, prefix)
    return Metric(**common, measure=measure) if measure else None


_SECTIONS = {"dimensions": _dimension, "facts": _fact, "metrics": _metric}
EXTEND_FACTS = "extend_facts"


def config_files(directories: Iterable[Path]) -> list[Path]:
    return [file for directory in directories for file in sorted(Path(directory).glob("*.y*ml"))]


def read_config(directories: Iterable[Path]) -> Config:
    """Read every ``*.yaml`` file of the directories (later files may add, never redefine)."""
    config = Config()
    extensions: list[tuple[str, Node]] = []
    for file in config_files(directories):
        shown = str(file)
        try:
            root = yaml.compose(read_config_text(file), Loader=yaml.SafeLoader)
        except UnreadableFile as exc:
            config.issue("unreadable_file", str(exc), (shown, 0))
            continue
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            config.issue("yaml_syntax", f"not valid YAML: {exc.problem}", (shown, mark.line + 1 if mark else 0))
            continue
        if root is None:
            continue
        document = _to_nodes(root, shown, config)
        sections = _mapping(document, "a config file", config, [*_SECTIONS, EXTEND_FACTS]) or {}
        for section, section_node in sections.items():
            if section == EXTEND_FACTS:
                extensions.extend(_named(section_node, section, config))
                continue
            registry: dict[str, Any] = getattr(config, section)
            for name, node in _named(section_node, section, config):
                if name in registry:
                    first = config.where[(section, name)]
                    config.issue(
                        "duplicate_name", f"{section[:-1]} {name!r} is already defined at {first[0]}:{first[1]}", node
                    )
                    continue
                config.where[(section, name)] = (node.file, node.line)
                built = _SECTIONS[section](name, node, config)
                if built is not None:
                    registry[name] = built
    _extend_facts(extensions, config)
    return config
