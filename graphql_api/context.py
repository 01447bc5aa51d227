"""Per-request state: the engine, the caller's role, and DataLoaders created fresh for each request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from starlette.requests import Request
from strawberry.dataloader import DataLoader

from graphql_api.errors import ApiError
from graphql_api.loaders import MemberKey, load_member_metrics, load_metrics
from graphql_api.settings import ROLES, Settings
from graphql_api.types import Row
from metrics.compiler import MetricRequest
from metrics.engine import MetricsEngine
from metrics.results import QueryResult


@dataclass
class Context:
    engine: MetricsEngine
    settings: Settings
    role: str | None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    metrics: DataLoader[MetricRequest, QueryResult] = field(init=False)
    members: DataLoader[MemberKey, Row | None] = field(init=False)

    def __post_init__(self) -> None:
        self.metrics = DataLoader(lambda keys: load_metrics(self.engine, keys))
        self.members = DataLoader(lambda keys: load_member_metrics(self.engine, keys))

    def require(self, role: str) -> None:
        if self.role is None:
            raise ApiError("missing or unknown API key: send `Authorization: Bearer <key>`", "UNAUTHORIZED")
        if ROLES.index(self.role) < ROLES.index(role):
            raise ApiError(f"this needs the {role} role; your API key has {self.role}", "FORBIDDEN")


def caller_role(request: Request, settings: Settings) -> str | None:
    """The caller's role from its API key; everyone is admin when no keys are configured."""
    if not settings.api_keys:
        return "admin"
    header = request.headers.get("authorization", "")
    key = (
        header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.headers.get("x-api-key", "")
    )
    return settings.api_keys.get(key)
