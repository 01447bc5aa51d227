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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from graphql_api.context import Context, caller_role
from graphql_api.graphiql import graphiql_page
from graphql_api.schema import build_schema
from graphql_api.settings import Settings
from metrics.engine import EngineSettings, MetricsEngine
from metrics.registry import Registry, load_registry
from warehouse import schema as warehouse_schema

STATIC = Path(__file__).parent / "static"


class GraphQLApp(GraphQL):
    def __init__(self, engine: MetricsEngine, settings: Settings) -> None:
        super().__init__(build_schema(engine.registry), graphql_ide=None, allow_queries_via_get=False)
        self.engine = engine
        self.settings = settings

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return Context(self.engine, self.settings, caller_role(request, self.settings))


class GraphQLEndpoint:
    """GET: the GraphiQL page; POST: GraphQL over HTTP."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if request.method == "GET":
            await HTMLResponse(graphiql_page())(scope, receive, send)
        else:
            await request.app.state.graphql(scope, receive, send)


async def health(request: Request) -> JSONResponse:
    """Whether the warehouse answers, and how the last ETL run went."""
    engine: MetricsEngine = request.app.state.engine
    runs = warehouse_schema.etl_runs
    query = sa.select(runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.error).order_by(runs.c.started_at.desc()).limit(1)
    compiled = query.compile(dialect=engine.backend.dialect, compile_kwargs={"render_postcompile": True})
    try:
        rows = await engine.backend.fetch(compiled.string, [compiled.params[n] for n in compiled.positiontup or ()], timeout=5)
    except Exception as exc:  # the health check reports any failure instead of raising it
        return JSONResponse({"status": "error", "warehouse": f"{type(exc).__name__}: {exc}"}, status_code=503)
    last = None
    if rows:
        status, started, finished, error = rows[0]
        last = {"status": status, "startedAt": started.isoformat() + "Z", "finishedAt": finished and finished.isoformat() + "Z", "error": error}
    return JSONResponse({"status": "ok", "warehouse": "ok", "lastEtlRun": last})


def create_app(settings: Settings, registry: Registry | None = None, background: Callable[[MetricsEngine], contextlib.AbstractAsyncContextManager[Any]] | None = None) -> Starlette:
    """The server; ``background`` runs beside it for its lifetime (the scheduled ETL)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = await MetricsEngine.connect(
            settings.warehouse_url,
            registry or load_registry(settings.config_dirs),
            EngineSettings(statement_timeout=settings.statement_timeout, max_rows=settings.max_rows),
        )
        app.state.engine = engine
        app.state.graphql = GraphQLApp(engine, settings)
        try:
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
