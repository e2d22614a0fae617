"""Kill -9 anywhere, and idempotent reruns: `lakehouse run --date D` in a subprocess of its own process group.

The demo Logs API runs in this process and a moto S3 server on loopback, passed to the run as Airflow
connections through the environment (as in test_airflow_dags_test.py). A *clean* run of the day (fresh data
folder, empty bucket) is the reference. The kill test starts from an *earlier* complete run of the same day on
different data (some events missing, as if they arrived late), then SIGKILLs the run's whole process group:

1. mid download: the demo server stalls in the middle of the events body; the kill comes once the request log
   shows that response and the bronze writer's temp file exists;
2. mid silver: failpoint ``commit@silver/tmp_event_properties``, after some silver tables' Delta commits and
   before the others (every table's day is complete in the run's scratch folder);
3. mid dbt build: once a dbt process runs and has created its first model (psutil + the streamed dbt log);
4. mid publish: failpoint ``publish.upload@dim_devices``, after two of the three gold objects are uploaded and
   before any manifest.

After every kill it checks what a reader sees: every bronze partition, every day of a silver and quarantine Delta
table, and every gold Delta table is exactly the earlier run's or the clean run's (never a mix inside a partition,
never a half file; a gold table is compared by the rows its latest version holds), and every S3 manifest names only
complete objects. After a final rerun every output equals the clean run's: bronze bytes, the rows of each day of the
silver and quarantine tables and of each gold table (a commit writes new data files, named by uuid, so their bytes
are not compared), S3 keys and ETags; manifests and reports differ only in run ids, times and gold table versions;
no ``.tmp-*`` entry is left under the data folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psutil
import pyarrow.parquet as pq
import pytest
from lake_tables import day_digests

from ingest.appmetrica.demo.server import DemoLogsApiServer

pytestmark = pytest.mark.e2e

DAY = "2026-11-01"
TOKEN = "kill9-token"
APP_ID = "1234567"
DEVICES = 80
PREFIX = "gold"
LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")
RUN_TIMEOUT = 600
# Keys of manifests and reports that name a run or a time: the only ones allowed to differ between runs.
VOLATILE = frozenset({"run_id", "written_at", "published_at", "extracted_at", "elapsed_seconds"})
# The run summary also records what the run did (e.g. which lookback days it rebuilt), which depends on the state
# it started from; these are its fields that describe the outputs, compared between runs.
SUMMARY_OUTPUT_FIELDS = (
    "status",
    "failed_step",
    "bronze_rows",
    "silver_rows",
    "quarantined_rows",
    "quarantined_by_reason",
    "duplicates_removed",
    "schema_drift",
    "gold",
    "published",
)


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="kill9-key", aws_secret_access_key="kill9-secret")  # fmt: skip


@pytest.fixture(scope="module")
def api():
    """The day's export (the same bytes for every run of this module)."""
    with DemoLogsApiServer(token=TOKEN, application_id=APP_ID, devices=DEVICES) as server:
        yield server


@dataclass
class Lake:
    """One data folder and one bucket, and how to run the CLI against them."""

    root: Path
    bucket: str
    s3_url: str
    airflow_home: Path
    logs: list[Path] = field(default_factory=list)

    def env(self, api_url: str, failpoint: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LAKEHOUSE_"))}
        env |= {
            "AIRFLOW_HOME": str(self.airflow_home),
            "LAKEHOUSE_DATA_DIR": str(self.root),
            "LAKEHOUSE_S3_BUCKET": self.bucket,
            "LAKEHOUSE_S3_PREFIX": PREFIX,
            "LAKEHOUSE_LOOKBACK_DAYS": "1",  # one late-data day besides DAY: kills land in either
            "AIRFLOW_CONN_APPMETRICA_DEFAULT": json.dumps(
                {"conn_type": "http", "host": api_url, "password": TOKEN,
                 "extra": {"application_id": APP_ID, "poll_interval_seconds": 0.05, "poll_timeout_seconds": 60}}
            ),
            "AIRFLOW_CONN_LAKEHOUSE_S3": json.dumps(
                {"conn_type": "aws", "login": "kill9-key", "password": "kill9-secret",
                 "extra": {"endpoint_url": self.s3_url, "region_name": "us-east-1"}}
            ),
        }  # fmt: skip
        if failpoint:
            env["LAKEHOUSE_FAILPOINT"] = failpoint
        return env


def _new_lake(base: Path, name: str, s3: Any, s3_url: str) -> Lake:
    bucket = f"kill9-{name}"
    s3.create_bucket(Bucket=bucket)
    (base / name).mkdir(parents=True)
    return Lake(root=(base / name / "data"), bucket=bucket, s3_url=s3_url, airflow_home=base / name / "airflow")


@dataclass
class Run:
    returncode: int
    output: str
    killed_children: list[int]


def _is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _dbt_processes(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            cmd = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if "dbt" in cmd and "build" in cmd:
            found.append(child)
    return found


def run_day(
    lake: Lake, api_url: str, *, failpoint: str | None = None, kill_when: Callable[[int, Path], bool] | None = None
) -> Run:
    """Run ``lakehouse run --date DAY``; SIGKILL its process group as soon as ``kill_when(pid, log)`` holds."""
    log = lake.root.parent / f"run-{len(lake.logs) + 1}.log"
    lake.logs.append(log)
    killed: list[int] = []
    with open(log, "wb") as out:
        proc = subprocess.Popen([LAKEHOUSE, "run", "--date", DAY], env=lake.env(api_url, failpoint), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while proc.poll() is None:
                if kill_when is not None and kill_when(proc.pid, log):
                    killed = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                assert time.monotonic() < deadline, f"the run did not finish in {RUN_TIMEOUT} s"
                time.sleep(0.05)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    deadline = time.monotonic() + 30
    while not all(_is_gone(pid) for pid in killed):
        assert time.monotonic() < deadline, "a killed child process is still running"
        time.sleep(0.05)
    return Run(proc.returncode, log.read_text(errors="replace"), killed)


# --------------------------------------------------------------------------------------------
# What a run leaves, and what a reader sees


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _normalize(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _normalize(v, subs) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalize(v, subs) for v in value]
    if isinstance(value, str):
        for old, new in subs.items():
            value = value.replace(old, new)
    return value


def _hidden(rel: str) -> bool:
    return any(part.startswith(".tmp-") for part in rel.split("/"))


def _gold_table(root: Path, rel: str) -> bool:
    """Whether ``rel`` is inside a gold Delta table (its data files and log: compared by contents instead)."""
    parts = rel.split("/")
    return parts[0] == "gold" and len(parts) > 2 and (root / "gold" / parts[1] / "_delta_log").is_dir()


def _table_sha(table_dir: Path) -> str:
    """A hash of the rows the table's latest version holds, in the mart's key order."""
    from lakehouse.delta import DeltaLocation, commit_metadata, read_table, table_schema

    loc = DeltaLocation(f"gold/{table_dir.name}", str(table_dir))
    rows = read_table(loc, schema=table_schema(loc))
    key = commit_metadata(loc)["lakehouse.order_by"].split(",")
    return _sha(repr(rows.sort_by([(c, "ascending") for c in key]).to_pylist()).encode())


def temp_entries(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.name.startswith(".tmp-"))


def snapshot(lake: Lake, s3: Any) -> dict[str, dict[str, Any]]:
    """Every visible output: data files by sha256 (the silver and quarantine Delta tables: each day's rows, as
    ``<layer>/<table>/date=D``, by sha256), JSON documents and S3 manifests normalized, S3 ETags."""
    subs = {str(lake.root): "<data>", lake.bucket: "<bucket>"}
    files: dict[str, str] = day_digests(lake.root)
    docs: dict[str, Any] = {}
    for path in sorted(lake.root.rglob("*")):
        rel = path.relative_to(lake.root).as_posix()
        if not path.is_file() or _hidden(rel) or rel.split("/")[0] in {"warehouse", "docs", "silver", "quarantine"}:
            continue
        if _gold_table(lake.root, rel):
            continue
        if path.suffix == ".json":
            doc = _normalize(json.loads(path.read_bytes()), subs)  # a half JSON file fails here
            if rel.startswith("reports/appmetrica_lakehouse/") and path.name == "summary.json":
                doc = {k: doc.get(k) for k in SUMMARY_OUTPUT_FIELDS}
                # full or incremental depends on the warehouse the run found, the table versions on the runs
                # before it; what gold holds must not
                doc["gold"] = {k: v for k, v in (doc["gold"] or {}).items() if k != "mode"}
                for mart in (doc["gold"].get("marts") or {}).values():
                    mart.pop("version", None)
            docs[rel] = doc
        elif rel.startswith("reports/") and path.suffix == ".html":
            files[rel] = "a run report page"  # drawn from the summaries above; it shows run ids and times
        else:
            files[rel] = _sha(path.read_bytes())
    for table_dir in sorted((lake.root / "gold").glob("*/_delta_log")):
        files[f"gold/{table_dir.parent.name}/<table contents>"] = _table_sha(table_dir.parent)
    objects: dict[str, str] = {}
    manifests: dict[str, Any] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket):
        for obj in page.get("Contents", []):
            if "/_manifests/" in obj["Key"]:
                body = s3.get_object(Bucket=lake.bucket, Key=obj["Key"])["Body"].read()
                manifests[obj["Key"]] = _normalize(json.loads(body), subs)
            else:
                objects[obj["Key"]] = obj["ETag"]
    return {"files": files, "docs": docs, "objects": objects, "manifests": manifests}


def partition_of(rel: str) -> str:
    """The unit replaced as a whole: bronze/appmetrica/<r>/date=D, silver|quarantine/<t>/date=D, gold/<mart>."""
    parts = rel.split("/")
    depth = {"bronze": 4, "silver": 3, "quarantine": 3, "gold": 2}.get(parts[0], len(parts))
    return "/".join(parts[:depth])


def partitions(files: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for rel, sha in files.items():
        if rel.split("/")[0] in {"bronze", "silver", "quarantine", "gold"}:
            out.setdefault(partition_of(rel), {})[rel] = sha
    return out


def check_reader_view(lake: Lake, s3: Any, earlier: dict[str, Any], clean: dict[str, Any]) -> dict[str, str]:
    """Right after a kill: each partition is wholly the earlier run's or the clean run's, bronze manifests
    describe the bytes beside them, and every S3 manifest names complete objects. Returns partition -> "old",
    "new" or "same" (the two runs agree on it)."""
    now = snapshot(lake, s3)
    seen = partitions(now["files"])
    before, after = partitions(earlier["files"]), partitions(clean["files"])
    which = {}
    for unit in sorted(set(seen) | set(before) | set(after)):
        current = seen.get(unit, {})
        assert current in (before.get(unit, {}), after.get(unit, {})), f"{unit} is neither the old nor the new one"
        if before.get(unit, {}) == after.get(unit, {}):
            which[unit] = "same"
        else:
            which[unit] = "old" if current == before.get(unit, {}) else "new"
    for unit in (u for u in seen if u.startswith("bronze/")):
        manifest = json.loads((lake.root / unit / "_manifest.json").read_bytes())
        for part in manifest["parts"]:
            assert now["files"][f"{unit}/{part['file']}"] == part["sha256"], f"{unit}: manifest and data disagree"
    for rel in now["files"]:
        if rel.endswith(".parquet"):
            pq.read_metadata(lake.root / rel)  # complete Parquet (footer present)
    for key in now["manifests"]:
        manifest = json.loads(s3.get_object(Bucket=lake.bucket, Key=key)["Body"].read())
        for obj in manifest["objects"]:
            body = s3.get_object(Bucket=lake.bucket, Key=obj["key"])["Body"].read()
            assert len(body) == obj["bytes"] and _sha(body) == obj["sha256"], f"{key} names a bad {obj['key']}"
    for key in now["objects"]:  # objects no manifest names yet are complete too (the name carries their hash)
        body = s3.get_object(Bucket=lake.bucket, Key=key)["Body"].read()
        name = key.rsplit("/", 1)[1]
        assert name.rsplit(".", 1)[0].endswith(f"-{_sha(body)[:16]}"), key
    return which


def assert_same_outputs(got: dict[str, Any], want: dict[str, Any]) -> None:
    for kind in ("files", "objects", "docs", "manifests"):
        missing, extra = sorted(set(want[kind]) - set(got[kind])), sorted(set(got[kind]) - set(want[kind]))
        assert not missing and not extra, f"{kind}: missing {missing[:5]}, extra {extra[:5]}"
        differ = sorted(k for k in want[kind] if got[kind][k] != want[kind][k])
        assert not differ, f"{kind} differ: {differ[:5]}"


@pytest.fixture(scope="module")
def clean_lake(tmp_path_factory: pytest.TempPathFactory, s3: Any, s3_endpoint: str, api: DemoLogsApiServer) -> Lake:
    """The reference: one run of the day on a fresh data folder and an empty bucket."""
    lake = _new_lake(tmp_path_factory.mktemp("kill9"), "clean", s3, s3_endpoint)
    run = run_day(lake, api.url)
    assert run.returncode == 0, run.output[-4000:]
    return lake


@pytest.fixture(scope="module")
def clean(clean_lake: Lake, s3: Any) -> dict[str, Any]:
    """What the reference run left: files, S3 objects, docs and manifests."""
    return snapshot(clean_lake, s3)


def _late_events(fields: list[str], rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    """The earlier export: the last 30 events not there yet, and 20 events from another city."""
    for row in rows[:20]:
        row["city"] = "Earlierville"
    return fields, rows[:-30]


# --------------------------------------------------------------------------------------------
# Tests


def test_kill9_at_each_step_then_rerun_matches_a_clean_run(
    tmp_path: Path, s3: Any, s3_endpoint: str, api: DemoLogsApiServer, clean: dict[str, Any]
) -> None:
    lake = _new_lake(tmp_path, "killed", s3, s3_endpoint)
    with DemoLogsApiServer(token=TOKEN, application_id=APP_ID, devices=DEVICES) as earlier_api:
        earlier_api.tamper("events", rows=_late_events)
        run = run_day(lake, earlier_api.url)
    assert run.returncode == 0, run.output[-4000:]
    earlier = snapshot(lake, s3)
    changed = {p for p, files in partitions(clean["files"]).items() if partitions(earlier["files"]).get(p) != files}
    assert {f"silver/events_part/date={DAY}", "gold/fct_device_daily"} <= changed

    # 1. Mid download: the events body is half sent, then the server goes silent.
    api.inject(stall=120)
    served = len(api.requests)
    bronze = lake.root / "bronze" / "appmetrica"

    def body_in_flight(pid: int, log: Path) -> bool:
        answered = any(r[1].endswith("/events.csv") and r[3] == 200 for r in api.requests[served:])
        return answered and any(p.is_file() for p in bronze.glob(".tmp-events@*/.tmp-events.part-*"))

    run = run_day(lake, api.url, kill_when=body_in_flight)
    api.clear_faults()
    assert run.returncode == -signal.SIGKILL, run.output[-4000:]
    assert any(p.startswith("bronze/appmetrica/.tmp-events@") for p in temp_entries(lake.root))
    view = check_reader_view(lake, s3, earlier, clean)
    assert set(view.values()) == {"old", "same"}, view

    # 2. Mid silver: killed between two silver tables' commits.
    run = run_day(lake, api.url, failpoint="commit@silver/tmp_event_properties")
    assert run.returncode == -signal.SIGKILL, run.output[-4000:]
    died = re.search(
        r"failpoint commit reached at silver/tmp_event_properties export_date=(\d{4}-\d\d-\d\d)", run.output
    )
    assert died, run.output[-4000:]
    view = check_reader_view(lake, s3, earlier, clean)
    assert {view[u] for u in view if u.startswith("bronze/")} == {"new", "same"}, view
    silver = {u: w for u, w in view.items() if u.startswith("silver/")}
    assert silver[f"silver/tmp_event_properties/date={died.group(1)}"] == "old"  # the commit the run died before
    assert "new" in silver.values(), "some silver tables were committed before the kill"
    assert any(p.startswith(".tmp-silver@date=") for p in temp_entries(lake.root)), "the day's scratch is left"

    # 3. Mid dbt build: dbt has created its first model.
    def dbt_building(pid: int, log: Path) -> bool:
        return bool(_dbt_processes(pid)) and " OK created " in log.read_text(errors="replace")

    run = run_day(lake, api.url, kill_when=dbt_building)
    assert run.returncode == -signal.SIGKILL, run.output[-4000:]
    assert run.killed_children, "the dbt process was running when the group was killed"
    view = check_reader_view(lake, s3, earlier, clean)
    assert {view[u] for u in view if u.startswith(("silver/", "quarantine/"))} == {"new", "same"}, view
    gold_view = {view[u] for u in view if u.startswith("gold/")}
    # no gold file replaced: each is the old one (or equal in both runs, e.g. a state fitted on unchanged days)
    assert "old" in gold_view and gold_view <= {"old", "same"}, view

    # 4. Mid publish: two of three objects uploaded, no manifest written yet.
    run = run_day(lake, api.url, failpoint="publish.upload@dim_devices")
    assert run.returncode == -signal.SIGKILL, run.output[-4000:]
    view = check_reader_view(lake, s3, earlier, clean)
    assert set(view.values()) == {"new", "same"}, view
    now = snapshot(lake, s3)
    assert now["manifests"] == earlier["manifests"], "latest.json and the date manifest are still the earlier ones"
    assert set(earlier["objects"]) < set(now["objects"]), "new objects uploaded beside the earlier ones"

    # The rerun completes: every output is the clean run's, and nothing temporary is left.
    run = run_day(lake, api.url)
    assert run.returncode == 0, run.output[-4000:]
    assert_same_outputs(snapshot(lake, s3), clean)
    assert temp_entries(lake.root) == []


def test_the_same_day_twice_gives_identical_outputs(
    s3: Any, api: DemoLogsApiServer, clean_lake: Lake, clean: dict[str, Any]
) -> None:
    """A rerun in place: the same bronze and gold files, silver and quarantine rows, S3 keys and ETags as the first
    run; manifests and reports differ only in run ids and times. (That a run from another starting point ends in
    the same outputs is the kill test's last step.)"""
    second = run_day(clean_lake, api.url)
    assert second.returncode == 0, second.output[-4000:]
    assert re.search(r"(\d+) of \1 object\(s\) were already published with the same bytes", second.output)
    assert_same_outputs(snapshot(clean_lake, s3), clean)
    assert temp_entries(clean_lake.root) == []
