"""YAML config files -> semantic model, with file and line for every problem.

Each file is read into plain data with the line of every key
(``yaml_lines``), checked against the schema in one pass
(``config_schema``, ``schema_problems``) and built into the frozen values of
``metrics.model``. The loader itself keeps what spans files: a name is
defined once, and ``extend_facts`` adds to a fact declared anywhere. Parts
with a structural problem are left out and remembered (``Config.broken``), so
the semantic rules in ``validation`` check everything else and say nothing
about those parts a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from metrics.config_schema import FactBodySpec, Path_
from metrics.config_text import UnreadableFile, read_config_text
from metrics.errors import Issue, did_you_mean
from metrics.model import Dimension, Fact, Metric, Rollup
from metrics.schema_problems import check_file
from metrics.yaml_lines import Document, read_yaml

BUILTIN_CONFIG = Path(__file__).parent / "catalog"
SECTIONS = ("dimensions", "facts", "metrics", "rollups")
EXTEND_FACTS = "extend_facts"
Finding = tuple[str, str, tuple[str | int, ...]]
"""A semantic rule's problem: (code, message, path of the definition or key at fault)."""


@dataclass
class Config:
    """Everything the files declare, where each definition stands, and which parts were left out as broken."""

    dimensions: dict[str, Dimension] = field(default_factory=dict)
    facts: dict[str, Fact] = field(default_factory=dict)
    metrics: dict[str, Metric] = field(default_factory=dict)
    rollups: dict[str, Rollup] = field(default_factory=dict)
    where: dict[Path_, tuple[str, int]] = field(default_factory=dict)
    broken: set[Path_] = field(default_factory=set)
    """Paths of the definitions and parts left out for a structural problem already reported."""
    issues: list[Issue] = field(default_factory=list)

    def issue(self, code: str, message: str, at: tuple[str, int]) -> None:
        self.issues.append(Issue(code, message, *at))

    def location(self, *path: str | int) -> tuple[str, int]:
        """The nearest recorded position of ``path`` (its parents if it has none of its own)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.where:
                return self.where[path[:end]]
        return ("<config>", 0)

    def is_broken(self, *path: str | int) -> bool:
        """Whether ``path`` names something left out as broken, so a rule should not call it unknown."""
        return path in self.broken

    def names(self, section: str) -> list[str]:
        """A section's names, built or left out as broken: rules about a name alone apply to both."""
        broken = sorted(str(path[1]) for path in self.broken if len(path) == 2 and path[0] == section)
        return [*getattr(self, section), *broken]

    def broken_columns(self, fact: str) -> set[str]:
        """A fact's columns left out as broken: using one is not a second problem."""
        return {str(path[3]) for path in self.broken if len(path) == 4 and path[:3] == ("facts", fact, "columns")}


@dataclass
class _Extension:
    fact: str
    spec: FactBodySpec
    file: str
    document: Document
    broken: set[Path_]
    """The extension's columns and dimension paths left out as broken."""


def config_files(directories: Iterable[Path]) -> list[Path]:
    return [file for directory in directories for file in sorted(Path(directory).glob("*.y*ml"))]


def read_config(directories: Iterable[Path]) -> Config:
    """Read every ``*.yaml`` file of the directories (later files may add, never redefine)."""
    config = Config()
    extensions: list[_Extension] = []
    for file in config_files(directories):
        shown = str(file)
        try:
            document = read_yaml(read_config_text(file))
        except UnreadableFile as exc:
            config.issue("unreadable_file", str(exc), (shown, 0))
            continue
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            config.issue("yaml_syntax", f"not valid YAML: {exc.problem}", (shown, mark.line + 1 if mark else 0))
            continue
        for key, line in document.duplicate_keys:
            config.issue("duplicate_key", f"key {key!r} appears twice in this mapping", (shown, line))
        if document.data is None:
            continue
        redefined = _redefinitions(document, shown, config)
        spec, problems, broken = check_file(document.data)
        for code, message, path in problems:
            config.issue(code, message, (shown, document.line(path)))
        config.broken |= {path for path in broken if path[:1] != (EXTEND_FACTS,)}
        config.where |= {
            path: (shown, line)
            for path, line in document.lines.items()
            if path[:1] != (EXTEND_FACTS,) and path[:2] not in redefined
        }
        config.dimensions |= {name: dimension.build(name) for name, dimension in spec.dimensions.items()}
        config.facts |= {name: fact.build(name) for name, fact in spec.facts.items()}
        config.metrics |= {
            name: metric.build(name, *config.where[("metrics", name)]) for name, metric in spec.metrics.items()
        }
        config.rollups |= {
            name: rollup.build(name, *config.where[("rollups", name)]) for name, rollup in spec.rollups.items()
        }
        extensions += [
            _Extension(name, body, shown, document, {path for path in broken if path[:2] == (EXTEND_FACTS, name)})
            for name, body in spec.extend_facts.items()
        ]
    for extension in extensions:
        _extend(extension, config)
    return config


def _redefinitions(document: Document, file: str, config: Config) -> set[Path_]:
    """Definitions of a name an earlier file defined: reported, and left out before the schema sees them."""
    redefined: set[Path_] = set()
    data: Any = document.data
    for section in SECTIONS:
        entries = data.get(section) if isinstance(data, dict) else None
        for name in list(entries) if isinstance(entries, dict) else ():
            first = config.where.get((section, name))
            if first is not None:
                message = f"{section[:-1]} {name!r} is already defined at {first[0]}:{first[1]}"
                config.issue("duplicate_name", message, (file, document.line((section, name))))
                redefined.add((section, name))
                del entries[name]
    return redefined


def _extend(extension: _Extension, config: Config) -> None:
    """Add columns and dimensions to a fact declared elsewhere (a team slicing a built-in fact its own way).

    Applied after every file is read, so it does not matter which file comes first.
    """
    name, document = extension.fact, extension.document
    fact = config.facts.get(name)
    if fact is None:
        if not config.is_broken("facts", name):
            message = f"extend_facts names unknown fact {name!r}{did_you_mean(name, config.facts)}"
            config.issue("unknown_fact", message, (extension.file, document.line((EXTEND_FACTS, name))))
        return
    added = {"columns": extension.spec.column_types(), "dimensions": extension.spec.paths()}
    existing = {"columns": fact.columns, "dimensions": fact.dimensions}
    config.broken |= {("facts", *path[1:]) for path in extension.broken if path[3] not in existing[str(path[2])]}
    for kind, names in added.items():
        for item in names:
            at = (extension.file, document.line((EXTEND_FACTS, name, kind, item)))
            if item in existing[kind]:
                message = f"fact {name!r} already has {kind[:-1]} {item!r}; an extension may only add"
                config.issue("duplicate_name", message, at)
            else:
                config.where |= {
                    ("facts", *path[1:]): (extension.file, line)
                    for path, line in document.lines.items()
                    if path[:4] == (EXTEND_FACTS, name, kind, item)
                }
    config.facts[name] = replace(
        fact,
        columns={**added["columns"], **fact.columns},
        expressions={
            **{c: e for c, e in extension.spec.expressions().items() if c not in fact.columns},
            **fact.expressions,
        },
        dimensions={**added["dimensions"], **fact.dimensions},
    )
