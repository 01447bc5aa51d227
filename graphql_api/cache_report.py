"""``extensions.cache`` of a response: whether its answers came from the result cache (``Context.cache``)."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension


class CacheReport(SchemaExtension):
    """``{"cache": "hit"}`` when every query was answered from the cache, ``"miss"`` when none was, ``"partial"``
    otherwise; nothing when no query ran or the cache is off."""

    def get_results(self) -> dict[str, Any]:
        outcome = getattr(self.execution_context.context, "cache", None)
        return {} if outcome is None else {"cache": outcome}
