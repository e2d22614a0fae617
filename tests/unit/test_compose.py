"""docker-compose.yml cannot start here (no Docker engine), so its structure is checked instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:[:?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_the_full_stack_is_there(compose):
    services = compose["services"]
    assert {"postgres", "minio", "minio-init", "demo-logs-api", "airflow-init"} <= set(services)
    commands = {name: s.get("command") for name, s in services.items() if name.startswith("airflow-")}
    assert {commands[f"airflow-{c}"] for c in ("api-server", "scheduler", "dag-processor", "triggerer")} == {
        "api-server", "scheduler", "dag-processor", "triggerer"
    }  # fmt: skip
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
            "postgresql+psycopg2://airflow:${POSTGRES_PASSWORD"
        )
        assert "healthcheck" in services[name]
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_airflow_image_matches_the_lock():
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{pinned}-python3.11" in dockerfile
    assert "requirements.txt" in dockerfile


def test_ports_are_bound_to_localhost_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_every_variable_is_documented_in_env_example_and_no_secret_is_literal(compose):
    text = (REPO / "docker-compose.yml").read_text()
    example = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set(VAR.findall(text))
    assert used - example == set(), f"variables used but not in .env.example: {used - example}"
    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW_CONN_APPMETRICA_DEFAULT", "AIRFLOW_CONN_LAKEHOUSE_S3", "AIRFLOW_CONN_LAKEHOUSE_BI"):
        assert "${" in env[key], f"{key} must take its secrets from .env"
    assert "${MINIO_ROOT_PASSWORD" in env["AIRFLOW_CONN_LAKEHOUSE_S3"]
    assert "${APPMETRICA_TOKEN" in env["AIRFLOW_CONN_APPMETRICA_DEFAULT"]


def test_connections_are_valid_json_once_interpolated(compose):
    import json

    env = compose["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW_CONN_APPMETRICA_DEFAULT", "AIRFLOW_CONN_LAKEHOUSE_S3", "AIRFLOW_CONN_LAKEHOUSE_BI"):
        rendered = VAR.sub("x", env[key])
        conn = json.loads(rendered)
        assert conn["conn_type"] in {"http", "aws", "postgres"}
    assert json.loads(VAR.sub("x", env["AIRFLOW_CONN_LAKEHOUSE_S3"]))["extra"]["endpoint_url"] == "http://minio:9000"


def test_bucket_is_created_and_repo_is_mounted(compose):
    services = compose["services"]
    assert "mc mb" in " ".join(services["minio-init"]["command"])
    assert services["airflow-scheduler"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert "./:/opt/lakehouse" in services["airflow-scheduler"]["volumes"]
    assert set(compose["volumes"]) >= {"postgres-data", "minio-data", "lakehouse-data"}


AIRFLOW_SERVICES = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def test_every_long_running_service_has_a_healthcheck_and_restarts(compose):
    services = compose["services"]
    for name in ("postgres", "minio", "demo-logs-api", *AIRFLOW_SERVICES):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    assert "/api/v2/" in " ".join(services["airflow-api-server"]["healthcheck"]["test"])


def test_images_are_pinned_and_airflow_services_share_the_built_image(compose):
    services = compose["services"]
    for name in ("postgres", "minio", "minio-init"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} image {image} is not pinned"
    images = {services[n]["image"] for n in (*AIRFLOW_SERVICES, "airflow-init", "demo-logs-api")}
    assert images == {"appmetrica-lakehouse-airflow:latest"}
    assert all(services[n]["build"] == "." for n in AIRFLOW_SERVICES)


def test_named_volumes_are_declared_and_data_is_shared(compose):
    services = compose["services"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} uses undeclared volume {source}"
    # The scheduler writes the lake (and its docs) where the API server's docs plugin reads them.
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert "lakehouse-data:/opt/lakehouse/data" in services[name]["volumes"], name
    assert "airflow-auth:/opt/airflow/auth" in services["airflow-api-server"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "minio-data:/data" in services["minio"]["volumes"]


def test_airflow_env_is_wired_the_same_everywhere(compose):
    services = compose["services"]
    envs = [services[n]["environment"] for n in (*AIRFLOW_SERVICES, "airflow-init")]
    shared = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET", "LAKEHOUSE_DATA_DIR",
              "AIRFLOW_CONN_APPMETRICA_DEFAULT", "AIRFLOW_CONN_LAKEHOUSE_S3",
              "AIRFLOW_CONN_LAKEHOUSE_ALERTS")  # fmt: skip
    for key in shared:
        assert len({env[key] for env in envs}) == 1, f"{key} differs between Airflow services"
    env = envs[0]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-api-server:8080/execution/"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/lakehouse/dags"
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/lakehouse/plugins"
    assert env["LAKEHOUSE_DATA_DIR"] == "/opt/lakehouse/data"
    assert env["AIRFLOW_CONN_LAKEHOUSE_ALERTS"].startswith("${LAKEHOUSE_ALERTS_CONNECTION")
    assert env["AIRFLOW__API__BASE_URL"].startswith("${AIRFLOW_BASE_URL")
    assert "http://demo-logs-api:8765" in env["AIRFLOW_CONN_APPMETRICA_DEFAULT"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "PYTHONPATH=/opt/lakehouse" in dockerfile and "LAKEHOUSE_DATA_DIR=/opt/lakehouse/data" in dockerfile


def test_init_migrates_creates_the_admin_and_hands_volumes_to_airflow(compose):
    init = compose["services"]["airflow-init"]
    script = " ".join(init["command"])
    assert "airflow db migrate" in script
    assert "simple_auth_passwords.json" in script and "AIRFLOW_ADMIN_PASSWORD" in script
    assert "chown -R 50000:0 /opt/lakehouse/data" in script and init["user"] == "0:0"
    api = compose["services"]["airflow-api-server"]["environment"]
    assert api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert api["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"].startswith("/opt/airflow/auth/")
    assert compose["services"]["airflow-scheduler"]["depends_on"]["demo-logs-api"]["condition"] == "service_healthy"
    assert compose["services"]["demo-logs-api"]["environment"]["DEMO_APPMETRICA_TOKEN"].startswith("${APPMETRICA_TOKEN")


def test_demo_api_healthcheck_passes_against_the_demo_server(compose):
    """The healthcheck gates the scheduler, so it must pass on a healthy server (which wants the token)."""
    import os
    import subprocess
    import sys

    from ingest.appmetrica.demo.server import DemoLogsApiServer

    test = compose["services"]["demo-logs-api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    with DemoLogsApiServer(token="health-token", application_id="1234567", devices=10) as server:
        code = test[3].replace("127.0.0.1:8765", server.url.removeprefix("http://"))
        for token, expected in (("health-token", 0), ("wrong-token", 1)):
            env = {**os.environ, "DEMO_APPMETRICA_TOKEN": token}
            result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False)
            assert result.returncode == expected, result.stderr


def test_the_bi_database_is_created_and_publish_bi_writes_there(compose):
    services = compose["services"]
    init = services["postgres-bi-init"]
    assert init["image"] == services["postgres"]["image"]
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert init["environment"]["PGHOST"] == "postgres" and "${POSTGRES_PASSWORD" in init["environment"]["PGPASSWORD"]
    script = " ".join(init["command"])
    assert "datname = 'bi'" in script and "create database bi" in script  # idempotent: an existing volume too
    scheduler = services["airflow-scheduler"]
    assert scheduler["depends_on"]["postgres-bi-init"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW_SERVICES:
        conn = json.loads(VAR.sub("x", services[name]["environment"]["AIRFLOW_CONN_LAKEHOUSE_BI"]))
        assert (conn["conn_type"], conn["host"], conn["schema"]) == ("postgres", "postgres", "bi")
