"""The HTTP status of a GraphQL response, from its error codes (GraphQL over HTTP allows non-200 for these).

A warehouse outage is 503 with ``Retry-After``, so clients and proxies retry
instead of reporting a bug; a request refused for its credentials before
anything ran is 401. Everything else stays 200 with errors in the body. A
request cut off by a stopping server is an outage too, not uvicorn's
plain-text 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_AFTER_SECONDS = 5
"""How long a client should wait before retrying during an outage: a restart or failover takes a few seconds."""


def _codes(response: Mapping[str, Any]) -> set[str]:
    return {str((error.get("extensions") or {}).get("code")) for error in response.get("errors") or ()}


def http_status(response: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
    """Status and extra headers for one GraphQL response body."""
    codes = _codes(response)
    if "UNAVAILABLE" in codes:
        return 503, {"retry-after": str(RETRY_AFTER_SECONDS)}
    data = response.get("data")
    if codes == {"UNAUTHORIZED"} and all(value is None for value in (data or {}).values()):
        return 401, {"www-authenticate": "Bearer"}
    return 200, {}


class CutOffIsUnavailable:
    """ASGI middleware: a request cancelled by a stopping server (its graceful timeout passed) answers 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if not started:
                error = {
                    "message": "the server is shutting down; retry the request",
                    "extensions": {"code": "UNAVAILABLE"},
                }
                body = {"errors": [error]}
                headers = {"retry-after": str(RETRY_AFTER_SECONDS)}
                await JSONResponse(body, status_code=503, headers=headers)(scope, receive, send)
            raise
