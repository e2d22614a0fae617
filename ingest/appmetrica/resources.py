"""The Logs API resources this project exports, with the fields requested for each.

The field lists are the bronze contract: the client asks for exactly these, the demo server
serves exactly these (in this order), and the silver jobs read them by name.
"""

from __future__ import annotations

from dataclasses import dataclass

_DEVICE_FIELDS = (
    "appmetrica_device_id",
    "city",
    "country_iso_code",
    "connection_type",
    "device_ipv6",
    "device_locale",
    "device_manufacturer",
    "device_model",
    "device_type",
    "google_aid",
    "ios_ifa",
    "ios_ifv",
    "mcc",
    "mnc",
    "operator_name",
    "original_device_model",
    "os_name",
    "os_version",
    "windows_aid",
)


@dataclass(frozen=True)
class Resource:
    """One Logs API export resource.

    ``date_field`` is the ``*_datetime`` field that places a row in the application's local day.
    ``takes_dates`` is False for resources the API exports without a date window.
    """

    name: str
    fields: tuple[str, ...]
    date_field: str | None
    takes_dates: bool = True


EVENTS = Resource(
    name="events",
    fields=(
        "event_name",
        "event_json",
        "event_datetime",
        "event_timestamp",
        "event_receive_datetime",
        "event_receive_timestamp",
        "session_id",
        "installation_id",
        "profile_id",
        *_DEVICE_FIELDS,
        "app_build_number",
        "app_package_name",
        "app_version_name",
        "appmetrica_sdk_version",
        "application_id",
    ),
    date_field="event_datetime",
)

SESSIONS_STARTS = Resource(
    name="sessions_starts",
    fields=(
        "session_start_datetime",
        "session_start_timestamp",
        "session_start_receive_datetime",
        "session_start_receive_timestamp",
        "session_id",
        "installation_id",
        "profile_id",
        *_DEVICE_FIELDS,
        "app_build_number",
        "app_package_name",
        "app_version_name",
        "appmetrica_sdk_version",
        "application_id",
    ),
    date_field="session_start_datetime",
)

INSTALLATIONS = Resource(
    name="installations",
    fields=(
        "install_datetime",
        "install_timestamp",
        "install_receive_datetime",
        "install_receive_timestamp",
        "is_reinstallation",
        "is_reattribution",
        "match_type",
        "tracker_name",
        "publisher_name",
        "installation_id",
        "profile_id",
        *_DEVICE_FIELDS,
        "app_package_name",
        "app_version_name",
        "application_id",
    ),
    date_field="install_datetime",
)

PROFILES_V2 = Resource(
    name="profiles_v2",
    fields=(
        "profile_id",
        "appmetrica_device_id",
        "appmetrica_gender",
        "appmetrica_birth_date",
        "appmetrica_name",
        "appmetrica_notifications_enabled",
        "appmetrica_first_session_date",
        "appmetrica_last_start_date",
        "appmetrica_sessions",
        "appmetrica_crashes",
        "appmetrica_errors",
        "city",
        "country_iso_code",
        "device_manufacturer",
        "device_model",
        "os_name",
        "os_version",
        "app_version_name",
        "custom_attributes",
    ),
    date_field=None,
)

RESOURCES: dict[str, Resource] = {r.name: r for r in (EVENTS, SESSIONS_STARTS, INSTALLATIONS, PROFILES_V2)}


def get_resource(name: str) -> Resource:
    """Return the resource called ``name``; the error lists the supported ones."""
    try:
        return RESOURCES[name]
    except KeyError:
        raise ValueError(f"unknown AppMetrica resource {name!r}; supported: {', '.join(RESOURCES)}") from None
