"""Incremental, exactly-once load of the operational source into the star schema."""

from warehouse.etl.derived import DerivedTables, DerivedWrite, build_derived
from warehouse.etl.pipeline import EtlResult, Progress, TableStats, run_etl
from warehouse.etl.touched import Touched

__all__ = [
    "DerivedTables",
    "DerivedWrite",
    "EtlResult",
    "Progress",
    "TableStats",
    "Touched",
    "build_derived",
    "run_etl",
]
