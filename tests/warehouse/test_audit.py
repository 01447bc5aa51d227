"""The audit chain on both backends: it verifies, and editing, deleting or reordering one entry is found at that
entry; concurrent writers never fork it."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from graphql_api.cli import main
from warehouse.audit import GENESIS, MAX_BATCH, PAGE, AuditLog, Entry, Verdict, _Turn, audit_log, chain, verify


@pytest.fixture(params=["duckdb", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditLog]:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}" if request.param == "duckdb" else request.getfixturevalue("pg_url")
    audit = AuditLog(url)
    audit.create()
    yield audit
    audit.close()


def _entry(i: int) -> Entry:
    return Entry(
        logged_at=datetime(2026, 1, 1, 12, 0, i % 60, 123456, tzinfo=UTC),
        caller=f"key:{i:012x}",
        role="viewer",
        operation=None if i % 2 else f"Op{i}",
        outcome="OK",
        duration_ms=1.0 / 3 + i,
        groups=("support",) if i % 3 else (),
        metrics=("error_count", "verification_count"),
        dimensions=("agent.name",),
        filters=(f"agent.type in ('data', {i})",),
        rows_returned=i,
    )


def _sql(log: AuditLog, statement: sa.Executable) -> None:
    with log.engine.begin() as connection:
        connection.execute(statement)


def test_a_fresh_chain_verifies_and_links_every_entry(log: AuditLog) -> None:
    log.append([_entry(i) for i in range(1, 4)])
    log.append([_entry(4)])
    assert verify(log).entries == 4 and verify(log).broken is None
    rows = list(log.entries())
    assert rows[0]["prev_hash"] == GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert rows[1]["metrics"] == ["error_count", "verification_count"] and rows[1]["groups"] == ["support"]


@pytest.mark.parametrize(
    ("tamper", "broken", "reason"),
    [
        (audit_log.update().where(audit_log.c.id == 3).values(rows_returned=0), 3, "edited"),
        (audit_log.update().where(audit_log.c.id == 3).values(outcome="FORBIDDEN"), 3, "edited"),
        (audit_log.delete().where(audit_log.c.id == 3), 4, "entry 3 is missing"),
    ],
    ids=["edit-rows", "edit-outcome", "delete"],
)
def test_tampering_is_found_at_the_entry(log: AuditLog, tamper: sa.Executable, broken: int, reason: str) -> None:
    log.append([_entry(i) for i in range(1, 6)])
    _sql(log, tamper)
    verdict = verify(log)
    assert (verdict.broken, verdict.entries) == (broken, 2) and reason in verdict.reason


def test_reordering_is_found_at_the_first_moved_entry(log: AuditLog) -> None:
    log.append([_entry(i) for i in range(1, 6)])
    _sql(log, audit_log.update().where(audit_log.c.id == 3).values(id=-3))
    _sql(log, audit_log.update().where(audit_log.c.id == 4).values(id=3))
    _sql(log, audit_log.update().where(audit_log.c.id == -3).values(id=4))
    verdict = verify(log)
    assert (verdict.broken, verdict.entries) == (3, 2) and "moved or removed" in verdict.reason


def test_a_recomputed_hash_does_not_hide_an_edit_from_the_next_entry(log: AuditLog) -> None:
    log.append([_entry(i) for i in range(1, 6)])
    [row] = [r for r in log.entries() if r["id"] == 2]
    forged = chain(row["prev_hash"], {**row, "caller": "someone-else"})
    _sql(log, audit_log.update().where(audit_log.c.id == 2).values(caller="someone-else", hash=forged))
    assert verify(log).broken == 3


def test_concurrent_writers_do_not_fork_the_chain(log: AuditLog) -> None:
    writers = [AuditLog(str(log.url)) for _ in range(4)]

    def write(writer: AuditLog, start: int) -> None:
        for i in range(start, start + 10):
            writer.append([_entry(i)])

    threads = [threading.Thread(target=write, args=(w, 10 * n)) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert verify(log).entries == 40 and verify(log).broken is None


def _another_process(url: str) -> AuditLog:
    """A writer that does not share this process's memory of the last entry, as a second server process would."""
    other = AuditLog(url)
    other._turn = _Turn()
    return other


def test_a_writer_that_another_process_overtook_appends_after_it(log: AuditLog) -> None:
    log.append([_entry(1)])
    other = _another_process(str(log.url))
    other.append([_entry(2), _entry(3)])
    log.append([_entry(4)])  # starts from entry 1, collides with entry 2, is redone after entry 3
    assert log._turn.shared, "after a collision, appends read the last entry under the lock"
    log.append([_entry(5)])  # nobody else appended since entry 4, yet another writer exists: still under the lock
    assert log._turn.shared
    other.append([_entry(6)])
    other.close()
    rows = list(log.entries())
    assert [r["rows_returned"] for r in rows] == [1, 2, 3, 4, 5, 6] and verify(log) == Verdict(6)


def test_a_deleted_last_entry_is_not_chained_over(log: AuditLog) -> None:
    """A writer remembers the last entry it wrote: removing it from the table cannot make the chain skip it."""
    log.append([_entry(i) for i in range(1, 4)])
    _sql(log, audit_log.delete().where(audit_log.c.id == 3))
    log.append([_entry(4)])
    verdict = verify(log)
    assert (verdict.broken, verdict.entries) == (4, 2) and "entry 3 is missing" in verdict.reason


def test_a_failed_append_starts_over_from_the_last_entry_written(log: AuditLog) -> None:
    log.append([_entry(1)])
    _sql(log, sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
    with pytest.raises(sa.exc.DBAPIError):
        log.append([_entry(2)])
    _sql(log, sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
    other = _another_process(str(log.url))
    other.append([_entry(3)])
    other.close()
    log.append([_entry(4)])
    assert [r["rows_returned"] for r in log.entries()] == [1, 3, 4] and verify(log) == Verdict(3)


def test_a_batch_is_one_statement_and_the_chain_is_read_in_pages(log: AuditLog) -> None:
    log.append([_entry(i) for i in range(1, MAX_BATCH + 1)])
    log.append([_entry(i) for i in range(MAX_BATCH + 1, MAX_BATCH + 600)])
    assert verify(log) == Verdict(MAX_BATCH + 599) and MAX_BATCH + 599 > PAGE
    _sql(log, audit_log.update().where(audit_log.c.id == PAGE + 7).values(caller="someone-else"))
    assert verify(log).broken == PAGE + 7
    with pytest.raises(ValueError, match="at most"):
        log.append([_entry(1)] * (MAX_BATCH + 1))


def _append_from_a_process(url: str, start: int) -> None:
    log = AuditLog(url)
    for i in range(start, start + 15):
        log.append([_entry(i)] * (1 + i % 3))
    log.close()


def test_server_processes_on_postgresql_extend_one_chain(pg_url: str) -> None:
    """Separate processes (``serve --workers``) collide, take turns under the advisory lock, and never fork."""
    first = AuditLog(pg_url)
    first.create()
    first.close()
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_from_a_process, args=(pg_url, 100 * n)) for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0, 0]
    log = AuditLog(pg_url)
    expected = sum(1 + i % 3 for n in range(3) for i in range(100 * n, 100 * n + 15))
    assert verify(log) == Verdict(expected)
    log.close()


def test_the_command_verifies_and_tails(
    log: AuditLog, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    log.append([_entry(i) for i in range(1, 4)])
    url = str(log.url)
    assert main(["audit", "verify", "--warehouse", url]) == 0
    assert "3 entries verifies" in capsys.readouterr().out
    assert main(["audit", "tail", "--warehouse", url, "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "key:000000000003" in out and "key:000000000001" not in out
    _sql(log, audit_log.update().where(audit_log.c.id == 2).values(role="admin"))
    assert main(["audit", "verify", "--warehouse", url]) == 1
    assert "broken at entry 2" in capsys.readouterr().err


def test_verify_without_a_log_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    sa.create_engine(url).dispose()
    assert main(["audit", "verify", "--warehouse", url]) == 2
    assert "has no audit_log table" in capsys.readouterr().err


def test_a_log_that_does_not_wait_for_the_disk_still_chains(pg_url: str) -> None:
    """``GRACE_METRICS_AUDIT_DURABLE=false``: PostgreSQL commits the audit log's appends without a flush."""
    log = AuditLog(pg_url, durable=False)
    log.create()
    log.append([_entry(i) for i in range(1, 4)])
    with log.engine.connect() as connection:
        assert connection.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
    assert verify(log) == Verdict(3)
    log.close()
    durable = AuditLog(pg_url)
    with durable.engine.connect() as connection:
        assert connection.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
    durable.close()
