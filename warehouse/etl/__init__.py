"""Incremental, exactly-once load of the operational source into the star schema."""

from warehouse.etl.pipeline import EtlResult, Progress, TableStats, run_etl

__all__ = ["EtlResult", "Progress", "TableStats", "run_etl"]
