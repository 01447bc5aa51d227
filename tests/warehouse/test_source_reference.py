"""docs/sources.md is the source contract of warehouse/source.py, regenerated, never edited by hand."""

from __future__ import annotations

from pathlib import Path

from warehouse.source import SOURCE_TABLES
from warehouse.source_reference import render

PAGE = Path(__file__).parents[2] / "docs" / "sources.md"


def test_the_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text() == render(), "run: python -m warehouse.source_reference > docs/sources.md"


def test_the_page_names_every_table_and_column_the_etl_reads() -> None:
    page = render()
    for table in SOURCE_TABLES:
        section = page.split(f"\n## {table.name}\n", 1)[1].split("\n## ", 1)[0]
        assert all(f"| `{column.name}` |" in section for column in table.columns), table.name
