"""Applying a caller's access scope to a request, before anything else of the compiler sees it.

Every name the request uses (metrics, selected and filtered dimensions, and
through them having and order, which may only name selected fields) is
checked against the caller's view of the registry, so a hidden name fails
with ``Forbidden`` and every message lists visible names only. The grants
that admit all of those names give the rows: their row filters, OR-ed, are
AND-ed onto ``where``, which the plan applies to every fact of the query,
drill-across included. The scope is part of the request, so the result cache
and the loaders never share an answer between callers of different scopes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from metrics.compiler.request import And, MetricRequest
from metrics.compiler.spec import predicates, resolve
from metrics.errors import Forbidden
from metrics.registry import Registry

if TYPE_CHECKING:  # metrics.policy builds on the compiler's request types; the import stays one way at run time
    from metrics.policy import Scope


def apply_scope(request: MetricRequest, registry: Registry, scope: Scope) -> MetricRequest:
    """The request restricted to the caller's rows, without its scope; raises ``Forbidden`` for what it may not use."""
    from metrics.policy import ScopedRegistry, union

    resolve(replace(request, scope=None), ScopedRegistry(registry, scope))
    dimensions = {ref.dimension for ref in request.dimensions} | {p.ref.dimension for p in predicates(request.where)}
    grants = [g for g in scope.grants if set(request.metrics) <= g.metrics and dimensions <= g.dimensions]
    if not grants:
        raise Forbidden(
            "no policy of yours allows these metrics and dimensions together; query them separately, or ask for access"
        )
    rows = union([grant.rows for grant in grants])
    if rows is not None:
        request = replace(request, where=rows if request.where is None else And((rows, request.where)))
    return replace(request, scope=None)
