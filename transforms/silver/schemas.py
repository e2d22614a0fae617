"""Silver schemas, as code: the column names, Arrow types and keys of the seven silver tables.

Conventions shared by every table:
- ``export_date`` is the local day whose export the row came from; it is also the partition
  folder (``date=YYYY-MM-DD``), stored in the file too so a single file is self-describing.
- ``bronze_file`` and ``bronze_row`` (1-based record number, header = 0) trace every row to the
  bronze record it was parsed from; a derived row (a device, session or location of the day)
  names the record its values were taken from, as each table's grain says.
- ``*_datetime`` columns are naive timestamps in the application's time zone (as exported);
  ``*_timestamp`` columns are Unix seconds.
- Device ids are UInt64 (they exceed the Int64 range in real exports).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("s")

# How each bronze field is typed on its way to silver. Fields not listed are text.
FIELD_TYPES: dict[str, pa.DataType] = {
    "appmetrica_device_id": pa.uint64(),
    "session_id": pa.uint64(),
    "application_id": pa.int64(),
    "app_build_number": pa.int64(),
    "mcc": pa.int32(),
    "mnc": pa.int32(),
    "event_datetime": TS,
    "event_receive_datetime": TS,
    "event_timestamp": pa.int64(),
    "event_receive_timestamp": pa.int64(),
    "session_start_datetime": TS,
    "session_start_receive_datetime": TS,
    "session_start_timestamp": pa.int64(),
    "session_start_receive_timestamp": pa.int64(),
    "install_datetime": TS,
    "install_receive_datetime": TS,
    "install_timestamp": pa.int64(),
    "install_receive_timestamp": pa.int64(),
    "is_reinstallation": pa.bool_(),
    "is_reattribution": pa.bool_(),
    "appmetrica_birth_date": pa.date32(),
    "appmetrica_first_session_date": pa.date32(),
    "appmetrica_last_start_date": pa.date32(),
    "appmetrica_notifications_enabled": pa.bool_(),
    "appmetrica_sessions": pa.int64(),
    "appmetrica_crashes": pa.int64(),
    "appmetrica_errors": pa.int64(),
}

# Fields whose value must be present for a row to be usable at all.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "events": ("appmetrica_device_id", "event_datetime", "event_name"),
    "sessions_starts": ("appmetrica_device_id", "session_start_datetime", "session_id"),
    "installations": ("appmetrica_device_id", "install_datetime"),
    "profiles_v2": ("profile_id",),
}

# Closed sets of values (as AppMetrica exports them); any other value quarantines the row as
# ``unknown_enum_value``. The GX suites check the same sets on silver (a test keeps them equal).
ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "os_name": ("android", "ios", "windows"),
    "device_type": ("phone", "tablet", "unknown"),
    "connection_type": ("cell", "unknown", "wifi"),
}

# Fields holding a JSON object serialized as text.
JSON_FIELDS = ("event_json", "custom_attributes")

LINEAGE = [
    pa.field("export_date", pa.date32(), nullable=False),
    pa.field("bronze_file", pa.string(), nullable=False),
    pa.field("bronze_row", pa.int64(), nullable=False),
]

_DEVICE = [
    ("city", pa.string()),
    ("country_iso_code", pa.string()),
    ("connection_type", pa.string()),
    ("device_ipv6", pa.string()),
    ("device_locale", pa.string()),
    ("device_manufacturer", pa.string()),
    ("device_model", pa.string()),
    ("device_type", pa.string()),
    ("google_aid", pa.string()),
    ("ios_ifa", pa.string()),
    ("ios_ifv", pa.string()),
    ("mcc", pa.int32()),
    ("mnc", pa.int32()),
    ("operator_name", pa.string()),
    ("original_device_model", pa.string()),
    ("os_name", pa.string()),
    ("os_version", pa.string()),
    ("windows_aid", pa.string()),
]


@dataclass(frozen=True)
class SilverTable:
    """A silver table: its name, grain (stated in words), key columns and Arrow schema."""

    name: str
    grain: str
    key: tuple[str, ...]
    schema: pa.Schema


def _schema(cols: list[tuple[str, pa.DataType]] | list[pa.Field]) -> pa.Schema:
    fields = [c if isinstance(c, pa.Field) else pa.field(c[0], c[1]) for c in cols]
    return pa.schema(fields + LINEAGE)


EVENTS_PART = SilverTable(
    name="events_part",
    grain="one row per distinct event (rows identical in every exported field are one event)",
    key=("event_id",),
    schema=_schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_date", pa.date32(), nullable=False),
            pa.field("event_datetime", TS, nullable=False),
            ("event_timestamp", pa.int64()),
            ("event_receive_datetime", TS),
            ("event_receive_timestamp", pa.int64()),
            pa.field("event_name", pa.string(), nullable=False),
            ("event_json", pa.string()),
            ("session_id", pa.uint64()),
            ("installation_id", pa.string()),
            ("profile_id", pa.string()),
            pa.field("appmetrica_device_id", pa.uint64(), nullable=False),
            *_DEVICE,
            ("app_build_number", pa.int64()),
            ("app_package_name", pa.string()),
            ("app_version_name", pa.string()),
            ("appmetrica_sdk_version", pa.string()),
            ("application_id", pa.int64()),
        ],
    ),
)

MOBILE_DEVICES = SilverTable(
    name="mobile_devices",
    grain="one row per appmetrica_device_id per export_date",
    key=("appmetrica_device_id", "export_date"),
    schema=_schema(
        [
            pa.field("appmetrica_device_id", pa.uint64(), nullable=False),
            ("device_manufacturer", pa.string()),
            ("device_model", pa.string()),
            ("original_device_model", pa.string()),
            ("device_type", pa.string()),
            ("os_name", pa.string()),
            ("os_version", pa.string()),
            ("device_locale", pa.string()),
            pa.field("first_seen_at", TS, nullable=False),
            pa.field("last_seen_at", TS, nullable=False),
            pa.field("observations", pa.int64(), nullable=False),
        ],
    ),
)

TECHNICAL_DATA = SilverTable(
    name="technical_data",
    grain="one row per device per session (appmetrica_device_id, installation_id, session_id) per export_date",
    key=("appmetrica_device_id", "installation_id", "session_id", "export_date"),
    schema=_schema(
        [
            pa.field("appmetrica_device_id", pa.uint64(), nullable=False),
            ("installation_id", pa.string()),
            pa.field("session_id", pa.uint64(), nullable=False),
            pa.field("session_started_at", TS, nullable=False),
            ("app_version_name", pa.string()),
            ("app_build_number", pa.int64()),
            ("appmetrica_sdk_version", pa.string()),
            ("connection_type", pa.string()),
            ("operator_name", pa.string()),
            ("mcc", pa.int32()),
            ("mnc", pa.int32()),
            pa.field("source", pa.string(), nullable=False),
        ],
    ),
)

TMP_EVENT_PROPERTIES = SilverTable(
    name="tmp_event_properties",
    grain="one row per event per leaf property of event_json (nested keys as dotted paths)",
    key=("event_id", "property_path"),
    schema=_schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_date", pa.date32(), nullable=False),
            pa.field("appmetrica_device_id", pa.uint64(), nullable=False),
            pa.field("event_name", pa.string(), nullable=False),
            pa.field("property_path", pa.string(), nullable=False),
            ("value_text", pa.string()),
            pa.field("value_type", pa.string(), nullable=False),
        ],
    ),
)

PERMANENT_USER_PROPERTIES = SilverTable(
    name="permanent_user_properties",
    grain="one row per profile_id per export_date: the profile's stable attributes",
    key=("profile_id", "export_date"),
    schema=_schema(
        [
            pa.field("profile_id", pa.string(), nullable=False),
            ("appmetrica_device_id", pa.uint64()),
            ("gender", pa.string()),
            ("birth_date", pa.date32()),
            ("name", pa.string()),
            ("notifications_enabled", pa.bool_()),
            ("first_session_date", pa.date32()),
            ("last_start_date", pa.date32()),
            ("sessions", pa.int64()),
            ("crashes", pa.int64()),
            ("errors", pa.int64()),
            ("city", pa.string()),
            ("country_iso_code", pa.string()),
            ("device_manufacturer", pa.string()),
            ("device_model", pa.string()),
            ("os_name", pa.string()),
            ("os_version", pa.string()),
            ("app_version_name", pa.string()),
        ],
    ),
)

TMP_USER_PROPERTIES = SilverTable(
    name="tmp_user_properties",
    grain="one row per profile_id per custom attribute per export_date",
    key=("profile_id", "attribute_name", "export_date"),
    schema=_schema(
        [
            pa.field("profile_id", pa.string(), nullable=False),
            pa.field("attribute_name", pa.string(), nullable=False),
            ("value_text", pa.string()),
            pa.field("value_type", pa.string(), nullable=False),
        ],
    ),
)

USER_LOCATIONS = SilverTable(
    name="user_locations",
    grain="one row per device per export_date per (country_iso_code, city) seen",
    key=("appmetrica_device_id", "export_date", "country_iso_code", "city"),
    schema=_schema(
        [
            pa.field("appmetrica_device_id", pa.uint64(), nullable=False),
            ("country_iso_code", pa.string()),
            ("city", pa.string()),
            pa.field("first_seen_at", TS, nullable=False),
            pa.field("last_seen_at", TS, nullable=False),
            pa.field("observations", pa.int64(), nullable=False),
        ],
    ),
)

SILVER_TABLES: dict[str, SilverTable] = {
    t.name: t
    for t in (
        EVENTS_PART,
        MOBILE_DEVICES,
        TECHNICAL_DATA,
        TMP_EVENT_PROPERTIES,
        PERMANENT_USER_PROPERTIES,
        TMP_USER_PROPERTIES,
        USER_LOCATIONS,
    )
}

# Quarantine files share one schema whatever the resource.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("resource", pa.string(), nullable=False),
        pa.field("bronze_file", pa.string(), nullable=False),
        pa.field("bronze_row", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("export_date", pa.date32(), nullable=False),
    ]
)
