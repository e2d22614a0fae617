"""The quarantine catalogue: every reason a bronze row can be set aside for, with what it means.

A quarantined row keeps its raw text, this reason, a detail naming the column or line, and its
source position (bronze file, row). The catalogue table in docs/data-quality.md and the tests are
checked against this list.
"""

from __future__ import annotations

QUARANTINE_REASONS: dict[str, str] = {
    "broken_csv_record": "The CSV record cannot be parsed: an unbalanced quote or a stray quote. Only the first "
    "line of the broken record is quarantined; the lines it swallowed are read again.",
    "wrong_field_count": "A CSV record with more or fewer fields than the header (or a JSON record missing fields).",
    "broken_json_record": "A JSON export record that is not an object.",
    "invalid_utf8": "Bytes that are not UTF-8 (shown backslash-escaped in the raw text).",
    "field_too_long": "A field over 131072 characters.",
    "missing_required_field": "A required value is empty: the device id, the event time or name, the session id, "
    "the profile id.",
    "invalid_integer": "Text, a fraction or an out-of-range number in an integer column (device ids are UInt64).",
    "invalid_datetime": "A date-time that does not parse as yyyy-mm-dd hh:mm:ss or does not exist (Feb 30).",
    "invalid_date": "A date that does not parse as yyyy-mm-dd or does not exist.",
    "invalid_boolean": "A boolean column holding something other than true/false/1/0.",
    "invalid_decimal": "A money amount (revenue_price, ad_revenue) that is not a plain decimal number (text, a "
    "comma as the decimal mark, NaN) or has more than 29 integer digits.",
    "unknown_enum_value": "A value outside the documented set: os_name, device_type, connection_type, "
    "is_revenue_verified, revenue_order_id_source, ad_revenue_type or ad_revenue_data_source.",
    "invalid_json": "event_json that is not a JSON object.",
}
