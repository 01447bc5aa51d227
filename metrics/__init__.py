"""Grace Metrics' semantic layer: the registry, the pure compiler, and the engine that runs it."""

from metrics.client import MetricsClient
from metrics.compiler import DimensionRef, MetricRequest, compile_query
from metrics.engine import EngineSettings, MetricsEngine
from metrics.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    InvalidDimension,
    MetricsError,
    QueryError,
    QueryTimeout,
    UnknownMetric,
)
from metrics.registry import Registry, load_registry
from metrics.result_cache import CacheSettings

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CacheSettings",
    "ConfigError",
    "DimensionRef",
    "EngineSettings",
    "InvalidDimension",
    "MetricRequest",
    "MetricsClient",
    "MetricsEngine",
    "MetricsError",
    "QueryError",
    "QueryTimeout",
    "Registry",
    "UnknownMetric",
    "compile_query",
    "load_registry",
]
