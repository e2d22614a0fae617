"""
### source_<name>: one Airflow DAG per declared source

Generated from `ingest/sources/sources.yml` (or `$LAKEHOUSE_SOURCES_FILE`): REST APIs pulled day by
day into bronze -> silver -> their dbt marts, CSV drops picked up from
`$LAKEHOUSE_DATA_DIR/inbox/<source>/`. Adding a source adds its DAG; this file never changes.
The DAG shapes are in `lakehouse/source_dags.py`.
"""

from __future__ import annotations

from lakehouse.source_dags import build_source_dags

for _dag_id, _dag in build_source_dags().items():
    globals()[_dag_id] = _dag
