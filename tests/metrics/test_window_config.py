"""Time-relative metric kinds in YAML: every problem reported at once, with file, line and a suggestion."""

from __future__ import annotations

from metrics.model import TimeGrain, Window, WindowKind
from metrics.registry import load_registry
from tests.metrics.config_problems import CONFIGS, config_problems


def test_every_problem_of_time_relative_metrics_has_its_line() -> None:
    found, text = config_problems("bad_windows")
    assert found == sorted(
        [
            ("invalid_value", "metrics.yaml", 5),
            ("metric_kind", "metrics.yaml", 9),
            ("invalid_value", "metrics.yaml", 13),
            ("unknown_metric", "metrics.yaml", 17),
            ("invalid_value", "metrics.yaml", 21),
            ("nested_window", "metrics.yaml", 25),
            ("nested_window", "metrics.yaml", 29),
            ("unknown_key", "metrics.yaml", 33),
            ("metric_kind", "metrics.yaml", 34),
            ("invalid_value", "metrics.yaml", 42),
        ]
    )
    assert "metric 'bad_window', 'cumulative': window '2 months' is not valid (use unbounded, N days, N weeks" in text
    assert "grain_to_date 'mnth' is not valid (did you mean 'month'?)" in text
    assert "uses unknown metric 'verification_cuont' (did you mean 'verification_count'?)" in text
    assert "metric 'bad_offset', 'offset': by 'previous_perod' is not valid (did you mean 'previous_period'?)" in text
    assert "its base 'verification_count_7d' is time-relative" in text
    assert (
        "its base 'error_count_change' is time-relative ('error_count_previous' is offset, reading the previous "
        "period); a time-relative metric's base must be a plain metric" in text
    )
    assert "unknown key 'windw'" in text
    assert "fill must be a number, not 'nothing'" in text


def test_time_relative_kinds_build_their_windows() -> None:
    registry = load_registry([CONFIGS / "windows"])
    assert registry.metric("error_count_running").window == Window(WindowKind.ALL)
    assert registry.metric("error_count_2w").window == Window(WindowKind.TRAILING, 2, TimeGrain.WEEK)
    assert registry.metric("verification_count_wtd").window == Window(WindowKind.TO_DATE, unit=TimeGrain.WEEK)
    assert registry.metric("error_count_month_ago").window == Window(WindowKind.SHIFTED, 1, TimeGrain.MONTH)
    assert registry.metric("error_count_month_ago").kind == "offset"
    assert registry.metric("error_count_2w").kind == "cumulative"
    assert registry.metric("verification_count_filled").fill == 0.0
    assert registry.metric("avg_confidence_filled").fill == -1.0
    builtin = load_registry()
    assert builtin.metric("error_count_previous").window == Window(WindowKind.PREVIOUS)
    assert builtin.metric("approval_count_year_ago").window == Window(WindowKind.SHIFTED, 1, TimeGrain.YEAR)
    assert builtin.metric("verification_count_mtd").window == Window(WindowKind.TO_DATE, unit=TimeGrain.MONTH)
    assert builtin.output_type("error_count_change").value == "integer"
    assert builtin.output_type("verification_success_rate_7d").value == "float"
