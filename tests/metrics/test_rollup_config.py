"""Rollups declared in YAML: every problem at once with file, line and a suggestion; the built-ins load."""

from __future__ import annotations

from pathlib import Path

from metrics.model import Rollup, TimeGrain
from metrics.registry import load_registry
from tests.metrics.config_problems import config_problems


def test_every_rollup_problem_is_reported_at_once_with_file_and_line() -> None:
    found, text = config_problems("bad_rollups")
    assert found == sorted(
        [
            ("unknown_fact", "rollups.yaml", 3),
            ("unknown_dimension", "rollups.yaml", 9),
            ("duplicate_name", "rollups.yaml", 9),
            ("unknown_metric", "rollups.yaml", 12),
            ("not_additive", "rollups.yaml", 13),
            ("invalid_metric", "rollups.yaml", 14),
            ("invalid_dimension", "rollups.yaml", 18),
            ("invalid_metric", "rollups.yaml", 19),
            ("unknown_key", "rollups.yaml", 20),
            ("reserved_name", "rollups.yaml", 21),
            ("missing_key", "rollups.yaml", 24),
            ("invalid_value", "rollups.yaml", 27),
        ]
    )
    assert "rollup 'unknown_fact' names unknown fact 'verificatons' (did you mean 'verifications'?)" in text
    assert "fact 'verifications' has no dimension 'agnet' (did you mean 'agent'?)" in text
    assert "serves unknown metric 'verification_cuont' (did you mean 'verification_count'?)" in text
    assert (
        "cannot serve metric 'p95_verification_duration_ms': it is a percentile, which cannot be re-aggregated" in text
    )
    assert "cannot serve metric 'error_count': it reads fact 'errors'" in text
    assert "cannot keep dimension 'practice': it is reached through a bridge" in text
    assert "metric 'verification_count_7d' is time-relative" in text
    assert "rollup grain 'week' is not valid (one of: minute, hour, day)" in text


def test_the_builtin_rollups_serve_every_fact_and_a_user_may_add_one(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "rollups:\n  errors_by_type:\n    fact: errors\n    grain: minute\n"
        "    dimensions: [error_type]\n    metrics: [error_count]\n"
    )
    registry = load_registry([tmp_path])
    assert {rollup.fact for rollup in registry.rollups.values()} == set(registry.facts)
    mine = registry.rollups["errors_by_type"]
    assert mine == Rollup("errors_by_type", "errors", ("error_type",), TimeGrain.MINUTE, ("error_count",), mine.file, 2)
    assert mine.file.endswith("mine.yaml")
