"""What a non-editable install (the Dockerfile's ``pip install .``) ships: every package file, data included.

An editable install reads the catalog YAML and the GraphiQL assets from the
working tree, so a file left out of the wheel would only show in the image.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("backend_urls", "warehouse", "metrics", "graphql_api")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    directory = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(directory), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (path,) = directory.glob("grace_metrics-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_wheel_holds_every_tracked_package_file(wheel: zipfile.ZipFile) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    assert any(name.endswith(".yaml") for name in tracked) and any(name.endswith(".js") for name in tracked)
    assert sorted(set(tracked) - set(wheel.namelist())) == []


def test_wheel_declares_the_console_script(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    assert "grace-metrics = graphql_api.cli:main" in wheel.read(entry_points).decode()


def test_dockerfile_copies_every_package() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) ", (ROOT / "Dockerfile").read_text(), flags=re.MULTILINE))
    assert {pattern.rstrip("*") for pattern in declared} == set(PACKAGES) == copied
