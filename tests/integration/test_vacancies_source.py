"""The worked example end to end: demo vacancies API -> bronze -> silver -> dbt mart, checked against an oracle.

The oracle is computed in plain Python from the demo server's own data (every version of every
vacancy), not from anything the pipeline wrote. Also: every pagination style and auth mode pulls
the same records over real HTTP, Retry-After is honoured, and the vacancies build neither needs
the AppMetrica silver nor touches the AppMetrica gold (and vice versa for the `gold` selector).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# Imported at collection: importing Airflow reconfigures logging, which would drop caplog's handler mid-test.
import airflow  # noqa: F401
import duckdb
import pytest
from gold_tables import gold_location, order_key, scan_gold

from ingest.sources.config import get_source, parse_declarations
from ingest.sources.connection import Credentials
from ingest.sources.demo.vacancies import VacanciesApiServer
from ingest.sources.rest_api import rest_api_source
from lakehouse.settings import Layout
from transforms.gold import build_gold, dbt_paths
from transforms.sources import build_source_silver

pytestmark = pytest.mark.integration

TOKEN = "vacancies-test-token"
FIRST = dt.date(2026, 10, 26)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(5)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api():
    with VacanciesApiServer(TOKEN, start=FIRST, days=6, per_day=120, seed=7, anomaly_rate=0.01) as server:
        yield server


def _valid(version: dict) -> bool:
    """What silver accepts, restated: an id, a real published_at, an integer (or absent) salary lower bound."""
    salary = version.get("salary") or {}
    if "id" not in version or not isinstance(salary.get("from", 0) or 0, int):
        return False
    try:
        dt.datetime.fromisoformat(version["published_at"])
    except ValueError:
        return False
    return True


def oracle(versions: list[dict], first: dt.date, last: dt.date) -> dict[tuple[str, str], dict]:
    """Expected vacancy_skills_daily rows by (published_date, skill), from the loaded windows only."""
    start = dt.datetime.combine(first, dt.time(0), tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    latest: dict[str, dict] = {}
    for v in versions:
        updated = dt.datetime.fromisoformat(v["updated_at"])
        if not start <= updated < end or not _valid(v):
            continue
        if v["id"] not in latest or updated > dt.datetime.fromisoformat(latest[v["id"]]["updated_at"]):
            latest[v["id"]] = v
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for v in latest.values():
        day = dt.datetime.fromisoformat(v["published_at"]).astimezone(dt.UTC).date().isoformat()
        skills = {" ".join(s["name"].split()).lower() for s in v["key_skills"]} - {""}
        for skill in skills:
            groups[(day, skill)].append(v)
    expected = {}
    for key, vacancies in groups.items():
        by_currency: dict[str, list[dict]] = defaultdict(list)
        for v in vacancies:
            s = v["salary"]
            if s and s["currency"] and (s["from"] is not None or s["to"] is not None):
                by_currency[s["currency"]].append(s)
        salaries = []
        for currency in sorted(by_currency):
            entries = by_currency[currency]
            froms = [s["from"] for s in entries if s["from"] is not None]
            tos = [s["to"] for s in entries if s["to"] is not None]
            salaries.append({"currency": currency, "vacancies": len(entries),
                             "median_salary_from": statistics.median(froms) if froms else None,
                             "median_salary_to": statistics.median(tos) if tos else None})  # fmt: skip
        expected[key] = {"vacancies_count": len(vacancies), "vacancies_with_salary": sum(len(e) for e in
                         by_currency.values()), "salary_by_currency": salaries}  # fmt: skip
    return expected


@pytest.fixture(scope="module")
def built(api, tmp_path_factory):
    """Five days pulled, silver built, then the source's dbt selector; AppMetrica gold planted beforehand."""
    root = tmp_path_factory.mktemp("lake")
    layout = Layout(root)
    planted = layout.gold / "fct_device_daily" / "fct_device_daily.parquet"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"appmetrica gold, not to be touched")
    source = rest_api_source("vacancies")
    credentials = Credentials(api.url, TOKEN)
    api.inject(429, "slow down", headers={"Retry-After": "1"})
    api.inject(503, "maintenance")
    manifests, silvers = [], []
    env = {"LAKEHOUSE_QUARANTINE_MAX_RATE": "0.1", "LAKEHOUSE_DATA_DIR": str(root)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for day in DAYS:
            manifests.append(source.extract("vacancies", day, layout=layout, credentials=credentials))
            silvers.append(build_source_silver(source.spec, day, layout))
        gold = build_gold(layout, selector="source_vacancies", workspace="vacancies")
    return {"layout": layout, "manifests": manifests, "silvers": silvers, "gold": gold, "planted": planted}


def test_the_mart_matches_the_oracle(api, built):
    layout = built["layout"]
    assert set(built["gold"]["marts"]) == {"vacancy_skills_daily"}
    assert set(built["gold"]["data_tests"]) == {"pass"} and built["gold"]["unit_tests"] == {"pass": 1}
    rows = scan_gold(layout.root, "vacancy_skills_daily").fetchall()  # the source's mart is a Delta table too
    got = {}
    for published_date, skill, count, with_salary, salaries in rows:
        got[(published_date.isoformat(), skill)] = {"vacancies_count": count, "vacancies_with_salary": with_salary,
                                                    "salary_by_currency": salaries}  # fmt: skip
    expected = oracle(api.versions, DAYS[0], DAYS[-1])
    assert len(expected) > 50
    assert got == expected
    # the commit records the declared key, the order readers and the S3 publish sort by
    assert order_key(gold_location(layout.root, "vacancy_skills_daily")) == ["published_date", "skill"]


def test_bronze_silver_and_quarantine_account_for_every_record(api, built):
    layout = built["layout"]
    for day, manifest, silver in zip(DAYS, built["manifests"], built["silvers"], strict=True):
        start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        in_window = [v for v in api.versions if start <= dt.datetime.fromisoformat(v["updated_at"]) <
                     start + dt.timedelta(days=1)]  # fmt: skip
        stats = silver["resources"]["vacancies"]
        assert manifest["records"] == stats["records_read"] == len(in_window)
        assert manifest["pages_count"] == len(in_window) // 100 + 1
        assert stats["rows_good"] + stats["quarantined"] == stats["records_read"]
        assert stats["rows"] == stats["rows_good"] - stats["duplicates"]
        assert stats["quarantined"] == sum(not _valid(v) for v in in_window)
    quarantined = (
        duckdb.connect()
        .execute(
            "select reason, count(*) from read_parquet(?) group by 1",
            [f"{layout.root}/quarantine/vacancies__vacancies/*/*.parquet"],
        )
        .fetchall()
    )
    assert quarantined and {r for r, _ in quarantined} <= {"invalid_integer", "invalid_datetime",
                                                           "missing_required_field"}  # fmt: skip
    # the injected 429 (Retry-After: 1) and 503 were retried, then every request succeeded
    assert api.statuses()[:3] == [429, 503, 200]
    assert built["manifests"][0]["waited_seconds"] >= 1.0


def test_every_vacancies_model_is_described_with_exactly_its_columns(built):
    paths = dbt_paths(built["layout"], "vacancies")
    manifest = json.loads((paths["target"] / "manifest.json").read_text())
    models = {n["name"]: n for n in manifest["nodes"].values()
              if n["resource_type"] == "model" and "source_vacancies" in n["tags"]}  # fmt: skip
    assert set(models) == {"stg_vacancies__vacancies", "int_vacancies__latest", "int_vacancy_skills",
                           "vacancy_skills_daily"}  # fmt: skip
    with duckdb.connect(str(paths["database"]), read_only=True) as con:
        for name, node in models.items():
            assert node["description"].startswith("One row per"), name
            assert all(c["description"] for c in node["columns"].values()), name
            columns = con.sql(f"select * from {node['relation_name']} limit 0").columns  # noqa: S608
            assert columns == list(node["columns"]), name


def test_the_vacancies_build_left_appmetrica_alone(built):
    layout = built["layout"]
    assert built["planted"].read_bytes() == b"appmetrica gold, not to be touched"
    assert not (layout.root / "silver" / "events_part").exists()  # built without any AppMetrica silver
    assert (layout.warehouse / "vacancies.duckdb").exists() and not (layout.warehouse / "lakehouse.duckdb").exists()
    assert sorted(p.name for p in layout.gold.iterdir()) == ["fct_device_daily", "vacancy_skills_daily"]


def test_the_appmetrica_gold_selector_selects_no_vacancies_node(tmp_path):
    env = {**os.environ, "LAKEHOUSE_DATA_DIR": str(tmp_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    out = {}
    for selector in ("gold", "source_vacancies"):
        proc = subprocess.run(
            [str(dbt), "--no-use-colors", "ls", "--selector", selector, "--output", "name", "-q", "--project-dir",
             str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"), "--target-path",
             str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
            env=env, capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        out[selector] = set(proc.stdout.split())
    assert "fct_device_daily" in out["gold"] and "stg_appmetrica__events" in out["gold"]
    assert not {n for n in out["gold"] if "vacanc" in n}
    assert {"stg_vacancies__vacancies", "int_vacancies__latest", "vacancy_skills_daily"} <= out["source_vacancies"]
    assert not {n for n in out["source_vacancies"] if "appmetrica" in n or "device" in n}


VARIANTS = {
    "offset + X-Api-Key header": (
        {"path": "/v1/vacancies/by-offset", "pagination": {"type": "offset", "limit": 15, "total_path": "total"}},
        {"type": "header", "name": "X-Api-Key"},
    ),
    "cursor + api_key query": (
        {"path": "/v1/vacancies/by-cursor", "records_path": "data",
         "pagination": {"type": "cursor", "cursor_path": "next_cursor", "size_param": "limit", "page_size": 15}},
        {"type": "query", "name": "api_key"},
    ),
    "next link in body + basic": (
        {"path": "/v1/vacancies/by-link", "pagination": {"type": "next_link", "next_path": "links.next"}},
        {"type": "basic"},
    ),
    "Link header + bearer": (
        {"path": "/v1/vacancies/by-link", "pagination": {"type": "next_link"}},
        {"type": "bearer"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_pagination_style_and_auth_mode_pulls_the_same_rows(api, tmp_path, variant, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs request URLs (with a query key) at DEBUG
    resource_changes, auth = VARIANTS[variant]
    base = get_source("vacancies")
    doc = {"sources": {"jobs": {"kind": "rest_api", "connection": "jobs_api", "auth": auth, "resources": {}}}}
    with open(REPO / "ingest/sources/sources.yml", encoding="utf-8") as fh:
        import yaml

        declared = yaml.safe_load(fh)["sources"]["vacancies"]["resources"]["vacancies"]
    resource = copy.deepcopy(declared)
    resource.update(resource_changes)
    resource.pop("params", None)
    doc["sources"]["jobs"]["resources"]["vacancies"] = resource
    variant_spec = parse_declarations(doc)["jobs"]
    day = DAYS[1]
    reference = Layout(tmp_path / "reference")
    rest_api_source(base).extract("vacancies", day, layout=reference, credentials=Credentials(api.url, TOKEN))
    layout = Layout(tmp_path / "variant")
    manifest = rest_api_source(variant_spec).extract(
        "vacancies", day, layout=layout, credentials=Credentials(api.url, TOKEN, login="robot")
    )
    assert manifest["pages_count"] > 1
    assert TOKEN not in json.dumps(manifest)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_QUARANTINE_MAX_RATE", "0.2")
        build_source_silver(base, day, reference)
        build_source_silver(variant_spec, day, layout)
    con = duckdb.connect()
    query = "select * exclude (bronze_file, bronze_row) from read_parquet(?) order by all"
    want = con.execute(query, [f"{reference.root}/silver/vacancies__vacancies/*/*.parquet"]).fetchall()
    have = con.execute(query, [f"{layout.root}/silver/jobs__vacancies/*/*.parquet"]).fetchall()
    assert have == want and len(want) > 20
    assert "GET /v1/vacancies" in caplog.text  # urllib3's request lines were logged...
    assert TOKEN not in caplog.text  # ...without the key
