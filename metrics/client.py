"""A synchronous Python entry point for notebooks and ML pipelines: names in, Arrow out.

    with MetricsClient("duckdb:///warehouse.duckdb") as client:
        table = client.query(["verification_count", "p95_verification_duration_ms"],
                             by=["tier.name", "time.day"], where={"component.kernel": {"eq": "ingress"}})
        frame = table.to_pandas()

The async engine runs on a private event loop in a background thread, so the
client also works inside Jupyter, whose own loop is already running.

Library calls are for pipelines: unlike the server, the client caps no result
unless asked (``settings=EngineSettings(max_rows=...)``); the server's
``GRACE_METRICS_MAX_ROWS`` protects the server and is not read here.
Repeated requests are answered from an in-memory result cache until an ETL
run commits (``metrics.result_cache``); ``EngineSettings(max_rows=None,
cache=None)`` turns it off.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from metrics.compiler import And, DimensionRef, Filter, MetricCondition, MetricRequest, OrderBy, Predicate, TimeRange
from metrics.compiler.request import HAVING_OPERATORS
from metrics.engine import EngineSettings, MetricsEngine
from metrics.errors import InvalidFilter, did_you_mean
from metrics.model import FilterOp
from metrics.registry import load_registry

T = TypeVar("T")
Where = Filter | Mapping[str, Mapping[str, Any]] | None


def _operator(key: str, name: str, allowed: Iterable[FilterOp] = tuple(FilterOp)) -> FilterOp:
    """The operator called ``name``, or ``InvalidFilter`` naming the ones ``key`` accepts."""
    allowed = tuple(allowed)
    if name not in {op.value for op in allowed}:
        names = [op.value for op in allowed]
        raise InvalidFilter(f"{key}: unknown operator {name!r}{did_you_mean(name, names)}; use {', '.join(names)}")
    return FilterOp(name)


def where_from_mapping(where: Where) -> Filter | None:
    """``{"tier.name": {"in": [...]}, "agent.type": {"eq": "ops"}}`` -> predicates combined with and."""
    if where is None or isinstance(where, (Predicate, And)) or not isinstance(where, Mapping):
        return where  # type: ignore[return-value]
    predicates: list[Filter] = []
    for key, operators in where.items():
        for name, value in operators.items():
            predicates.append(
                Predicate(
                    DimensionRef.parse(key), _operator(key, name), tuple(value) if isinstance(value, list) else value
                )
            )
    return predicates[0] if len(predicates) == 1 else And(tuple(predicates))


LIBRARY_SETTINGS = EngineSettings(max_rows=None)
"""No row cap; the statement timeout stays as a guard against a query that would never end."""


class MetricsClient:
    def __init__(
        self, url: str, *, config: Sequence[str | Path] = (), settings: EngineSettings = LIBRARY_SETTINGS
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grace-metrics-client", daemon=True)
        self._thread.start()
        self.engine: MetricsEngine = self._run(MetricsEngine.connect(url, load_registry(config), settings))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def request(
        self,
        metrics: Iterable[str],
        *,
        by: Iterable[str] = (),
        where: Where = None,
        start: datetime | None = None,
        end: datetime | None = None,
        having: Mapping[str, Mapping[str, Any]] | None = None,
        order_by: Iterable[str] = (),
        limit: int | None = None,
        offset: int = 0,
        timezone: str = "UTC",
    ) -> MetricRequest:
        """A request from names; ``order_by`` entries are names, ``-name`` for descending."""
        conditions = tuple(
            MetricCondition(metric, _operator(f"having on {metric}", op, HAVING_OPERATORS), value)
            for metric, ops in (having or {}).items()
            for op, value in ops.items()
        )
        return MetricRequest(
            metrics=tuple(metrics),
            dimensions=tuple(DimensionRef.parse(name) for name in by),
            where=where_from_mapping(where),
            time_range=TimeRange(start, end) if start or end else None,
            having=conditions,
            order_by=tuple(OrderBy(name.lstrip("-"), descending=name.startswith("-")) for name in order_by),
            limit=limit,
            offset=offset,
            timezone=timezone,
        )

    def query(self, metrics: Iterable[str], **options: Any) -> pa.Table:
        """The result as an Arrow table (``.to_pandas()``, ``polars.from_arrow``)."""
        return self._run(self.engine.query(self.request(metrics, **options))).to_arrow()

    def explain(self, metrics: Iterable[str], **options: Any) -> str:
        return self._run(self.engine.explain(self.request(metrics, **options)))

    def cached(self, metrics: Iterable[str], **options: Any) -> bool | None:
        """Whether ``query`` would answer from the result cache now; None when the cache is off."""
        return self._run(self.engine.cached(self.request(metrics, **options)))

    def close(self) -> None:
        self._run(self.engine.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> MetricsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
