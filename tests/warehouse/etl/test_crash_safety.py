"""SIGKILL an ETL process mid-load: the warehouse stays as it was, and the next run loads as one clean run would.

The killed process runs the ETL through its public entry point with a progress
reporter that prints every event (``start TABLE``, ``advance TABLE``), so the
test knows where the run is. It either kills the process while it waits at an
event (inside the run's transaction, between two statements) or lets it run on
and kills it a measured time later (mid-table, usually mid-statement). A timed
kill has a backstop: the process waits at the event after the step it aims
into, so a process that runs faster than the clean run did is killed there,
still inside its transaction, rather than after its commit. Every kill must
hit a live process (it dies of SIGKILL, not of old age) whose run is still
open, so no kill can silently land after the commit and prove nothing.
The runs that complete a killed load are the real command line,
``grace-metrics etl``; the clean reference runs in-process.
"""

from __future__ import annotations

import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.warehouse.conftest import HASH_KEY, query, snapshot
from warehouse.demo import advance_demo_source, generate_demo_source
from warehouse.etl import run_etl

pytestmark = pytest.mark.slow

SCALE = 0.25
"""5,000 action contracts, ~11,600 source rows: kills are aimed by progress events, so a small source will do."""

EVENT_TIMEOUT_S = 120.0
LAST_EVENT = "advance agent_traces"

_CHILD = """
import sys, time
from warehouse.etl import run_etl

source, warehouse, hash_key, hold_at = sys.argv[1:]

class Report:
    def _event(self, event):
        print(event, flush=True)
        if event == hold_at:
            time.sleep(600)  # the test kills us here

    def start(self, table, total):
        self._event(f"start {table}")

    def advance(self, table, rows):
        self._event(f"advance {table}")

run_etl(source, warehouse, hash_key=hash_key, progress=Report())
print("exit", flush=True)
"""


@dataclass(frozen=True)
class Kill:
    """Where to kill: right after a progress event, holding the process there or a share of the next step later."""

    at: str
    hold: bool
    into: float = 0.0
    """With ``hold=False``: how far into the step after ``at`` to kill, as a share of its duration in the clean run;
    the process waits at the end of that step, so a kill aimed too late still lands inside the run."""

    @property
    def races_commit(self) -> bool:
        """Let run on after the last table: the signal races the commit, and either outcome is allowed."""
        return not self.hold and self.at == LAST_EVENT


INITIAL_KILLS = (
    Kill("start actors", hold=True),  # reference tables: tier and agent versions written, nothing committed
    Kill("start action_contracts", hold=False, into=0.5),  # in flight, halfway through the largest fact table
    Kill("advance agent_traces", hold=True),  # every table merged: only the run log and the commit remain
    Kill("advance agent_traces", hold=False),  # racing the commit: the run must land whole or not at all
)
INCREMENTAL_KILLS = (
    Kill("start actors", hold=True),  # the advance's tier rename and agent change applied as new versions
    Kill("start action_contracts", hold=False, into=0.5),  # in flight: resolved contracts, late commits
    Kill("advance agent_traces", hold=True),  # just before the commit
)


# --- processes ----------------------------------------------------------------------------------------------------


class EtlChild:
    """An ETL process reporting its progress on stdout; killed by the test, and at the latest on leaving ``with``."""

    def __init__(self, source: str, warehouse: str, hold_at: str | None, log: Path) -> None:
        self._log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, source, warehouse, HASH_KEY, hold_at or ""],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self._events: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> EtlChild:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._events.put(line.strip())
        self._events.put(None)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            try:
                seen = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                pytest.fail(f"no {event!r} from the ETL within {EVENT_TIMEOUT_S:.0f}s")
            if seen is None:
                pytest.fail(f"the ETL exited ({self.process.wait()}) before {event!r}:\n{self._log.read_text()}")
            if seen == event:
                return

    def kill(self) -> None:
        assert self.process.poll() is None, "the ETL had already exited: this kill would prove nothing"
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL, "the ETL exited on its own before the kill landed"
        self._reader.join(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


def etl_command(source: str, warehouse: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "graphql_api.cli",
        "etl",
        "--source",
        source,
        "--warehouse",
        warehouse,
        "--hash-key",
        HASH_KEY,
        "--quiet",
    ]


def run_cli(source: str, warehouse: str) -> None:
    done = subprocess.run(etl_command(source, warehouse), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


# --- warehouse state ----------------------------------------------------------------------------------------------


@dataclass
class State:
    """What a run may change: the content (``snapshot``), the watermarks and the per-table run log."""

    content: dict[str, list[tuple[Any, ...]]]
    watermarks: list[tuple[Any, ...]]
    run_tables: list[tuple[Any, ...]]


def read_state(url: str, scratch: Path) -> tuple[State, list[str]]:
    """The warehouse's state and its run statuses in start order.

    A DuckDB file is read from a copy, so the next ETL run, not the test,
    is the first to open the file a killed process left behind.
    """
    if url.startswith("duckdb:///"):
        original = Path(url.removeprefix("duckdb:///"))
        scratch.mkdir(exist_ok=True)
        copy = scratch / f"view-{time.monotonic_ns()}.duckdb"
        shutil.copyfile(original, copy)
        if original.with_name(original.name + ".wal").exists():
            shutil.copyfile(original.with_name(original.name + ".wal"), copy.with_name(copy.name + ".wal"))
        url = f"duckdb:///{copy}"
    state = State(
        snapshot(url),
        query(url, "SELECT source_table, watermark FROM etl_watermarks ORDER BY 1"),
        query(
            url,
            "SELECT e.source_table, e.rows_read, e.rows_inserted, e.rows_updated, r.started_at "
            "FROM etl_run_tables e JOIN etl_runs r USING (run_id) ORDER BY 5, 1",
        ),
    )
    return state, [status for (status,) in query(url, "SELECT status FROM etl_runs ORDER BY started_at")]


def empty_state(like: State) -> State:
    return State({table: [] for table in like.content}, [], [])


# --- the scenario -------------------------------------------------------------------------------------------------


class Timeline:
    """The progress events of an in-process run and when they happened, to aim kills that do not hold the run."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.finished = 0.0

    def start(self, table: str, total: int) -> None:
        self.events.append((f"start {table}", time.perf_counter()))

    def advance(self, table: str, rows: int) -> None:
        self.events.append((f"advance {table}", time.perf_counter()))

    def step_after(self, event: str) -> float:
        index = self._index(event)
        end = self.events[index + 1][1] if index + 1 < len(self.events) else self.finished
        return end - self.events[index][1]

    def event_after(self, event: str) -> str | None:
        """The event that ends the step after ``event``; None when the commit does."""
        index = self._index(event)
        return self.events[index + 1][0] if index + 1 < len(self.events) else None

    def _index(self, event: str) -> int:
        return [name for name, _ in self.events].index(event)


def clean_run(source: str, warehouse: str) -> Timeline:
    timeline = Timeline()
    run_etl(source, warehouse, hash_key=HASH_KEY, progress=timeline)
    timeline.finished = time.perf_counter()
    return timeline


def kill_then_complete(
    source: str,
    warehouse: str,
    kills: tuple[Kill, ...],
    *,
    before: State,
    done: State,
    statuses: list[str],
    timeline: Timeline,
    scratch: Path,
) -> list[str]:
    """Kill one run per ``kills``, then run to completion; returns the run statuses the warehouse must show.

    After each kill the warehouse must hold exactly ``before``, and the killed
    run must still show as running (the next run marks it abandoned). Only a
    kill racing the commit may instead find the run succeeded, with ``done``
    loaded whole.
    """
    scratch.mkdir(exist_ok=True)
    for number, kill in enumerate(kills):
        hold_at = kill.at if kill.hold else timeline.event_after(kill.at) if kill.into else None
        with EtlChild(source, warehouse, hold_at, scratch / f"etl-{len(statuses)}.log") as child:
            child.wait_for(kill.at)
            if kill.into:
                time.sleep(kill.into * timeline.step_after(kill.at))
            child.kill()
        after, actual = read_state(warehouse, scratch)
        committed = actual[-1:] == ["succeeded"]
        assert kill.races_commit or not committed, (
            f"kill {number} ({kill}) landed after the commit and proves nothing: aim it earlier"
        )
        statuses = [
            *("abandoned" if status == "running" else status for status in statuses),
            "succeeded" if committed else "running",
        ]
        assert actual == statuses, f"kill {number} ({kill}): run statuses"
        assert after == (done if committed else before), f"kill {number} ({kill}) left part of its run in the warehouse"
    run_cli(source, warehouse)
    return [*("abandoned" if status == "running" else status for status in statuses), "succeeded"]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash_source") / "grace.sqlite"
    generate_demo_source(f"sqlite:///{path}", scale=SCALE)
    return path


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_killed_runs_change_nothing_and_the_next_run_loads_as_one_clean_run(
    kind: str, demo_file: Path, tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    shutil.copyfile(demo_file, tmp_path / "grace.sqlite")
    source = f"sqlite:///{tmp_path / 'grace.sqlite'}"
    clean, crashed = (
        f"duckdb:///{tmp_path / name}.duckdb" if kind == "duckdb" else pg_database() for name in ("clean", "crashed")
    )
    views = tmp_path / "views"

    # The initial load, killed before, inside and after the facts, then completed.
    timeline = clean_run(source, clean)
    expected, _ = read_state(clean, views)
    statuses = kill_then_complete(
        source,
        crashed,
        INITIAL_KILLS,
        before=empty_state(expected),
        done=expected,
        statuses=[],
        timeline=timeline,
        scratch=views,
    )
    loaded, actual = read_state(crashed, views)
    assert actual == statuses and statuses.count("succeeded") in (1, 2) and "running" not in statuses
    assert (loaded.content, loaded.watermarks) == (expected.content, expected.watermarks)

    # A day of activity later: the incremental run, killed and completed.
    changed = advance_demo_source(source, step=1, scale=SCALE)
    assert sum(changed.values()) > 0
    timeline = clean_run(source, clean)
    expected, _ = read_state(clean, views)
    assert expected.content != loaded.content
    statuses = kill_then_complete(
        source,
        crashed,
        INCREMENTAL_KILLS,
        before=loaded,
        done=expected,
        statuses=statuses,
        timeline=timeline,
        scratch=views,
    )
    after, actual = read_state(crashed, views)
    assert actual == statuses and statuses[-len(INCREMENTAL_KILLS) - 1 :] == ["abandoned"] * len(INCREMENTAL_KILLS) + [
        "succeeded"
    ]
    assert (after.content, after.watermarks) == (expected.content, expected.watermarks)


def test_a_run_from_a_postgresql_source_killed_mid_read(pg_database: Callable[[], str], tmp_path: Path) -> None:
    source = pg_database()
    generate_demo_source(source, scale=SCALE)
    clean, crashed = f"duckdb:///{tmp_path / 'clean.duckdb'}", f"duckdb:///{tmp_path / 'crashed.duckdb'}"
    timeline = clean_run(source, clean)
    expected, _ = read_state(clean, tmp_path / "views")
    kills = (Kill("start action_contracts", hold=False, into=0.3),)
    statuses = kill_then_complete(
        source,
        crashed,
        kills,
        before=empty_state(expected),
        done=expected,
        statuses=[],
        timeline=timeline,
        scratch=tmp_path / "views",
    )
    after, actual = read_state(crashed, tmp_path / "views")
    assert actual == statuses == ["abandoned", "succeeded"]
    assert (after.content, after.watermarks) == (expected.content, expected.watermarks)
