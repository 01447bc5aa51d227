"""The ASGI application: GraphQL at /graphql, GraphiQL on GET, health at /healthz.

A lifespan opens the engine and builds the schema once; engines and loaders
are never created at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from cross_web import HTTPException  # what Strawberry raises for malformed requests
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from graphql_api.access import Schemas
from graphql_api.audit import AuditWriter, audit_writer
from graphql_api.auth import Authenticator, AuthError
from graphql_api.context import Context
from graphql_api.graphiql import graphiql_page
from graphql_api.http_status import RETRY_AFTER_SECONDS, CutOffIsUnavailable, http_status
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


MAX_JSON_DEPTH = 1000
"""Deeper JSON than any request needs; Python's own parser would overflow its stack on it."""


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests containers over ``limit`` levels, walked level by level (no recursion)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return False


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class GraphQLApp(GraphQL):
    """Strawberry's ASGI app with a body-size cap, JSON read and written by orjson, and JSON HTTP errors.

    Every body Strawberry would fail on with a plain-text 500 (``null``, ``1``, deep nesting, a
    4,300-digit integer, invalid UTF-8) is refused here as a 400 BAD_REQUEST naming the problem.
    """

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

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict):  # one operation; a batch keeps 200
            response.status_code, headers = http_status(response_data)
            response.headers.update(headers)
        return response

    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"the request is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise HTTPException(
                400, f'the request\'s JSON must be an object such as {{"query": "..."}}, not {type(parsed).__name__}'
            )
        brackets = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else data.count("[") + data.count("{")
        if brackets > MAX_JSON_DEPTH and _too_deep(parsed, MAX_JSON_DEPTH):
            raise HTTPException(400, f"the request's JSON nests deeper than {MAX_JSON_DEPTH} levels")
        return parsed

    def encode_json(self, data: object) -> bytes:
        try:
            return orjson.dumps(data)
        except TypeError:  # what orjson cannot write (an integer over 64 bits) the standard library can
            return json.dumps(data, separators=(",", ":")).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.max_body_bytes
        request = Request(scope, receive)
        body = await _bounded_body(request, limit)
        response: Response
        if body is None:
            response = api_error(
                413, "LIMIT_EXCEEDED", f"the request body is larger than {limit:,} bytes; send a smaller query"
            )
        elif request.method == "POST" and not _is_json(request.headers.get("content-type", "")):
            response = api_error(
                415, "BAD_REQUEST", "send the request as JSON with the header Content-Type: application/json"
            )
        else:
            try:
                response = await self.run(Request(scope, _replay(body, receive)))
            except HTTPException as error:  # the inner handler: Strawberry's refusals of malformed requests
                response = api_error(error.status_code, "BAD_REQUEST", error.reason)
        await response(scope, receive, send)


class GraphQLEndpoint:
    """GET from a browser: the GraphiQL page; GET with ``?query=`` and POST: GraphQL over HTTP (queries only on GET).

    Other methods get a JSON 405 here, with the ``Allow`` header, rather than the router's plain-text one.
    """

    ALLOWED = ("GET", "HEAD", "POST")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        response: Response | None = None
        if request.method not in self.ALLOWED:
            response = api_error(405, "BAD_REQUEST", f"{request.method} is not supported here; use GET or POST")
            response.headers["allow"] = ", ".join(self.ALLOWED)
        elif request.method in ("GET", "HEAD") and "query" not in request.query_params:
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


HEALTH_TIMEOUT = 4.0
"""Seconds /healthz waits for the warehouse, whatever it does; below the Docker HEALTHCHECK's 5 s."""


async def _last_etl_run(engine: MetricsEngine) -> tuple[Any, ...] | None:
    runs = warehouse_schema.etl_runs
    query = (
        sa.select(runs.c.status, runs.c.started_at, runs.c.finished_at, runs.c.error)
        .order_by(runs.c.started_at.desc())
        .limit(1)
    )
    async with asyncio.timeout(HEALTH_TIMEOUT):
        rows = await engine.execute(query, timeout=HEALTH_TIMEOUT / 2)
    return rows[0] if rows else None


def _reason(error: Exception) -> str:
    if isinstance(error, MetricsError):
        return str(error)
    if isinstance(error, TimeoutError):
        return f"the warehouse did not answer within {HEALTH_TIMEOUT:g}s"
    return type(error).__name__


def _is_admin(request: Request) -> bool:
    try:
        caller = request.app.state.graphql.authenticator.authenticate(request.headers)
    except AuthError:
        return False
    return caller is not None and caller.is_admin


async def health(request: Request) -> JSONResponse:
    """Whether the warehouse answers, and when the last ETL run ran; error texts only for an admin.

    No key is needed: a load balancer probes it. An ETL error can quote source values and a
    driver's message can quote SQL, so those are shown only to an admin's key (everyone is
    admin when no keys are configured).
    """
    engine: MetricsEngine = request.app.state.engine
    admin = _is_admin(request)
    try:
        last = await _last_etl_run(engine)
    except Exception as exc:  # noqa: BLE001 -- a health check reports any failure, never raises
        body = {"status": "error", "warehouse": "unavailable"}
        if admin:  # driver text (it may quote SQL) stays in the log even for admins
            body["detail"] = _reason(exc)
        return JSONResponse(body, status_code=503, headers={"retry-after": str(RETRY_AFTER_SECONDS)})
    run = None
    if last is not None:
        status, started, finished, error = last
        run = {
            "status": status,
            "startedAt": started.isoformat() + "Z",
            "finishedAt": finished and finished.isoformat() + "Z",
        }
        if admin:
            run["error"] = error
    return JSONResponse({"status": "ok", "warehouse": "ok", "lastEtlRun": run})


async def http_refusal(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such path, a method the route does not take) in the GraphQL error shape."""
    assert isinstance(error, StarletteHTTPException)
    messages = {
        404: f"no such path {request.url.path!r}; the API is POST /graphql, GraphiQL GET /graphql",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    response = api_error(error.status_code, "BAD_REQUEST", messages.get(error.status_code, error.detail))
    response.headers.update(error.headers or {})
    return response


async def home(request: Request) -> Response:
    """``/`` leads to GraphiQL until a dashboard lives there."""
    return RedirectResponse("/graphql", status_code=307)


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
            EngineSettings(
                statement_timeout=settings.statement_timeout,
                max_rows=settings.max_rows,
                read_only=not settings.writes_warehouse(runs_etl=background is not None),
                rollups=settings.rollups,
                cache=settings.cache,
            ),
        )
        app.state.engine = engine
        policies = load_policies(config_directories(settings.config_dirs), engine.registry)
        try:
            access = settings.access
            async with audit_writer(
                settings.audit_url,
                fail_open=access.audit_fail_open,
                timeout=settings.statement_timeout,
                durable=access.audit_durable,
            ) as audit:
                app.state.graphql = GraphQLApp(engine, settings, policies, audit)
                async with background(engine) if background else contextlib.nullcontext():
                    yield
        finally:
            await engine.close()

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/graphql", GraphQLEndpoint()),
            Route("/healthz", health),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(CutOffIsUnavailable)],
        lifespan=lifespan,
        exception_handlers={StarletteHTTPException: http_refusal},
    )
