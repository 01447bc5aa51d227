"""Per-request state: the engine, the caller and its access scope, and DataLoaders created fresh for each request."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from strawberry.dataloader import DataLoader

from graphql_api.auth import Caller
from graphql_api.errors import ApiError
from graphql_api.loaders import MemberKey, load_member_metrics, load_metrics, member_requests
from graphql_api.settings import Settings
from graphql_api.types import Row
from metrics.compiler import MetricRequest, suppressed_rows
from metrics.engine import MetricsEngine
from metrics.policy import Scope
from metrics.results import QueryResult


@dataclass
class Context:
    engine: MetricsEngine
    settings: Settings
    caller: Caller | None
    scope: Scope | None = None
    """None: unrestricted (admins, or no policies configured)."""
    schema: Any = None
    """The schema of this caller's visible set (``graphql_api.access``)."""
    auth_failure: str | None = None
    audit: Any = None
    """The server's ``graphql_api.audit.AuditWriter``; the entry is built from the two fields below."""
    audit_requests: list[MetricRequest] = field(default_factory=list)
    rows_returned: int = 0
    suppressed_rows: int = 0
    """Rows k-anonymity left out of this request's answers (research callers)."""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    cache_outcomes: list[bool | None] = field(default_factory=list)
    """``QueryResult.from_cache`` of each query this request ran."""
    metrics: DataLoader[MetricRequest, QueryResult] = field(init=False)
    members: DataLoader[MemberKey, Row | None] = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = DataLoader(self._load_metrics)
        self.members = DataLoader(self._load_members)

    async def _load_metrics(self, keys: list[MetricRequest]) -> list[QueryResult | BaseException]:
        results = await load_metrics(self.engine, keys)
        answered = {id(r): r for r in results if isinstance(r, QueryResult)}  # merged loads share one result
        self.cache_outcomes.extend(r.from_cache for r in answered.values())
        self.rows_returned += sum(len(r.rows) for r in answered.values())
        await self._count_suppressed(dict.fromkeys(keys))
        return results

    async def _load_members(self, keys: list[MemberKey]) -> list[Row | Exception | None]:
        requests = member_requests(keys)
        self.audit_requests.extend(MetricRequest(key.metrics, (key.identifier,), key.where) for key in requests)
        answers = await load_member_metrics(self.engine, keys, answered=self.cache_outcomes.append)
        self.rows_returned += sum(isinstance(a, Row) and bool(a.values) for a in answers)
        await self._count_suppressed(requests.values())
        return answers

    @property
    def cache(self) -> str | None:
        """Whether this request's answers came from the result cache: hit (all), miss (none), partial; None where
        the cache was not consulted (no query ran, or the cache is off)."""
        consulted = [outcome for outcome in self.cache_outcomes if outcome is not None]
        if not consulted:
            return None
        return "hit" if all(consulted) else "partial" if any(consulted) else "miss"

    async def _count_suppressed(self, requests: Iterable[MetricRequest]) -> None:
        """Add the rows k-anonymity leaves out of these requests' answers (members, for member navigation)."""
        if self.scope is None or not self.scope.k_anonymity:
            return
        for request in requests:
            count = suppressed_rows(request, self.engine.registry)
            self.suppressed_rows += await self.engine.count(count, request.scope) if count is not None else 0

    def require(self, role: str) -> None:
        if self.caller is None:
            raise ApiError(
                self.auth_failure or "missing or unknown API key: send `Authorization: Bearer <key>`", "UNAUTHORIZED"
            )
        if not self.caller.allows(role):
            raise ApiError(f"this needs the {role} role; your credentials have {self.caller.role}", "FORBIDDEN")

    def scoped(self, request: MetricRequest) -> MetricRequest:
        """``request`` under this caller's scope: the compiler applies it, and it keys every cache. Recorded for the
        audit log."""
        self.audit_requests.append(request)
        return request if self.scope is None else replace(request, scope=self.scope)
