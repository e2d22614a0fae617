"""Alerts (lakehouse/alerts.py) against a local HTTP receiver: what is sent, when, and that no secret leaks."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import airflow  # noqa: F401 - configures logging before caplog (see helper_common)
import pytest

from lakehouse.alerts import AlertChannel, AlertError, LakehouseNotifier, build_message, deliver
from lakehouse.settings import ConfigError

TOKEN = "123456:bot-token-NEVER-SHOWN"


@pytest.fixture
def receiver(http_receiver):
    return http_receiver


def context(exception: BaseException | None = None, date: str | None = "2026-11-01") -> dict:
    ti = SimpleNamespace(
        dag_id="appmetrica_lakehouse",
        task_id="extract",
        map_index=2,
        run_id="manual__2026-11-02T10:00:00+00:00",
        try_number=3,
        log_url="http://localhost:8080/dags/appmetrica_lakehouse/runs/manual__x/tasks/extract/mapped/2?try_number=3",
        task=SimpleNamespace(retries=2),
    )
    return {"ti": ti, "params": {"date": date}, "data_interval_start": None, "exception": exception}


def telegram(receiver, **extra) -> AlertChannel:
    return AlertChannel.from_connection(receiver.url, TOKEN, {"channel": "telegram", "chat_id": "-10042", **extra})


def test_failure_message_names_dag_task_day_and_log_link():
    message = build_message(context(RuntimeError("HTTP 403 from the Logs API")), "failure")
    text = message["text"]
    assert text.startswith("FAILED: appmetrica_lakehouse.extract[2] (try 3 of 3)")
    assert "day: 2026-11-01" in text and "run: manual__2026-11-02T10:00:00+00:00" in text
    assert "error: RuntimeError: HTTP 403 from the Logs API" in text
    assert "log: http://localhost:8080/dags/appmetrica_lakehouse/runs/" in text
    assert (message["dag_id"], message["task_id"], message["day"]) == ("appmetrica_lakehouse", "extract", "2026-11-01")


def test_day_comes_from_the_data_interval_without_a_param(monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_APP_TIMEZONE", "Europe/Moscow")
    ctx = context(date=None)
    ctx["data_interval_start"] = dt.datetime(2026, 10, 30, 21, 0, tzinfo=dt.UTC)  # 31 Oct 00:00 in Moscow
    assert build_message(ctx, "failure")["day"] == "2026-10-31"


def test_telegram_failure_sends_one_message_to_the_bot_api(receiver):
    assert deliver(context(RuntimeError("boom")), "failure", telegram(receiver)) is True
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent["path"] == f"/bot{TOKEN}/sendMessage"
    assert sent["json"]["chat_id"] == "-10042" and "appmetrica_lakehouse.extract" in sent["json"]["text"]


def test_webhook_gets_the_text_and_the_fields_and_a_bearer_secret(receiver):
    channel = AlertChannel.from_connection(f"{receiver.url}/hooks/abc", "hook-secret", None)
    deliver(context(RuntimeError("boom")), "failure", channel)
    (sent,) = receiver.requests
    assert sent["path"] == "/hooks/abc" and sent["headers"]["Authorization"] == "Bearer hook-secret"
    body = sent["json"]
    assert body["event"] == "failure" and body["task_id"] == "extract" and body["map_index"] == 2
    assert body["log_url"].startswith("http://localhost:8080/dags/appmetrica_lakehouse/") and "boom" in body["text"]


def test_success_sends_nothing_unless_enabled(receiver, caplog):
    caplog.set_level(logging.INFO, logger="lakehouse.alerts")
    assert deliver(context(), "success", telegram(receiver)) is False
    assert receiver.requests == [] and "success alerts are off" in caplog.text
    assert deliver(context(), "success", telegram(receiver, notify_on_success=True)) is True
    assert len(receiver.requests) == 1 and receiver.requests[0]["json"]["text"].startswith("SUCCEEDED: ")


def test_no_connection_sends_nothing_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="lakehouse.alerts")
    assert deliver(context(), "failure", None) is False
    assert "no lakehouse_alerts connection" in caplog.text


@pytest.mark.parametrize("status", [401, 500])
def test_a_rejected_alert_raises_without_the_token(receiver, status, caplog):
    receiver.status = status
    receiver.body = json.dumps({"ok": False, "description": f"bad token {TOKEN}"}).encode()
    with pytest.raises(AlertError) as info:
        deliver(context(), "failure", telegram(receiver))
    assert f"HTTP {status}" in str(info.value)
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


def test_an_unreachable_channel_raises_without_the_url_or_token(caplog):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = f"http://127.0.0.1:{port}/hooks/T000/SECRETPATH"
    for channel in (
        AlertChannel.from_connection(hook, None, {"timeout_seconds": 2}),
        AlertChannel.from_connection(f"http://127.0.0.1:{port}", TOKEN, {"channel": "telegram", "chat_id": "1"}),
    ):
        with pytest.raises(AlertError) as info:
            deliver(context(), "failure", channel)
        assert "ConnectionError" in str(info.value)
        for secret in (TOKEN, "SECRETPATH"):
            assert secret not in str(info.value) and secret not in caplog.text
        assert info.value.__cause__ is None and info.value.__suppress_context__
    assert TOKEN not in repr(channel)


@pytest.mark.parametrize(
    ("host", "password", "extra", "message"),
    [
        (None, None, None, "host must be the webhook URL"),
        ("https://api.telegram.org", None, {"channel": "telegram", "chat_id": "1"}, "bot token"),
        (None, TOKEN, {"channel": "telegram"}, "chat_id"),
        ("https://x", None, {"channel": "sms"}, "'webhook' or 'telegram'"),
        ("https://x", None, "{not json", "not valid JSON"),
        ("https://x", None, {"timeout_seconds": "soon"}, "timeout_seconds"),
    ],
)
def test_bad_connections_are_named(host, password, extra, message):
    with pytest.raises(ConfigError, match=message) as info:
        AlertChannel.from_connection(host, password, extra)
    assert TOKEN not in str(info.value)


def test_telegram_defaults_to_the_public_api():
    channel = AlertChannel.from_connection("", TOKEN, {"channel": "telegram", "chat_id": "1"})
    assert channel.url == "https://api.telegram.org" and channel.notify_on_success is False


def test_notifier_reads_the_connection_from_the_environment(receiver, monkeypatch):
    conn = {"conn_type": "http", "host": receiver.url, "password": TOKEN,
            "extra": {"channel": "telegram", "chat_id": "7"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_LAKEHOUSE_ALERTS", json.dumps(conn))
    LakehouseNotifier("failure").notify(context(RuntimeError("boom")))
    assert [r["json"]["chat_id"] for r in receiver.requests] == ["7"]
    LakehouseNotifier("success").notify(context())
    assert len(receiver.requests) == 1
    with pytest.raises(ValueError, match="event"):
        LakehouseNotifier("retry")
