"""The Python client, as pipelines use it: no row cap unless asked for, and the API the README documents."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from metrics import DimensionRef, EngineSettings, MetricRequest, MetricsClient, compile_query, load_registry
from metrics.compiler import CompiledQuery
from metrics.errors import LimitExceeded
from tests.warehouse.sourcedb import T0, SourceDB
from warehouse.etl import run_etl

SERVER_CAP = 10_000
MINUTES = SERVER_CAP + 1


@pytest.fixture(scope="module")
def one_verification_a_minute(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A warehouse whose verification count by minute has one row more than the server's default cap."""
    root = tmp_path_factory.mktemp("client")
    source = SourceDB(f"sqlite:///{root / 'source.sqlite'}")
    source.insert("components", {"component_name": "api", "updated_at": T0})
    source.insert(
        "action_contracts",
        *(
            {"contract_id": f"c{i}", "created_at": T0 + timedelta(minutes=i), "updated_at": T0, "tier_id": "tier_0"}
            for i in range(MINUTES)
        ),
    )
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_etl(source.url, url, hash_key="k")
    source.dispose()
    return url


def test_the_client_caps_no_result_and_ignores_the_servers_setting(
    one_verification_a_minute: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_METRICS_MAX_ROWS", "5")
    with MetricsClient(one_verification_a_minute) as client:
        table = client.query(["verification_count"], by=["time.minute"])
    assert table.num_rows == MINUTES
    assert sum(table.column("verification_count").to_pylist()) == MINUTES


def test_a_cap_applies_when_asked_for(one_verification_a_minute: str) -> None:
    with MetricsClient(one_verification_a_minute, settings=EngineSettings(max_rows=SERVER_CAP)) as client:
        with pytest.raises(LimitExceeded, match=f"returns {MINUTES} rows, more than the maximum of {SERVER_CAP}"):
            client.query(["verification_count"], by=["time.minute"])
        assert client.query(["verification_count"], by=["time.minute"], limit=3).num_rows == 3


def test_compile_query_returns_a_compiled_query_without_a_connection() -> None:
    """What the README promises: the SQLAlchemy statement, its columns and readable SQL, with no database."""
    compiled = compile_query(
        MetricRequest(("error_count",), (DimensionRef.parse("component.kernel"),)), load_registry()
    )
    assert isinstance(compiled, CompiledQuery) and isinstance(compiled.statement, sa.Select)
    assert [column.name for column in compiled.columns] == ["component.kernel", "error_count"]
    assert "fact_errors" in compiled.sql(postgresql.dialect())
