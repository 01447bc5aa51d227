"""The audit chain on both backends: it verifies, and editing, deleting or reordering one entry is found at that
entry; concurrent writers never fork it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from graphql_api.cli import main
from warehouse.audit import GENESIS, AuditLog, Entry, audit_log, chain, verify


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
