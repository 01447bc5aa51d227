"""Writing one audit entry per GraphQL request, before the response leaves.

``AuditTrail`` (a schema extension on every schema) builds the entry when the
operation ends, from the context: the caller, what the resolvers asked the
engine for (``Context.audit_requests``), the rows returned and the outcome.
``AuditWriter`` is the single writer of a server: requests hand it entries
and wait; it appends whatever has queued up in one transaction in a worker
thread, so concurrent requests never fork the chain and cost one commit
between them. If the append fails the request fails with INTERNAL (fail
closed), unless the server is configured to fail open (the embedded demo),
which logs the failure instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from metrics.compiler.spec import predicates
from warehouse.audit import MAX_BATCH, AuditLog, Entry

log = logging.getLogger("grace_metrics.audit")


class AuditWriter:
    """One per server: batches the entries of concurrent requests into one append."""

    def __init__(self, audit: AuditLog, *, fail_open: bool, timeout: float) -> None:
        self.audit = audit
        self.fail_open = fail_open
        self.timeout = timeout
        """Seconds a request waits for its entry: a hung audit database must not hold requests for ever."""
        self._pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def write(self, entry: Entry) -> None:
        """Returns once the entry is in the warehouse; raises what the append raised, or ``TimeoutError``."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())
        await asyncio.wait_for(asyncio.shield(future), self.timeout)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await asyncio.to_thread(self.audit.append, [entry for entry, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every waiting request, which fails or logs it
                for _, future in batch:
                    future.set_exception(error)
            else:
                for _, future in batch:
                    future.set_result(None)


@contextlib.asynccontextmanager
async def audit_writer(
    url: str, *, fail_open: bool, timeout: float, durable: bool = True
) -> AsyncIterator[AuditWriter]:
    audit = AuditLog(url, durable=durable)
    try:
        await asyncio.to_thread(audit.create)
        yield AuditWriter(audit, fail_open=fail_open, timeout=timeout)
    finally:
        audit.close()


class AuditTrail(SchemaExtension):
    """Appends the request's entry when the operation ends; a failed append fails the request (unless fail-open)."""

    async def on_operation(self) -> AsyncIterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        request = context.context
        writer: AuditWriter | None = getattr(request, "audit", None)
        result = context.result
        if writer is None or result is None:
            return
        entry = _entry(request, context.operation_name, result.errors, (time.perf_counter() - started) * 1000)
        try:
            await writer.write(entry)
        except TimeoutError:  # the audit database does not answer: an outage, retried later like any other
            log.error("request %s: the audit log did not answer within %gs", request.request_id, writer.timeout)
            if not writer.fail_open:
                message = f"the audit log did not answer within {writer.timeout:g}s; retry later"
                result.data, result.errors = None, [GraphQLError(message, extensions={"code": "UNAVAILABLE"})]
        except Exception:  # any failure to write: the request must not pass unrecorded
            log.exception("request %s: the audit entry could not be written", request.request_id)
            if not writer.fail_open:
                message = f"internal error (request id {request.request_id}); the audit log could not be written"
                error = GraphQLError(message, extensions={"code": "INTERNAL", "requestId": request.request_id})
                result.data, result.errors = None, [error]


def _entry(request: Any, operation: str | None, errors: list[GraphQLError] | None, duration_ms: float) -> Entry:
    """What the request did, from the context (``graphql_api.context``) and the coded errors."""
    caller = request.caller
    requests = request.audit_requests
    return Entry(
        logged_at=datetime.now(UTC),
        caller=caller.id if caller else "anonymous",
        role=caller.role if caller else None,
        groups=tuple(caller.groups) if caller else (),
        operation=operation,
        metrics=tuple(dict.fromkeys(m for r in requests for m in r.metrics)),
        dimensions=tuple(dict.fromkeys(d.key for r in requests for d in r.dimensions)),
        filters=tuple(dict.fromkeys(str(p) for r in requests for p in predicates(r.where))),
        rows_returned=request.rows_returned,
        suppressed_rows=request.suppressed_rows,
        outcome=str((errors[0].extensions or {}).get("code", "INTERNAL")) if errors else "OK",
        duration_ms=duration_ms,
    )
