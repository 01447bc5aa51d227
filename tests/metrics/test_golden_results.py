"""The golden SQL files, executed: on the catalog dataset each gives the rows the compiler's query gives.

The golden files show compiled SQL with its values inlined (for reading);
running them proves the text still means what the engine computes, on the
backend each was written for.
"""

from __future__ import annotations

import pytest

from metrics.compiler import compile_query
from metrics.registry import load_registry
from metrics.results import QueryResult
from tests.metrics.catalog_data import Engines
from tests.metrics.compiler.test_to_sql import CASES, GOLDEN

REGISTRY = load_registry()


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
@pytest.mark.parametrize("case", CASES)
def test_golden_sql_gives_the_engines_rows(case: str, backend: str, engines: Engines) -> None:
    compiled = compile_query(CASES[case], REGISTRY)
    golden = QueryResult.from_rows(
        compiled.columns,
        engines.fetch(backend, (GOLDEN / f"{case}.{backend}.sql").read_text()),
        compiled.timezone,
        counted=compiled.plan.total_count,
    )
    answer = engines.query(backend, CASES[case])
    assert golden.rows == answer.rows and golden.total_count == answer.total_count
    assert answer.rows
