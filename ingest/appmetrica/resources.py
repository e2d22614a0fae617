"""The Logs API resources this project exports, with the fields requested for each.

The field lists are the bronze contract: the client asks for exactly these (plus, for profiles_v2, the custom
profile attributes configured in the connection: :func:`requested_fields`), and the silver jobs read them by name.
Every field here is documented for its resource in the field catalogue (``fields.yml``, :mod:`.catalogue`); a unit
test keeps it so. The demo server validates requests against the catalogue, never against these lists.
"""

from __future__ import annotations

from dataclasses import dataclass

# The device fields events and sessions_starts document (both also document device_ipv6 and original_device_model).
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
# installations documents neither device_ipv6 (it has install_ipv6 and click_ipv6, requested instead) nor
# original_device_model.
_INSTALL_DEVICE_FIELDS = tuple(f for f in _DEVICE_FIELDS if f not in ("device_ipv6", "original_device_model"))


@dataclass(frozen=True)
class Resource:
    """One Logs API export resource.

    ``date_field`` is the ``*_datetime`` field that places a row in the application's local day.
    ``takes_dates`` is False for resources the API exports without a date window.
    ``takes_custom_attributes`` is True where the docs let any custom attribute be requested by its own name
    (profiles_v2): the configured names are requested after ``fields``.
    """

    name: str
    fields: tuple[str, ...]
    date_field: str | None
    takes_dates: bool = True
    takes_custom_attributes: bool = False


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
        "profile_id",
        *_DEVICE_FIELDS,
        "app_build_number",
        "app_package_name",
        "app_version_name",
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
        "install_ipv6",
        "click_ipv6",
        *_INSTALL_DEVICE_FIELDS,
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
        "appmetrica_sdk_version",
        "city",
        "country_iso_code",
        "device_manufacturer",
        "device_model",
        "os_name",
        "os_version",
        "app_version_name",
    ),
    date_field=None,
    takes_custom_attributes=True,
)

# The monetisation and stability resources. Each list is the documented one in the docs' order
# (mobile-api/logs/ref/<resource>). Left out: fields only the endpoints page or a newer live page
# lists, whose presence the reference page does not confirm (revenue_events: is_revenue_autocollected,
# revenue_inapp_type, revenue_event_type; crashes: crash_json; errors: error_json).
REVENUE_EVENTS = Resource(
    name="revenue_events",
    fields=(
        "revenue_quantity",
        "revenue_price",
        "revenue_currency",
        "revenue_product_id",
        "revenue_order_id",
        "revenue_order_id_source",
        "is_revenue_verified",
        "event_datetime",
        "event_name",
        "event_receive_datetime",
        "event_receive_timestamp",
        "event_timestamp",
        "session_id",
        "installation_id",
        "android_id",
        "appmetrica_device_id",
        "appmetrica_sdk_version",
        "city",
        "connection_type",
        "country_iso_code",
        "device_ipv6",
        "device_locale",
        "device_manufacturer",
        "device_model",
        "google_aid",
        "ios_ifa",
        "ios_ifv",
        "mcc",
        "mnc",
        "operator_name",
        "original_device_model",
        "os_version",
        "profile_id",
        "windows_aid",
        "app_build_number",
        "app_package_name",
        "app_version_name",
    ),
    date_field="event_datetime",
)

AD_REVENUE_EVENTS = Resource(
    name="ad_revenue_events",
    fields=(
        "ad_revenue_datetime",
        "ad_revenue_timestamp",
        "ad_revenue_receive_datetime",
        "ad_revenue_receive_timestamp",
        "ad_revenue",
        "ad_revenue_currency",
        "ad_revenue_type",
        "ad_revenue_data_source",
        "ad_revenue_network",
        "ad_revenue_placement_id",
        "ad_revenue_placement_name",
        "ad_revenue_unit_id",
        "ad_revenue_unit_name",
        "ad_revenue_precision",
        "ad_revenue_payload",
        "session_id",
        "installation_id",
        "android_id",
        "appmetrica_device_id",
        "appmetrica_sdk_version",
        "city",
        "connection_type",
        "country_iso_code",
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
        "os_version",
        "profile_id",
        "windows_aid",
        "app_build_number",
        "app_package_name",
        "app_version_name",
    ),
    date_field="ad_revenue_datetime",
)

# Crashes and errors carry the same device and app fields after their own ones.
_CRASH_ERROR_DEVICE_FIELDS = (
    "appmetrica_device_id",
    "city",
    "connection_type",
    "country_iso_code",
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
    "os_name",
    "os_version",
    "profile_id",
    "windows_aid",
    "app_package_name",
    "app_version_name",
    "application_id",
)

CRASHES = Resource(
    name="crashes",
    fields=(
        "crash",
        "crash_datetime",
        "crash_group_id",
        "crash_id",
        "crash_name",
        "crash_receive_datetime",
        "crash_receive_timestamp",
        "crash_timestamp",
        *_CRASH_ERROR_DEVICE_FIELDS,
    ),
    date_field="crash_datetime",
)

ERRORS = Resource(
    name="errors",
    fields=(
        "error",
        "error_datetime",
        "error_id",
        "error_name",
        "error_receive_datetime",
        "error_receive_timestamp",
        "error_timestamp",
        *_CRASH_ERROR_DEVICE_FIELDS,
    ),
    date_field="error_datetime",
)

RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (EVENTS, SESSIONS_STARTS, INSTALLATIONS, PROFILES_V2, REVENUE_EVENTS, AD_REVENUE_EVENTS, CRASHES, ERRORS)
}


def requested_fields(resource: Resource, profile_attributes: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The ``fields`` of a request for ``resource``: its documented fields, then the configured custom profile
    attributes where the resource takes them (each by its own name, as the docs ask)."""
    return resource.fields + (tuple(profile_attributes) if resource.takes_custom_attributes else ())


def get_resource(name: str) -> Resource:
    """Return the resource called ``name``; the error lists the supported ones."""
    try:
        return RESOURCES[name]
    except KeyError:
        raise ValueError(f"unknown AppMetrica resource {name!r}; supported: {', '.join(RESOURCES)}") from None
