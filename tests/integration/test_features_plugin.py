"""The feature lookup plugin inside the real Airflow API server app, behind Airflow's authentication.

Runs in a child process (its own AIRFLOW_HOME, SimpleAuthManager, this repo's plugins folder):
``airflow.api_fastapi.app.create_app()`` mounts the plugin's app at /lakehouse-features; requests
without a token get 401, with a bad token 403, with a JWT minted by the auth manager 200.
"""

from __future__ import annotations

import decimal
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from feature_lake import LATE_DEVICE, FeatureLake

from lakehouse.features import LatestFeatureStore
from lakehouse.features.online import json_value
from lakehouse.settings import REPO_ROOT

pytestmark = pytest.mark.integration

SCRIPT = """
import json, sys
from airflow import settings
from airflow.models.revoked_token import RevokedToken

# token validation checks the revoked-token table: create just that table in the temporary SQLite DB
RevokedToken.__table__.create(settings.engine, checkfirst=True)
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

app = create_app()
token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
client = TestClient(app)
url = "/lakehouse-features/" + sys.argv[1]
bearer = {"Authorization": "Bearer " + token}
ok = client.get(url, headers=bearer)
print("RESULT " + json.dumps({
    "mounted": [r.path for r in app.routes if getattr(r, "path", "").startswith("/lakehouse")],
    "anonymous": client.get(url).status_code,
    "bad_token": client.get(url, headers={"Authorization": "Bearer not.a.jwt"}).status_code,
    "authenticated": ok.status_code,
    "body": ok.json(),
    "cookie": client.get(url, cookies={"_token": token}).status_code,
    "unknown": client.get("/lakehouse-features/1", headers=bearer).status_code,
    "invalid": client.get("/lakehouse-features/abc", headers=bearer).status_code,
}))
"""


def test_plugin_serves_latest_features_behind_airflow_auth(feature_lake: FeatureLake, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        LAKEHOUSE_DATA_DIR=str(feature_lake.root),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO_ROOT / "plugins"),
        AIRFLOW__CORE__AUTH_MANAGER="airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        AIRFLOW__API_AUTH__JWT_SECRET="a-test-only-jwt-secret-" + "x" * 48,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"),
    )
    (tmp_path / "dags").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(LATE_DEVICE)], env=env, capture_output=True, text=True, timeout=300
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert "/lakehouse-features" in result["mounted"]  # beside the docs plugin's /lakehouse-docs
    assert (result["anonymous"], result["bad_token"]) == (401, 403)
    assert (result["authenticated"], result["cookie"]) == (200, 200)
    assert (result["unknown"], result["invalid"]) == (404, 422)
    expected = LatestFeatureStore(feature_lake.gold).lookup(LATE_DEVICE)
    assert expected is not None and isinstance(expected["features"]["revenue_28d"], decimal.Decimal)
    assert result["body"] == expected | {"features": {k: json_value(v) for k, v in expected["features"].items()}}
