"""A day's devices, sessions and locations come out the same whether aggregated in one pass or in device ranges."""

from __future__ import annotations

from lake_tables import silver_table
from silver_helpers import DAY, row

from transforms.silver import build_silver, job

AGGREGATED = ("mobile_devices", "technical_data", "user_locations")


def _events() -> list[dict[str, str]]:
    rows = []
    for device in range(1, 41):
        for k in range(3):
            rows.append(
                row(
                    "events",
                    event_name=f"e{k}",
                    event_datetime=f"2026-11-01 {10 + k}:0{device % 10}:00",
                    appmetrica_device_id=str(device * 7919),  # spread over the id space
                    session_id=str(device * 10 + k % 2),
                    os_name="android" if device % 2 else "ios",
                    country_iso_code=["RU", "KZ", ""][(device + k) % 3],
                    city=["Moscow", "", "Almaty"][(device * k) % 3],
                )
            )
    return rows


def _tables(layout) -> dict[str, list[dict]]:
    out = {}
    for table in AGGREGATED:
        out[table] = silver_table(layout, table, DAY).to_pylist()
    return out


def test_device_ranges_give_the_one_pass_result_in_the_same_order(
    layout, write_bronze, empty_bronze, monkeypatch, caplog
) -> None:
    empty_bronze()
    write_bronze("events", _events())
    build_silver(DAY, layout)
    one_pass = _tables(layout)
    assert all(one_pass[t] for t in AGGREGATED)

    monkeypatch.setattr(job._Observations, "ROWS_PER_PASS", 17)  # 120 rows: 8 ranges
    with caplog.at_level("INFO", logger="transforms.silver.job"):
        build_silver(DAY, layout)
    assert any("device-id ranges" in r.getMessage() for r in caplog.records)
    assert _tables(layout) == one_pass
