"""YAML read into plain values plus the line of every key, so a problem found later in the plain data points at it.

The schema validates plain dicts and lists (what pydantic reads fastest); the
lines live beside them, keyed by the path of keys and list indexes that leads
to each value. Duplicate keys, which PyYAML would silently overwrite, are
returned too. libyaml composes the file when it is installed: the registry is
read at every server start and many times in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """One file's data with the line of each path in it (a mapping's values stand at their key's line)."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[str, int]] = field(default_factory=list)

    def line(self, path: Path_) -> int:
        """The line of ``path``, or of its nearest recorded parent."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def read_yaml(text: str) -> Document:
    """Raises ``yaml.MarkedYAMLError`` for text that is not YAML, or whose aliases loop."""
    root = yaml.compose(text, Loader=_Loader)
    document = Document(None)
    if root is not None:
        document.lines[()] = root.start_mark.line + 1
        document.data = _plain(root, (), document, set())
    return document


def _plain(node: yaml.Node, path: Path_, document: Document, inside: set[int]) -> Any:
    """``inside``: the mappings and lists being read around ``node``; an alias to one of them would never end."""
    if isinstance(node, yaml.CollectionNode):
        if id(node) in inside:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a mapping or list around it", node.start_mark
            )
        inside.add(id(node))
        value = _collection(node, path, document, inside)
        inside.discard(id(node))
        return value
    return _SCALARS.construct_object(node)


def _collection(node: yaml.CollectionNode, path: Path_, document: Document, inside: set[int]) -> Any:
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in mapping:
                document.duplicate_keys.append((key, line))
            document.lines[(*path, key)] = line
            mapping[key] = _plain(value_node, (*path, key), document, inside)
        return mapping
    items = []
    for index, item in enumerate(node.value):
        document.lines[(*path, index)] = item.start_mark.line + 1
        items.append(_plain(item, (*path, index), document, inside))
    return items
