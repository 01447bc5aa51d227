"""A file's data checked against the schema: its spec, every structural problem in words, and the parts left out.

pydantic reports each problem at a ``loc`` (keys, list indexes, and the tags
of the union forms it tried); walking that through the data gives the path of
the value at fault, which the loader turns into file and line. A part with a
problem (a metric, a fact's column, a filter condition...) is then left out
and the file validated again, so the rest is still built and checked; only
the first round's problems are reported, later rounds just finish leaving out
(a dimension whose every attribute was broken is left out without a second word).
"""

from __future__ import annotations

from typing import Any

from metrics.config_schema import IGNORABLE, OWN_CODES, FileSpec, Path_, Problem, SchemaError

_SUBJECTS = {
    "dimensions": "dimension",
    "facts": "fact",
    "metrics": "metric",
    "extend_facts": "extension of fact",
    "rollups": "rollup",
}
_PARTS = {"columns": "column", "dimensions": "dimension", "attributes": "attribute", "filter": "filter on"}
_ANY = None
_LEFT_OUT = (
    (_ANY, _ANY),
    (("facts", "extend_facts"), _ANY, ("columns", "dimensions"), _ANY),
    (("dimensions",), _ANY, ("attributes",), _ANY),
    (("metrics",), _ANY, ("filter",), _ANY),
    (("metrics",), _ANY, ("filter",), _ANY, _ANY),
    (("metrics",), _ANY, ("ratio",), _ANY, ("filter",), _ANY),
    (("metrics",), _ANY, ("ratio",), _ANY, ("filter",), _ANY, _ANY),
)
"""The parts that can be left out on their own: a definition, a fact's column or dimension path, an attribute,
a filter on one column or one of its conditions."""


def check_file(data: Any) -> tuple[FileSpec, list[Problem], set[Path_]]:
    """The file's spec without its broken parts, the problems, and the paths of the parts left out.

    ``data`` loses its broken parts and unknown keys in place. Each round removes at least one key (every error
    lies at or under a key of the data), so the loop ends, at the latest with nothing left.
    """
    problems: list[Problem] | None = None
    left_out: set[Path_] = set()
    while True:
        try:
            return FileSpec.model_validate(data), problems or [], left_out
        except SchemaError as exc:
            errors = [(error, _path(data, error["loc"])) for error in exc.errors()]
        if problems is None:
            order = {section: index for index, section in enumerate(data)} if isinstance(data, dict) else {}
            problems = [_problem(error, path) for error, path in errors]
            problems.sort(key=lambda problem: order.get(problem[2][0], -1) if problem[2] else -1)
        for error, path in errors:
            part = path if error["type"] in IGNORABLE else _part(path)
            if error["type"] not in IGNORABLE:
                left_out.add(part)
            data = _without(data, part)


def _path(data: Any, loc: tuple[str | int, ...]) -> Path_:
    """The keys and indexes of ``loc`` that are in the data (pydantic adds the tags of union forms, and names
    a missing key, which is not)."""
    path: list[str | int] = []
    for item in loc:
        if (isinstance(data, dict) and item in data) or (isinstance(data, list) and isinstance(item, int)):
            path.append(item)
            data = data[item]
    return tuple(path)


def _part(path: Path_) -> Path_:
    """The smallest part around ``path`` that can be left out on its own (the section if none, or the file)."""
    for end in range(len(path), 1, -1):
        if any(_matches(path[:end], pattern) for pattern in _LEFT_OUT):
            return path[:end]
    return path[:1]


def _matches(path: Path_, pattern: tuple[Any, ...]) -> bool:
    return len(path) == len(pattern) and all(
        allowed is _ANY or item in allowed for item, allowed in zip(path, pattern, strict=True)
    )


def _without(data: Any, path: Path_) -> Any:
    if not path:
        return {}
    parent = data
    for key in path[:-1]:
        if not isinstance(parent, dict) or key not in parent:
            return data  # already left out with a part around it
        parent = parent[key]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    return data


def _problem(error: Any, path: Path_) -> Problem:
    """A pydantic error in the project's words: a code, and a message naming the object and the key at fault."""
    kind, part = error["type"], _part(path)
    subject = _subject(part)
    inner = path[len(part) :] if subject else path
    what = _dotted(inner) if inner else "the definition" if len(part) == 2 else "the value"
    if kind in OWN_CODES:
        code, detail = kind, error["ctx"]["message"]
        if len(inner) > 1:  # a key of a nested mapping: say which
            subject = f"{subject}, {_dotted(inner[:-1])}" if subject else _dotted(inner[:-1])
    elif kind == "missing":
        code, detail = "missing_key", f"missing required key {_dotted((*inner, error['loc'][-1]))}"
    elif kind in ("string_type", "string_too_short"):
        code, detail = "not_a_string", f"{what} must be a non-empty string"
    elif kind in ("model_type", "dict_type") and not path:
        code, detail = "not_a_mapping", "a config file must be a mapping of sections (dimensions, facts, metrics...)"
    elif kind in ("model_type", "dict_type"):
        code, detail = "not_a_mapping", f"{what} must be a mapping of keys to values"
    else:
        code, detail = "invalid_value", f"{what} is not valid: {error['msg']}"
    return code, f"{subject}: {detail}" if subject else detail, path


def _dotted(keys: Path_) -> str:
    return repr(".".join(map(str, keys)))


def _subject(part: Path_) -> str:
    """The object a problem is about, in words: ``metric 'x'``, ``fact 'y', column 'z'``."""
    if len(part) < 2:
        return ""
    words = [f"{_SUBJECTS[str(part[0])]} {part[1]!r}"]
    rest = part[2:]
    for key, name in zip(rest[::2], rest[1::2], strict=False):
        words.append(f"{_PARTS[str(key)]} {name!r}" if key in _PARTS else str(name))
    return ", ".join(words)
