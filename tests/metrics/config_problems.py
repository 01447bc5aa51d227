"""The problems a bad configuration directory is refused with, as the config-error tests compare them."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics.errors import ConfigError
from metrics.registry import load_registry

CONFIGS = Path(__file__).parent / "configs"


def config_problems(name: str) -> tuple[list[tuple[str, str, int]], str]:
    """Loading ``configs/<name>`` fails: its problems as sorted (code, file name, line), and the whole message."""
    with pytest.raises(ConfigError) as caught:
        load_registry([CONFIGS / name])
    found = sorted((issue.code, Path(issue.file).name, issue.line) for issue in caught.value.issues)
    return found, str(caught.value)
