"""The request rule of time-relative metrics: they are defined per time bucket, so need exactly one time grain."""

from __future__ import annotations

from metrics.compiler.request import MetricRequest
from metrics.errors import TimeGrainRequired
from metrics.model import TimeGrain
from metrics.registry import TIME, Registry

_GRAINS = ", ".join(f"time.{grain.value}" for grain in TimeGrain)


def check_time_grain(request: MetricRequest, registry: Registry) -> None:
    """Windows and offsets read the buckets of one grain; other time attributes would cut through them."""
    relative = [metric for metric in request.metrics if registry.is_time_relative(metric)]
    needing = [f"metric {metric!r} is time-relative ({registry.metric(metric).description})" for metric in relative]
    if request.fill_gaps:
        needing.append("fillGaps fills the buckets of a time grain")
    if not needing:
        return
    grains = [ref.key for ref in request.dimensions if ref.dimension == TIME and ref.grain is not None]
    parts = [ref.key for ref in request.dimensions if ref.dimension == TIME and ref.grain is None]
    if len(grains) == 1 and not parts:
        return
    found = ", ".join(grains + parts) or "none"
    raise TimeGrainRequired(
        f"{needing[0]}: select exactly one time grain ({_GRAINS}) and no other time attribute (found: {found})"
    )
