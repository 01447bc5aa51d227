"""The text of one config file; every way a file can be unreadable becomes one sentence naming the fix."""

from __future__ import annotations

import os
from pathlib import Path


class UnreadableFile(Exception):
    """A config file that exists in a config directory but cannot be read as UTF-8 text."""


def _reason(path: Path, error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}); save it as UTF-8"
    if isinstance(error, IsADirectoryError):
        return "a directory, not a YAML file; rename it or move it out of the config directory"
    if isinstance(error, FileNotFoundError) and path.is_symlink():
        return f"a symbolic link to {os.readlink(path)!r}, which does not exist; fix or remove the link"
    if isinstance(error, PermissionError):
        return "not readable by this user (permission denied); fix its permissions"
    return f"cannot be read: {error.strerror or error}"


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableFile(_reason(path, error)) from None
