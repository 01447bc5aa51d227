"""The result cache as a client sees it: ``extensions.cache``, ``explain``'s ``cache``, callers of other scopes kept
apart, servers sharing Redis, Redis down, an ETL commit, and the settings that choose all this."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from graphql_api.settings import AccessSettings, Settings, SettingsError
from metrics.registry import load_registry
from metrics.result_cache import CacheSettings
from tests.graphql_api.conftest import POLICIES, SECRET, Api, open_api, token
from tests.graphql_api.test_access import ADMIN, AGENT_TYPE, VERIFICATION_AGENTS
from tests.small_source import build_source
from tests.warehouse.sourcedb import T0
from warehouse.etl import run_etl

BY_AGENT = "{ metrics { rows { agent { name } verificationCount } } }"
EXPLAIN = '{ explain(metrics: ["verificationCount"], dimensions: ["agent.name"]) { cache } }'


async def test_a_repeat_says_hit_and_explain_says_so_beforehand(api: Api) -> None:
    assert (await api(EXPLAIN))["data"]["explain"]["cache"] == "miss"
    first = await api(BY_AGENT)
    assert first["extensions"] == {"cache": "miss"}
    assert (await api(EXPLAIN))["data"]["explain"]["cache"] == "hit"
    second = await api(BY_AGENT)
    assert second == {"data": first["data"], "extensions": {"cache": "hit"}}
    api.version_reads = 0
    both = await api("{ a: metrics { rows { agent { name } verificationCount } } b: metrics { rows { errorCount } } }")
    assert both["extensions"] == {"cache": "partial"} and both["data"]["a"] == first["data"]["metrics"]
    assert api.version_reads == 1  # the two fields' lookups, arriving together, share one read
    assert "extensions" not in await api("{ catalog { metrics { name } } }")  # nothing was queried


async def test_table_and_member_metrics_go_through_the_cache(api: Api) -> None:
    for query in (
        '{ table(metrics: ["verificationCount"], dimensions: ["tier.name"]) { rows totalCount } }',
        "{ agents { name metrics { errorCount } } }",
    ):
        first, second = await api(query), await api(query)
        assert (first["extensions"], second["extensions"]) == ({"cache": "miss"}, {"cache": "hit"})
        assert first["data"] == second["data"]


@pytest.fixture
async def scoped_api(warehouse_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    (tmp_path / "policies.yaml").write_text(POLICIES)
    settings = {"config_dirs": (tmp_path,), "access": AccessSettings(jwt_secret=SECRET)}
    async for opened in open_api(warehouse_url, load_registry([tmp_path]), **settings):
        yield opened


async def test_callers_share_answers_only_within_one_scope(scoped_api: Api) -> None:
    def expected(types: set[str]) -> dict[str, int]:
        agents = [a for a in VERIFICATION_AGENTS if a is not None and AGENT_TYPE[a] in types]
        return {a: agents.count(a) for a in set(agents)}

    async def ask(headers: dict[str, str]) -> tuple[str, dict[object, int]]:
        body = await scoped_api(BY_AGENT, **headers)
        rows = body["data"]["metrics"]["rows"]
        return body["extensions"]["cache"], {r["agent"]["name"]: r["verificationCount"] for r in rows}

    admin = await ask(ADMIN)
    assert admin[0] == "miss" and sum(admin[1].values()) == 60
    data = await ask(token(sub="ada", groups=["support"], agent_types=["data"]))
    assert data == ("miss", expected({"data"}))
    support = await ask(token(sub="ada", groups=["support"], agent_types=["support"]))
    assert support == ("miss", expected({"support"}))
    # Another person with the same groups and claims has the same scope: the same answer, from the cache.
    assert await ask(token(sub="bob", groups=["support"], agent_types=["data"])) == ("hit", expected({"data"}))
    research = await ask(token(role="research", groups=["support"], agent_types=["data"]))
    assert research[0] == "miss"  # k-anonymous: another scope


async def test_servers_sharing_redis_share_answers(warehouse_url: str, redis_cache: CacheSettings) -> None:
    async for first in open_api(warehouse_url, cache=redis_cache):
        async for second in open_api(warehouse_url, cache=redis_cache):
            one, other = await first(BY_AGENT), await second(BY_AGENT)
            assert (one["extensions"], other["extensions"]) == ({"cache": "miss"}, {"cache": "hit"})
            assert one["data"] == other["data"] and (second.statements, second.version_reads) == (0, 1)


async def test_redis_down_is_a_miss_not_an_error(warehouse_url: str, api: Api) -> None:
    expected = (await api(BY_AGENT))["data"]
    async for down in open_api(warehouse_url, cache=CacheSettings(url="redis://127.0.0.1:1/0", timeout=0.2)):
        for _ in range(2):
            body = await asyncio.wait_for(down(BY_AGENT), 10)
            assert body == {"data": expected, "extensions": {"cache": "miss"}}
        assert (await down(EXPLAIN))["data"]["explain"]["cache"] == "miss"


async def test_without_the_cache_responses_say_nothing_and_explain_says_off(uncached_api: Api) -> None:
    assert "extensions" not in await uncached_api(BY_AGENT)
    assert (await uncached_api(EXPLAIN))["data"]["explain"]["cache"] == "off"


async def test_a_server_running_its_own_etl_answers_the_new_data(tmp_path: Path) -> None:
    """As ``serve --etl-every`` does: the ETL commits in the server's process, through its own connection."""
    source = build_source(f"sqlite:///{tmp_path / 'source.sqlite'}")
    warehouse = f"duckdb:///{tmp_path / 'w.duckdb'}"
    run_etl(source.url, warehouse, hash_key="k")
    count = "{ metrics { rows { verificationCount } } }"
    async for api in open_api(warehouse):
        assert [(await api(count))["extensions"]["cache"] for _ in range(2)] == ["miss", "hit"]
        later = T0 + timedelta(days=30)
        source.insert("action_contracts", {"contract_id": "late", "created_at": later, "updated_at": later})
        await asyncio.to_thread(run_etl, source.url, warehouse, hash_key="k")
        after = await api(count)
        assert after == {"data": {"metrics": {"rows": [{"verificationCount": 61}]}}, "extensions": {"cache": "miss"}}
    source.dispose()


def test_the_cache_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).cache == CacheSettings()
    assert Settings.from_env({"GRACE_METRICS_CACHE_URL": "off"}).cache is None
    shared = Settings.from_env(
        {"GRACE_METRICS_CACHE_URL": "redis://cache:6379/2", "GRACE_METRICS_CACHE_ENTRY_BYTES": "5000"}
    ).cache
    assert shared == CacheSettings(url="redis://cache:6379/2", max_entry_bytes=5000)
    sized = Settings.from_env({"GRACE_METRICS_CACHE_ENTRIES": "10", "GRACE_METRICS_CACHE_BYTES": "4096"}).cache
    assert sized == CacheSettings(max_entries=10, max_bytes=4096)
    with pytest.raises(SettingsError, match="GRACE_METRICS_CACHE_URL: 'memcached://x' is not memory://"):
        Settings.from_env({"GRACE_METRICS_CACHE_URL": "memcached://x"})
    with pytest.raises(SettingsError, match="GRACE_METRICS_CACHE_ENTRIES: '0' is not a whole number greater than 0"):
        Settings.from_env({"GRACE_METRICS_CACHE_ENTRIES": "0"})
