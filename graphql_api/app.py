"""The ASGI application: GraphQL at /graphql, GraphiQL on GET, health at /healthz.

A lifespan opens the engine and builds the schema once; engines and loaders
are never created at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cross_web import HTTPException  # what Strawberry raises for malformed requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from graphql_api.access import Schemas
from graphql_api.audit import AuditWriter, audit_writer
from graphql_api.auth import Authenticator, AuthError
from graphql_api.context import Context
from graphql_api.graphiql import graphiql_page
from graphql_api.settings import RESEARCH, Settings
from metrics.engine import EngineSettings, MetricsEngine
from metrics.errors import MetricsError
from metrics.policy import Policies, load_policies, research_scope
from metrics.registry import Registry, config_directories, load_registry
from warehouse import schema as warehouse_schema

STATIC = Path(__file__).parent / "static"


def api_error(status: int, code: str, message: str) -> JSONResponse:
    """An HTTP-level refusal, shaped like a GraphQL error so clients read one format."""
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes (nothing more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already read body to the next app, then defers to the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class GraphQLApp(GraphQL):
    """Strawberry's ASGI app with a body-size cap and JSON (not plain text) HTTP errors."""

    def __init__(
        self,
        engine: MetricsEngine,
        settings: Settings,
        policies: Policies | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self.policies = policies or Policies()
        self.audit = audit
        self.schemas = Schemas(engine.registry, settings)
        super().__init__(self.schemas, graphql_ide=None, allow_queries_via_get=True)  # type: ignore[arg-type]
        self.engine = engine
        self.settings = settings
        self.authenticator = Authenticator(settings)

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        failure = None
        try:
            caller = self.authenticator.authenticate(request.headers)
        except AuthError as error:
            caller, failure = None, str(error)
        scope = None
        if caller is not None and not caller.is_admin:
            scope = self.policies.scope(self.engine.registry, caller.groups, caller.claims)
            if caller.role == RESEARCH:
                scope = research_scope(self.engine.registry, scope, self.settings.access.k_anonymity)
        schema = self.schemas.for_scope(scope, authenticated=caller is not None)
        return Context(self.engine, self.settings, caller, scope, schema, failure, self.audit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.max_body_bytes
        body = await _bounded_body(Request(scope, receive), limit)
        response: Response
        if body is None:
            response = api_error(
                413, "LIMIT_EXCEEDED", f"the request body is larger than {limit:,} bytes; send a smaller query"
            )
        else:
            try:
                response = await self.run(Request(scope, _replay(body, receive)))
            except HTTPException as error:  # the inner handler: Strawberry's refusals of malformed requests
                response = api_error(error.status_code, "BAD_REQUEST", error.reason)
        await response(scope, receive, send)


class GraphQLEndpoint:
    """GET from a browser: the GraphiQL page; GET with ``?query=`` and POST: GraphQL over HTTP (queries only on GET)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        response: Response | None = None
        if request.method == "GET" and "query" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                response = HTMLResponse(graphiql_page())
            else:
                response = api_error(
                    400,
                    "BAD_REQUEST",
                    'no query: POST JSON {"query": ...} or GET /graphql?query=...; browsers get GraphiQL here',
                )
        if response is None:
            await request.app.state.graphql(scope, receive, send)
        else:
            await response(scope, receive, send)


async def health(request: Request) -> JSONResponse:
    """Whether the warehouse answers, and how the last ETL run went."""
    engine: MetricsEngine = request.app.state.engine
    runs = warehouse_schema.etl_runs
    query = (
        sa.select(runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.error)
        .order_by(runs.c.started_at.desc())
        .limit(1)
    )
    try:
        rows = await engine.execute(query, timeout=5)
    except (
        Exception
    ) as exc:  # a health check reports any failure, never raises; driver text (it may quote SQL) is not shown
        reason = str(exc) if isinstance(exc, MetricsError) else type(exc).__name__
        return JSONResponse({"status": "error", "warehouse": reason}, status_code=503)
    last = None
    if rows:
        status, started, finished, error = rows[0]
        last = {
            "status": status,
            "startedAt": started.isoformat() + "Z",
            "finishedAt": finished and finished.isoformat() + "Z",
            "error": error,
        }
    return JSONResponse({"status": "ok", "warehouse": "ok", "lastEtlRun": last})


def create_app(
    settings: Settings,
    registry: Registry | None = None,
    background: Callable[[MetricsEngine], contextlib.AbstractAsyncContextManager[Any]] | None = None,
) -> Starlette:
    """The server; ``background`` runs beside it for its lifetime (the scheduled ETL)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await MetricsEngine.connect(
            settings.warehouse_url,
            registry or load_registry(settings.config_dirs),
            EngineSettings(statement_timeout=settings.statement_timeout, max_rows=settings.max_rows),
        )
        app.state.engine = engine
        policies = load_policies(config_directories(settings.config_dirs), engine.registry)
        try:
            access = settings.access
            async with audit_writer(
                settings.warehouse_url, fail_open=access.audit_fail_open, durable=access.audit_durable
            ) as audit:
                app.state.graphql = GraphQLApp(engine, settings, policies, audit)
                async with background(engine) if background else contextlib.nullcontext():
                    yield
        finally:
            await engine.close()

    return Starlette(
        routes=[
            Route("/graphql", GraphQLEndpoint(), methods=["GET", "POST"]),
            Route("/healthz", health),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
