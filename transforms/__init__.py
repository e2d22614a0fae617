"""Transforms: bronze -> silver (pandas/pyarrow), silver -> gold (dbt), gold -> publish."""
