"""Run alerts: an Airflow notifier that posts to a webhook or a Telegram chat.

The channel is the Airflow connection ``lakehouse_alerts`` (type http), for example as
``AIRFLOW_CONN_LAKEHOUSE_ALERTS``:

* generic webhook: ``{"conn_type": "http", "host": "https://hooks.example.com/T0/B0/xyz"}``
  (the full URL; ``password``, when set, is sent as ``Authorization: Bearer ...``). The body is
  JSON: ``{"text": <message>, "event", "dag_id", "task_id", "map_index", "run_id", "day",
  "try_number", "log_url", "error"}``, which Slack-style incoming webhooks accept as is.
* Telegram: ``{"conn_type": "http", "host": "https://api.telegram.org", "password": "<bot token>",
  "extra": {"channel": "telegram", "chat_id": "-1001234567890"}}``; the message goes to
  ``<host>/bot<token>/sendMessage``.

``extra.notify_on_success`` (default false) also announces every successful run;
``extra.timeout_seconds`` (default 10) bounds each request. Without the connection nothing is
sent and the task log says so.

A failing task (after its last retry) sends exactly one message naming the DAG, the task, the
day the run processes and the link to the task's log. The webhook URL and the token are secrets:
they never appear in a log line or an exception text of this module (errors name the channel,
not its address), and they are registered with Airflow's secrets masker as well.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow.sdk import BaseNotifier

from lakehouse.settings import ConfigError, check_connection_env

log = logging.getLogger(__name__)

ALERTS_CONN_ID = "lakehouse_alerts"
TELEGRAM_API = "https://api.telegram.org"
Event = Literal["failure", "success"]
MAX_ERROR_CHARS = 500


class AlertError(RuntimeError):
    """Sending an alert failed; the message never contains the channel's URL or token."""


@dataclass(frozen=True)
class AlertChannel:
    """Where alerts go: a webhook URL or a Telegram bot + chat, and when to send."""

    kind: Literal["webhook", "telegram"]
    url: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    chat_id: str | None = None
    notify_on_success: bool = False
    timeout_seconds: float = 10.0

    @classmethod
    def from_connection(cls, host: str | None, password: str | None, extra: dict[str, Any] | str | None,
                        conn_id: str = ALERTS_CONN_ID) -> AlertChannel:  # fmt: skip
        """Build the channel from the fields of the ``lakehouse_alerts`` connection (see the module doc)."""
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except ValueError:
                raise ConfigError(f"connection {conn_id}: extra is not valid JSON") from None
        extra = dict(extra or {})
        kind = str(extra.get("channel") or "webhook").lower()
        host = (host or "").strip()
        token = (password or "").strip() or None
        success = extra.get("notify_on_success", False)
        if isinstance(success, str):
            success = success.strip().lower() in {"1", "true", "yes", "on"}
        try:
            timeout = float(extra.get("timeout_seconds", 10))
        except (TypeError, ValueError):
            raise ConfigError(f"connection {conn_id}: extra.timeout_seconds must be a number") from None
        if kind == "telegram":
            chat_id = str(extra.get("chat_id") or "").strip()
            if not token:
                raise ConfigError(f"connection {conn_id}: password (the Telegram bot token) is missing")
            if not chat_id:
                raise ConfigError(f"connection {conn_id}: extra.chat_id (the Telegram chat) is missing")
            base = host or TELEGRAM_API
            if "://" not in base:
                raise ConfigError(f"connection {conn_id}: host must be a URL with its scheme (https://...)")
            return cls("telegram", base.rstrip("/"), token, chat_id, bool(success), timeout)
        if kind != "webhook":
            raise ConfigError(f"connection {conn_id}: extra.channel must be 'webhook' or 'telegram', got {kind!r}")
        if "://" not in host:
            raise ConfigError(f"connection {conn_id}: host must be the webhook URL with its scheme (https://...)")
        return cls("webhook", host, token, None, bool(success), timeout)

    def secrets(self) -> list[str]:
        """The values that must never be shown: the token and the webhook URL (it often is the secret)."""
        values = [self.token] if self.token else []
        if self.kind == "webhook":
            values.append(self.url)
        return values

    def redact(self, text: str) -> str:
        """``text`` with every secret of this channel replaced by ``***``."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def send(self, message: dict[str, Any]) -> None:
        """Post ``message`` (with its ``text``) to the channel; raises :class:`AlertError` on any failure."""
        import requests

        if self.kind == "telegram":
            url = f"{self.url}/bot{self.token}/sendMessage"
            body: dict[str, Any] = {"chat_id": self.chat_id, "text": message["text"], "disable_web_page_preview": True}
            headers = {}
        else:
            url, body = self.url, message
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        where = f"{self.kind} channel of connection {ALERTS_CONN_ID}"
        try:
            response = requests.post(url, json=body, headers=headers, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            # requests puts the URL (with a Telegram token in its path) into its messages: name the type only.
            raise AlertError(f"alert not delivered to the {where}: {type(exc).__name__}") from None
        if response.status_code >= 300:
            detail = self.redact(response.text[:200])
            raise AlertError(f"alert not delivered to the {where}: HTTP {response.status_code} {detail}")
        if self.kind == "telegram":
            try:
                ok = response.json().get("ok", False)
            except ValueError:
                ok = False
            if not ok:
                raise AlertError(f"alert not delivered to the {where}: Telegram did not answer ok")


def _first_line(error: BaseException | str | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    text = text.strip().splitlines()[0] if text.strip() else text
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def run_day(context: dict[str, Any]) -> str | None:
    """The day a run processes, as the DAG resolves it: the ``date`` Param, else its data interval's day."""
    from lakehouse.pipeline import resolve_day

    params = context.get("params") or {}
    try:
        return resolve_day(params.get("date"), context.get("data_interval_start")).isoformat()
    except (ConfigError, ValueError, AttributeError):
        value = params.get("date")
        return str(value) if value else None


def build_message(context: dict[str, Any], event: Event) -> dict[str, Any]:
    """The alert for a task's ``event`` from its Airflow context: a text plus the same facts as fields."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    map_index = map_index if isinstance(map_index, int) and map_index >= 0 else None
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(getattr(ti, "task", None), "retries", None)
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # the URL needs Airflow's config; an alert without it beats no alert
        log_url = None
    day = run_day(context)
    error = _first_line(context.get("exception")) if event == "failure" else None
    task = f"{task_id}[{map_index}]" if map_index is not None else task_id
    if event == "failure":
        tries = f" (try {try_number} of {max_tries + 1})" if try_number and max_tries is not None else ""
        lines = [f"FAILED: {dag_id}.{task}{tries}"]
    else:
        lines = [f"SUCCEEDED: {dag_id} run complete ({task} done)"]
    lines += [f"day: {day or 'unknown'}", f"run: {run_id}"]
    if error:
        lines.append(f"error: {error}")
    lines.append(f"log: {log_url or 'unavailable'}")
    return {
        "text": "\n".join(lines),
        "event": event,
        "dag_id": dag_id,
        "task_id": task_id,
        "map_index": map_index,
        "run_id": run_id,
        "day": day,
        "try_number": try_number,
        "log_url": log_url,
        "error": error,
    }


def load_channel(conn_id: str = ALERTS_CONN_ID) -> AlertChannel | None:
    """The channel of the Airflow connection ``conn_id``, or None when it does not exist."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    check_connection_env(conn_id)
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    channel = AlertChannel.from_connection(conn.host, conn.password, conn.extra_dejson, conn_id)
    try:
        from airflow.sdk.log import mask_secret

        for secret in channel.secrets():
            mask_secret(secret)
    except ImportError:  # pragma: no cover - older SDKs mask connection passwords on their own
        pass
    return channel


def deliver(context: dict[str, Any], event: Event, channel: AlertChannel | None) -> bool:
    """Send the ``event`` alert for ``context`` through ``channel`` if it is due; True when one was sent."""
    if channel is None:
        log.info("no %s connection: %s alert not sent", ALERTS_CONN_ID, event)
        return False
    if event == "success" and not channel.notify_on_success:
        log.info("success alerts are off (%s extra.notify_on_success is false): nothing sent", ALERTS_CONN_ID)
        return False
    message = build_message(context, event)
    channel.send(message)
    log.info("%s alert sent to the %s channel of %s", event, channel.kind, ALERTS_CONN_ID)
    return True


class LakehouseNotifier(BaseNotifier):
    """Airflow notifier for ``on_failure_callback`` / ``on_success_callback`` of the lake's tasks.

    ``LakehouseNotifier("failure")`` in ``default_args`` alerts once per failed task (callbacks run
    after the last retry only); ``LakehouseNotifier("success")`` on the DAG's last task announces a
    successful run when the connection enables it.
    """

    def __init__(self, event: Event = "failure", conn_id: str = ALERTS_CONN_ID) -> None:
        super().__init__()
        if event not in ("failure", "success"):
            raise ValueError(f"event must be 'failure' or 'success', got {event!r}")
        self.event: Event = event
        self.conn_id = conn_id

    def notify(self, context: Any) -> None:
        """Send the alert (Airflow calls this with the task's context)."""
        try:
            deliver(context, self.event, load_channel(self.conn_id))
        except ConfigError as exc:
            raise AlertError(f"{self.event} alert not sent: {exc}") from None


def report_fact(message: dict[str, Any], what: str, summary: str, conn_id: str = ALERTS_CONN_ID) -> bool:
    """Send ``message`` (a fact to report, not a failure) on the alerts channel, when there is one.

    A channel that is missing, malformed or unreachable is logged (``what`` names the alert,
    ``summary`` says what it was about) and the run goes on. Returns whether a message was delivered.
    """
    try:
        channel = load_channel(conn_id)
        if channel is None:
            log.info("no %s connection: the %s is only reported (%s)", conn_id, what, summary)
            return False
        channel.send(message)
    except (ConfigError, AlertError) as exc:
        log.warning("%s alert not sent: %s", what, exc)
        return False
    return True


def alert_empty_days(dag_id: str, day: str, empty: dict[str, list[str]], conn_id: str = ALERTS_CONN_ID) -> bool:
    """Announce days whose export was empty (``{day: [tables]}``) on the alerts channel, when there is one.

    An empty day is a fact to report, not a failure (see :func:`report_fact`). Returns whether a message was delivered.
    """
    days = "; ".join(f"{when}: {', '.join(tables)}" for when, tables in sorted(empty.items()))
    message = {"text": f"EMPTY EXPORT: {dag_id} run for {day}\nno rows in {days}\n(reported, not failed)",
               "event": "empty", "dag_id": dag_id, "day": day, "empty": empty}  # fmt: skip
    return report_fact(message, "empty export", days, conn_id)


def alert_feature_drift(dag_id: str, day: str, lines: list[str], conn_id: str = ALERTS_CONN_ID) -> bool:
    """Announce features whose PSI or null rate passed its threshold (``lines``, one per feature and metric).

    Like an empty export, drift is reported, not failed (see :func:`report_fact`). Returns whether a message was
    delivered.
    """
    text = "\n".join([f"FEATURE DRIFT: {dag_id} run for {day}", *lines, "(reported, not failed)"])
    message = {"text": text, "event": "feature_drift", "dag_id": dag_id, "day": day, "breaches": lines}
    return report_fact(message, "feature drift", "; ".join(lines), conn_id)
