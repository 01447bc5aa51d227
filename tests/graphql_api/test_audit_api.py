"""Every GraphQL request leaves one chained entry in the warehouse's audit_log, before its response; a request
whose entry cannot be written fails INTERNAL unless the server is configured to fail open."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from graphql_api.settings import AccessSettings
from tests.graphql_api.conftest import open_api
from warehouse.audit import AuditLog, Entry, verify

KEYS = {"v-key": "viewer", "a-key": "analyst"}


@pytest.fixture
def log(warehouse_url: str) -> Iterator[AuditLog]:
    audit = AuditLog(warehouse_url)
    yield audit
    audit.close()


def _since(log: AuditLog, before: int) -> list[dict]:
    return [e for e in log.entries() if e["id"] > before]


def _count(log: AuditLog) -> int:
    return verify(log).entries if sa.inspect(log.engine).has_table("audit_log") else 0


async def test_each_request_is_one_entry_with_what_it_asked(warehouse_url: str, log: AuditLog) -> None:
    before = _count(log)
    async for api in open_api(warehouse_url, api_keys=KEYS):
        query = 'query Slice { metrics(where: {agent: {type: {eq: "data"}}}) { rows { errorCount agent { name } } } }'
        body = await api(query, authorization="Bearer v-key")
        await api('{ explain(metrics: ["errorCount"]) { sql } }', authorization="Bearer v-key")
        await api("{ metrics { rows { errorCount } } }")
    first, forbidden, anonymous = _since(log, before)
    fingerprint = "key:" + hashlib.sha256(b"v-key").hexdigest()[:12]
    assert (first["caller"], first["role"], first["operation"], first["outcome"]) == (
        fingerprint,
        "viewer",
        "Slice",
        "OK",
    )
    assert first["metrics"] == ["error_count"] and first["dimensions"] == ["agent.name"]
    assert first["filters"] == ["agent.type eq 'data'"]
    assert first["rows_returned"] == len(body["data"]["metrics"]["rows"]) and first["duration_ms"] > 0
    assert (forbidden["outcome"], anonymous["outcome"], anonymous["caller"]) == (
        "FORBIDDEN",
        "UNAUTHORIZED",
        "anonymous",
    )
    assert verify(log).broken is None


async def test_concurrent_requests_extend_one_chain(warehouse_url: str, log: AuditLog) -> None:
    before = _count(log)
    async for api in open_api(warehouse_url):
        bodies = await asyncio.gather(*(api("{ metrics { rows { errorCount } } }") for _ in range(20)))
    assert all("errors" not in body for body in bodies)
    assert len(_since(log, before)) == 20 and verify(log).broken is None


@pytest.mark.parametrize("fail_open", [False, True], ids=["closed", "open"])
async def test_an_unwritable_log_fails_the_request_unless_fail_open(
    warehouse_url: str, log: AuditLog, fail_open: bool
) -> None:
    async for api in open_api(warehouse_url, access=AccessSettings(audit_fail_open=fail_open)):
        with log.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        try:
            body = await api("{ metrics { rows { errorCount } } }")
        finally:
            with log.engine.begin() as connection:
                connection.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
    if fail_open:
        assert body["data"]["metrics"]["rows"] == [{"errorCount": 20}]
    else:
        assert body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"]
        assert "audit log" in body["errors"][0]["message"]


async def test_an_audit_log_that_does_not_answer_makes_the_request_unavailable_in_time(
    warehouse_url: str, log: AuditLog
) -> None:
    """A hung audit database (here: its one writer's turn never comes) holds a request for the statement timeout
    at most, and the answer says to retry, as for any outage."""
    async for api in open_api(warehouse_url, statement_timeout=1.0):
        turn = log._turn.lock  # the turn every append of this warehouse takes, in this process
        turn.acquire()
        try:
            started = asyncio.get_running_loop().time()
            response = await api.client.post("/graphql", json={"query": "{ metrics { rows { errorCount } } }"})
            took = asyncio.get_running_loop().time() - started
        finally:
            turn.release()
        body = response.json()
        assert response.status_code == 503 and response.headers["retry-after"]
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAVAILABLE"] and body["data"] is None
        assert 1.0 <= took < 5.0, took


def _recorded_appends(audit: AuditLog) -> list[int]:
    """The number of entries of each append ``audit`` makes from now on."""
    sizes: list[int] = []
    append = audit.append

    def recorded(entries: list[Entry]) -> None:
        sizes.append(len(entries))
        append(entries)

    audit.append = recorded  # type: ignore[method-assign]
    return sizes


async def test_entries_of_concurrent_requests_share_one_append(warehouse_url: str, log: AuditLog) -> None:
    """Group commit: while one append runs, the entries of the requests that end meanwhile queue up, and the next
    append writes them all in one statement; each request answers once its own entry is in."""
    before = _count(log)
    async for api in open_api(warehouse_url):
        writer = api.app.state.graphql.audit
        appends = _recorded_appends(writer.audit)
        turn = log._turn.lock
        turn.acquire()  # the first append waits here, as for a slow disk
        try:
            requests = [asyncio.ensure_future(api("{ metrics { rows { errorCount } } }")) for _ in range(12)]
            for _ in range(1000):  # every entry is in the waiting append or queued behind it
                if sum(appends) + len(writer._pending) == 12:
                    break
                await asyncio.sleep(0.01)
            assert not any(request.done() for request in requests)
        finally:
            turn.release()
        bodies = await asyncio.gather(*requests)
    assert all(body["data"]["metrics"]["rows"] == [{"errorCount": 20}] for body in bodies)
    assert sum(appends) == 12 and len(appends) <= 2, appends
    assert len(_since(log, before)) == 12 and verify(log).broken is None


async def test_every_request_of_a_failed_append_fails_closed(warehouse_url: str, log: AuditLog) -> None:
    async for api in open_api(warehouse_url):
        with log.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_log_away"))
        try:
            bodies = await asyncio.gather(*(api("{ metrics { rows { errorCount } } }") for _ in range(6)))
        finally:
            with log.engine.begin() as connection:
                connection.execute(sa.text("ALTER TABLE audit_log_away RENAME TO audit_log"))
        after = await api("{ metrics { rows { errorCount } } }")
    assert all(
        body["data"] is None and [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL"] for body in bodies
    )
    assert after["data"]["metrics"]["rows"] == [{"errorCount": 20}] and verify(log).broken is None
