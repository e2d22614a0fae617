"""Backfill through the CLI: three dates in flight at once give exactly what running them one by one gives.

The runs overlap on purpose: each re-exports its lookback day, which is another run's date, and all
of them share the warehouse, the Data Docs site and the publish folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lake_tables import table_digests

from ingest.appmetrica.demo.server import DemoLogsApiServer
from lakehouse import pipeline
from lakehouse.settings import ConfigError

pytestmark = pytest.mark.integration

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
FIRST, LAST = "2026-11-02", "2026-11-04"  # each run's lookback day is the run before it
TOKEN = "backfill-token"


def _backfill(data: Path, url: str, parallel: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "LAKEHOUSE_"))}
    env |= {
        "LAKEHOUSE_DATA_DIR": str(data),
        "LAKEHOUSE_LOOKBACK_DAYS": "1",
        "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
            {"conn_type": "http", "host": url, "password": TOKEN,
             "extra": {"application_id": "31337", "poll_interval_seconds": 0.05}}
        ),
    }  # fmt: skip
    cmd = [LAKEHOUSE, "backfill", "--from", FIRST, "--to", LAST, "--parallel", str(parallel)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, check=False)


def _data_files(root: Path) -> dict[str, str]:
    """sha256 of every data file a reader uses (manifests and reports carry run times, so they are left out), and
    of the rows of every silver, quarantine and gold table (Delta names its data files by uuid)."""
    out = table_digests(root, ("silver", "quarantine", "gold"))
    delta_tables = {p.parent for p in root.glob("gold/*/_delta_log")}
    for folder in ("bronze", "gold", "published"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix != ".json" and not delta_tables.intersection(path.parents):
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_three_dates_in_parallel_equal_one_by_one(tmp_path):
    with DemoLogsApiServer(token=TOKEN, application_id="31337", devices=40, polls_before_ready=0) as api:
        parallel = _backfill(tmp_path / "parallel", api.url, 3)
        serial = _backfill(tmp_path / "serial", api.url, 1)
    for proc in (parallel, serial):
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        results = json.loads(proc.stdout)  # stdout holds the results alone (logs go to stderr)
        assert [r["date"] for r in results] == ["2026-11-02", "2026-11-03", "2026-11-04"]
        assert {r["status"] for r in results} == {"success"}
    output = parallel.stdout + parallel.stderr
    assert "database is locked" not in output.lower() and "could not set lock" not in output.lower()
    got, want = _data_files(tmp_path / "parallel"), _data_files(tmp_path / "serial")
    assert any(k.startswith("gold/") and digest != "-" for k, digest in want.items())
    assert any(k.startswith("published/") for k in want)
    assert got == want
    for day in ("2026-11-02", "2026-11-04"):
        report = json.loads(
            (tmp_path / "parallel/reports/appmetrica_lakehouse" / f"date={day}/summary.json").read_text()
        )
        assert report["status"] == "success"


@pytest.mark.parametrize(
    ("first", "last", "parallel", "needle"),
    [
        ("2026-11-05", "2026-11-01", 2, "reversed"),
        ("2026-11-01", "2026/11/05", 2, "--to"),
        ("2025-01-01", "2026-11-05", 2, "more than 366"),
        ("2026-11-01", "2026-11-02", 0, "--parallel"),
    ],
)
def test_bad_backfill_arguments_are_named(first, last, parallel, needle):
    with pytest.raises(ConfigError, match=needle):
        pipeline.backfill(first, last, parallel=parallel)
