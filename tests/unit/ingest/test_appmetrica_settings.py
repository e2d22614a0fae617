"""AppMetricaSettings: parsing the appmetrica_default connection and validating it."""

from __future__ import annotations

import json

import pytest

from ingest.appmetrica.settings import ENV_CONNECTION, AppMetricaSettings
from lakehouse.settings import ConfigError

TOKEN = "y0_AgAAAA-secret-token"


def make(**kw):
    base = {"base_url": "http://127.0.0.1:8765", "token": TOKEN, "application_id": "1234567"}
    base.update(kw)
    return AppMetricaSettings(**base)


def test_defaults_and_repr_hides_token():
    s = make()
    assert s.poll_interval_seconds == 5
    assert s.poll_timeout_seconds == 600
    assert s.max_parts == 64
    assert (s.connect_timeout_seconds, s.read_timeout_seconds) == (30, 300)
    assert s.retries == 5
    assert (s.backoff_base_seconds, s.backoff_cap_seconds) == (1, 60)
    assert s.quota_wait_seconds == 60
    assert s.format == "csv"
    assert TOKEN not in repr(s)
    assert TOKEN not in str(s.public_dict())
    assert "token" not in s.public_dict()


def test_base_url_trailing_slash_is_removed():
    assert make(base_url="https://api.appmetrica.yandex.ru/").base_url == "https://api.appmetrica.yandex.ru"


@pytest.mark.parametrize("url", ["api.appmetrica.yandex.ru", "ftp://host", "http://", "", "http://h:99999"])
def test_base_url_needs_http_scheme_and_host(url):
    with pytest.raises(ConfigError, match="base_url"):
        make(base_url=url)


def test_base_url_with_credentials_is_rejected_without_echoing_them():
    with pytest.raises(ConfigError) as err:
        make(base_url=f"http://user:{TOKEN}@127.0.0.1:8765")
    assert TOKEN not in str(err.value)


@pytest.mark.parametrize("app_id", ["12a4", "-5", "1 2", "app"])
def test_application_id_must_be_digits_and_is_named(app_id):
    with pytest.raises(ConfigError, match="application_id") as err:
        make(application_id=app_id)
    assert repr(app_id) in str(err.value)


def test_numeric_application_id_is_normalised_to_text():
    assert make(application_id=1234567).application_id == "1234567"


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"poll_interval_seconds": -1}, "poll_interval_seconds"),
        ({"max_parts": 0}, "max_parts"),
        ({"retries": -1}, "retries"),
        ({"format": "xml"}, "format"),
        ({"quota_wait_seconds": float("nan")}, "quota_wait_seconds"),
    ],
)
def test_bad_numbers_and_format_are_named(kw, name):
    with pytest.raises(ConfigError, match=name):
        make(**kw)


def test_from_connection_with_dict_and_text_extra():
    extra = {"application_id": "1234567", "poll_interval_seconds": 2, "poll_timeout_seconds": "120", "max_parts": 8}
    s = AppMetricaSettings.from_connection("http://127.0.0.1:8765/", TOKEN, extra)
    assert (s.base_url, s.application_id, s.poll_interval_seconds, s.poll_timeout_seconds, s.max_parts) == (
        "http://127.0.0.1:8765",
        "1234567",
        2.0,
        120.0,
        8,
    )
    assert AppMetricaSettings.from_connection("http://h", TOKEN, json.dumps(extra)) == AppMetricaSettings(
        base_url="http://h", token=TOKEN, application_id="1234567", poll_interval_seconds=2,
        poll_timeout_seconds=120, max_parts=8,
    )  # fmt: skip


def test_from_connection_accepts_airflow_bare_host_with_schema_and_port():
    s = AppMetricaSettings.from_connection("127.0.0.1", TOKEN, {"application_id": "1"}, schema="http", port=8765)
    assert s.base_url == "http://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("host", "password", "extra", "missing"),
    [
        (None, TOKEN, {"application_id": "1"}, "host"),
        ("", TOKEN, {"application_id": "1"}, "host"),
        ("http://h", None, {"application_id": "1"}, "password"),
        ("http://h", " ", {"application_id": "1"}, "password"),
        ("http://h", TOKEN, {}, "application_id"),
        ("http://h", TOKEN, None, "application_id"),
        ("http://h", TOKEN, "{not json", "extra"),
        ("http://h", TOKEN, {"application_id": "1", "retries": "many"}, "retries"),
    ],
)
def test_from_connection_names_what_is_missing_never_the_token(host, password, extra, missing):
    with pytest.raises(ConfigError, match=missing) as err:
        AppMetricaSettings.from_connection(host, password, extra)
    assert TOKEN not in str(err.value)


def test_from_env_json_form():
    conn = {
        "conn_type": "http",
        "host": "http://127.0.0.1:8765",
        "password": TOKEN,
        "extra": {"application_id": "1234567", "poll_interval_seconds": 1, "poll_timeout_seconds": 60},
    }
    s = AppMetricaSettings.from_env({ENV_CONNECTION: json.dumps(conn)})
    assert s.base_url == "http://127.0.0.1:8765"
    assert s.token == TOKEN
    assert (s.application_id, s.poll_interval_seconds, s.poll_timeout_seconds) == ("1234567", 1.0, 60.0)


def test_from_env_json_with_extra_as_text():
    conn = {"conn_type": "http", "host": "https://api.appmetrica.yandex.ru", "password": TOKEN}
    conn["extra"] = json.dumps({"application_id": "42"})
    assert AppMetricaSettings.from_env({ENV_CONNECTION: json.dumps(conn)}).application_id == "42"


def test_from_env_uri_form():
    env = {ENV_CONNECTION: f"http://:{TOKEN}@127.0.0.1:8765?application_id=1234567&poll_interval_seconds=3"}
    s = AppMetricaSettings.from_env(env)
    assert (s.base_url, s.token, s.application_id, s.poll_interval_seconds) == (
        "http://127.0.0.1:8765",
        TOKEN,
        "1234567",
        3.0,
    )


def test_from_env_uri_with_airflow_extra_blob():
    env = {ENV_CONNECTION: f"https://:{TOKEN}@api.appmetrica.yandex.ru?__extra__=%7B%22application_id%22%3A+%227%22%7D"}
    s = AppMetricaSettings.from_env(env)
    assert (s.base_url, s.application_id) == ("https://api.appmetrica.yandex.ru", "7")


def test_from_env_unset_names_the_variable():
    with pytest.raises(ConfigError, match=ENV_CONNECTION):
        AppMetricaSettings.from_env({})


@pytest.mark.parametrize(
    "raw",
    [
        '{"host": "http://h", "password": "' + TOKEN + '", ',
        json.dumps({"host": "http://h", "password": TOKEN}),
        json.dumps([1, 2]),
        f"ftp://:{TOKEN}@host",
        f"http://:{TOKEN}@host",
    ],
)
def test_from_env_invalid_names_the_variable_not_the_token(raw):
    with pytest.raises(ConfigError, match=ENV_CONNECTION) as err:
        AppMetricaSettings.from_env({ENV_CONNECTION: raw})
    assert TOKEN not in str(err.value)


def test_from_env_reads_process_environment(monkeypatch):
    monkeypatch.setenv(
        ENV_CONNECTION,
        json.dumps({"conn_type": "http", "host": "http://x:1", "password": TOKEN, "extra": {"application_id": "9"}}),
    )
    assert AppMetricaSettings.from_env().application_id == "9"


def test_profile_attributes_from_the_connection_extra():
    extra = {"application_id": "1", "profile_attributes": ["plan", "level"]}
    assert AppMetricaSettings.from_connection("http://h", TOKEN, extra).profile_attributes == ("plan", "level")
    assert AppMetricaSettings.from_connection("http://h", TOKEN, {"application_id": "1"}).profile_attributes == ()
    none = {"application_id": "1", "profile_attributes": None}
    assert AppMetricaSettings.from_connection("http://h", TOKEN, none).profile_attributes == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("plan", r"extra.profile_attributes must be a list of attribute names"),
        ({"plan": 1}, r"extra.profile_attributes must be a list of attribute names"),
        (["plan", 3], r"extra.profile_attributes\[1\] = 3 is not a plain attribute name"),
        (["plan,level"], r"extra.profile_attributes\[0\] = 'plan,level' is not a plain attribute name"),
        (["2fa"], r"extra.profile_attributes\[0\] = '2fa' is not a plain attribute name"),
        (["plan", "plan"], r"extra.profile_attributes\[1\] = 'plan' is listed twice"),
        (["city"], r"extra.profile_attributes\[0\] = 'city' is a documented profiles_v2 field"),
        (["android_id"], r"'android_id' is a documented profiles_v2 field"),
        (["bronze_row"], r"'bronze_row' is a column name silver adds"),
    ],
)
def test_bad_profile_attributes_are_named(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        AppMetricaSettings.from_connection("http://h", TOKEN, {"application_id": "1", "profile_attributes": value})
    assert "appmetrica_default" in str(info.value)


@pytest.mark.parametrize("host", ["https://api.appmetrica.yandex.ru", "https://api.appmetrica.yandex.com/"])
def test_both_documented_hosts_are_base_urls(host):
    assert make(base_url=host).base_url == host.rstrip("/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://api.appmetrica.yandex.ru", "served at https://api.appmetrica.yandex.ru with no path"),
        ("https://api.appmetrica.yandex.com/logs/v1", "served at https://api.appmetrica.yandex.com with no path"),
        ("https://appmetrica.yandex.ru", "is not a Logs API host"),
        ("ftp://api.appmetrica.yandex.ru", "must start with http:// or https://"),
    ],
)
def test_wrong_base_urls_say_what_to_configure(url, message):
    with pytest.raises(ConfigError, match=message) as info:
        make(base_url=url)
    text = str(info.value)
    assert "the host field of the connection appmetrica_default" in text
    assert "https://api.appmetrica.yandex.ru or https://api.appmetrica.yandex.com" in text or "no path" in text
