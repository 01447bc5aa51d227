"""The README's commands work as written: its shell and Python snippets run here, as a new user would run them.

Each ```bash block runs in order in a working directory that holds what the README assumes a user has: an
operational database `grace.sqlite`, the `my-metrics/` files of the README's YAML blocks (each names its file
in its first line) and the demo's `.grace-demo/` (a small source and warehouse, except for blocks that run
`demo`, which start without it and build their own). Commands that terminate must exit 0; the
long-running `demo` and `serve` are started, must answer on their port, are queried (by the `curl` lines that
follow them in the block, or else with /healthz and the README's GraphQL query) and stopped with Ctrl-C.
``NOT_RUN`` names the few commands this test leaves alone, and why.

Only what cannot be the same on a test machine is changed, the same way everywhere: `.venv/bin/` is this
test's environment, every PostgreSQL URL names a database this test creates (one per host and database name,
filled with a small source when it is a `--source`), and port 8000 is a free port.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.graphql_api.conftest import free_port
from tests.small_source import build_source
from warehouse.etl import run_etl

README = Path(__file__).parents[1] / "README.md"
BIN = Path(sys.executable).parent
NOT_RUN = {
    "python3 -m venv ": "creates the environment this test runs in",
    ".venv/bin/pip install ": "installs this package into the environment this test runs in",
    ".venv/bin/pytest": "the test suite this test is part of",
    ".venv/bin/python bench/": "a benchmark: minutes at the README's scales, run by hand",
    "docker ": "builds or runs the Docker image, which the Docker tests cover",
}
LONG_RUNNING = {"demo", "serve"}
PG_URL = re.compile(r"postgresql(\+\w+)?://[\w.-]+@([\w.-]+)/(\w+)")
STARTUP_TIMEOUT = {"demo": 600.0, "serve": 120.0}
"""Seconds until a server must answer: the demo first generates and loads its data."""


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int


def fenced_blocks(language: str) -> list[Block]:
    readme = README.read_text()
    return [
        Block(match["language"], match["text"], readme[: match.start()].count("\n") + 1)
        for match in re.finditer(r"^```(?P<language>\w+)\n(?P<text>.*?)^```$", readme, re.S | re.M)
        if match["language"] == language
    ]


def commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped, `a && b` split."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    lines = [re.sub(r"(^|\s+)#\s[^'\"]*$", "", line).strip() for line in joined.splitlines()]
    return [part.strip() for line in lines if line for part in line.split(" && ")]


def not_run(command: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if command.startswith(prefix)), None)


def subcommand(command: str) -> str | None:
    """``serve`` for ``[VAR=value ...] [.venv/bin/]grace-metrics serve ...``; None for any other program."""
    words = [word for word in shlex.split(command, comments=True) if not re.match(r"^\w+=", word)]
    return words[1] if len(words) > 1 and Path(words[0]).name == "grace-metrics" else None


def _runs_demo(block: Block) -> bool:
    return any(subcommand(command) == "demo" for command in commands(block))


def _slow(block: Block) -> bool:
    """Each `grace-metrics` process costs 2-5 s here: a block that runs several, or builds the demo, is slow."""
    runs = [command for command in commands(block) if subcommand(command) and not not_run(command)]
    return len(runs) > 1 or _runs_demo(block)


BASH_BLOCKS = [
    pytest.param(block, id=f"line{block.line}", marks=[pytest.mark.slow] if _slow(block) else [])
    for block in fenced_blocks("bash")
]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a user has before following the README: an operational database and their metric files."""
    root = tmp_path_factory.mktemp("readme-user")
    build_source(f"sqlite:///{root / 'grace.sqlite'}").dispose()
    for block in fenced_blocks("yaml"):
        name = re.match(r"# (\S+\.yaml)\n", block.text)
        assert name, f"README line {block.line}: a YAML example says which file it is in its first line"
        (root / name[1]).parent.mkdir(parents=True, exist_ok=True)
        (root / name[1]).write_text(block.text)
    return root


@pytest.fixture(scope="module")
def workdir(user_files: Path) -> Path:
    """The directory after `grace-metrics demo`: a small source and warehouse stand in for the demo's."""
    (user_files / ".grace-demo").mkdir()
    shutil.copy(user_files / "grace.sqlite", user_files / ".grace-demo/grace-demo.sqlite")
    run_etl(
        f"sqlite:///{user_files / 'grace.sqlite'}",
        f"duckdb:///{user_files / '.grace-demo/warehouse.duckdb'}",
        hash_key="k",
    )
    return user_files


@pytest.fixture
def postgresql_urls(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Rewrites the README's PostgreSQL URLs to the test's databases: one per (host, database), made on first use."""
    databases: dict[tuple[str, str], sa.URL] = {}

    def rewrite(text: str) -> str:
        def database(match: re.Match[str]) -> str:
            key = (match[2], match[3])
            if key not in databases:
                databases[key] = sa.make_url(request.getfixturevalue("pg_database")())
                if re.search(rf"--source\s+{re.escape(match[0])}", text):
                    build_source(databases[key].render_as_string(hide_password=False)).dispose()
            url = databases[key].set(drivername=f"postgresql{match[1] or ''}")
            return url.render_as_string(hide_password=False)

        return PG_URL.sub(database, text)

    return rewrite


def _environment() -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("GRACE_METRICS_")}
    return {**clean, "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}"}


def _as_here(command: str, block: Block, port: int, rewrite: Callable[[str], str]) -> str:
    """The command with this test's environment, databases and free port (for 8000 or the block's `--port N`)."""
    command = rewrite(command.replace(".venv/bin/", f"{BIN}/"))
    for written in {"8000", *re.findall(r"--port[ =](\d+)", block.text)}:
        command = re.sub(rf"(127\.0\.0\.1|localhost):{written}\b", rf"\g<1>:{port}", command)
    command = re.sub(r"--port[ =]\d+", f"--port {port}", command)
    if subcommand(command) in LONG_RUNNING and "--port" not in command:
        command += f" --port {port}"
    return command


class Server:
    """A long-running README command, started in its own process group so Ctrl-C reaches all of it."""

    def __init__(self, script: str, cwd: Path, port: int, timeout: float) -> None:
        self.port = port
        self.process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=cwd,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            assert self.process.poll() is None, f"exited before answering:\n{self.process.communicate()[0]}"
            assert time.monotonic() < deadline, f"no answer on port {port} within {timeout:g} s"
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code in (200, 503)
        except httpx.TransportError:
            return False

    def check(self) -> None:
        """What a user does first: the health check, then the README's first GraphQL query."""
        health = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=10)
        assert (health.status_code, health.json()["status"]) == (200, "ok"), health.text
        for block in fenced_blocks("graphql"):
            answer = httpx.post(f"http://127.0.0.1:{self.port}/graphql", json={"query": block.text}, timeout=60)
            assert answer.status_code == 200 and "errors" not in answer.json(), f"line {block.line}: {answer.text}"

    def stop(self) -> str:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"still running 30 s after Ctrl-C:\n{self.process.communicate()[0]}")
        assert "Traceback" not in output, output
        return output


@pytest.fixture
def directory_for(workdir: Path, user_files: Path, tmp_path: Path) -> Iterator[Callable[[Block], Path]]:
    """The shared working directory, or a fresh copy without demo data for a block that runs the demo."""

    def choose(block: Block) -> Path:
        if not _runs_demo(block):
            return workdir
        fresh = tmp_path / "user"
        shutil.copytree(user_files, fresh, ignore=shutil.ignore_patterns(".grace-demo"))
        return fresh

    yield choose


@pytest.mark.parametrize("block", BASH_BLOCKS)
def test_the_readmes_shell_commands_work_as_written(
    block: Block, directory_for: Callable[[Block], Path], postgresql_urls: Callable[[str], str]
) -> None:
    cwd, port = directory_for(block), free_port()
    exports = [command for command in commands(block) if command.startswith("export ")]
    servers: list[Server] = []
    queried = False
    try:
        for command in commands(block):
            if command.startswith("export ") or not_run(command):
                continue
            script = "\n".join([*exports, _as_here(command, block, port, postgresql_urls)])
            kind = subcommand(command)
            if kind in LONG_RUNNING:
                for server in servers:
                    _finish(server, queried)
                servers, queried = [Server(script, cwd, port, STARTUP_TIMEOUT[kind])], False
                continue
            run = subprocess.run(
                ["bash", "-c", script], cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=600
            )
            assert run.returncode == 0, f"README line {block.line}: {command}\n{run.stdout}\n{run.stderr}"
            if command.startswith("curl "):
                assert servers, f"README line {block.line}: {command} needs a server started before it"
                assert '"errors"' not in run.stdout, run.stdout
                queried = True
        for server in servers:
            _finish(server, queried)
        servers = []
    finally:
        for server in servers:
            server.process.kill()


def _finish(server: Server, queried: bool) -> None:
    if not queried:
        server.check()
    server.stop()


@pytest.mark.parametrize("block", fenced_blocks("python"), ids=lambda block: f"line{block.line}")
def test_the_readmes_python_snippets_run(block: Block, workdir: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", block.text], cwd=workdir, env=_environment(), capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"README line {block.line}:\n{run.stdout}\n{run.stderr}"
    assert "SELECT" in run.stdout, "each snippet prints SQL it explains or compiles"


def test_every_command_not_run_is_one_the_readme_has() -> None:
    """NOT_RUN stays short: an entry no README command needs any more goes."""
    every = [command for block in fenced_blocks("bash") for command in commands(block)]
    assert {prefix for prefix in NOT_RUN if not any(command.startswith(prefix) for command in every)} == set()
