"""The dbt-duckdb warehouse: raw.* -> staging -> intermediate -> marts (see warehouse/models/)."""

from memwh.warehouse.build import WAREHOUSE_DIR, BuildResult, build

__all__ = ["WAREHOUSE_DIR", "BuildResult", "build"]
