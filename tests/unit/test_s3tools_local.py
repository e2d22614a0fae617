"""`lakehouse s3` without a lakehouse_s3 connection: the same commands on the local publish folder; key rules."""

from __future__ import annotations

import os
import time

import pytest

from lakehouse import cli
from lakehouse.s3tools import LocalStore, S3Tools, S3ToolsError, format_listing, normalize_key
from lakehouse.settings import ConfigError, Layout


@pytest.fixture
def env(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("AIRFLOW_CONN_", "LAKEHOUSE_S3"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_normalize_key():
    assert normalize_key("s3://lake/gold/a.parquet", "lake") == "gold/a.parquet"
    assert normalize_key("/gold/a.parquet", "lake") == "gold/a.parquet"
    assert normalize_key("gold", "lake", folder=True) == "gold/"
    assert normalize_key("", "lake", folder=True) == ""
    for bad, message in (("s3://other/gold/a", "names bucket 'other'"), ("gold/../x", "'..' segment"),
                         ("gold/", "is not an object key"), ("a\nb", "control character")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            normalize_key(bad, "lake")


def test_local_store_round_trip_and_listing_order(tmp_path):
    tools = S3Tools(LocalStore(tmp_path / "published"), "gold", None)
    src = tmp_path / "a.bin"
    src.write_bytes(b"x" * 1000)
    tools.put(src, "gold/m/old.bin")
    old = tmp_path / "published/gold/m/old.bin"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    tools.put(src, "gold/m/new.bin")
    tools.put(src, "gold/m/sub/deeper.bin")
    entries = tools.ls("gold/m")
    assert [e.key for e in entries] == ["gold/m/sub/", "gold/m/new.bin", "gold/m/old.bin"]
    lines = format_listing(entries)
    assert lines[0].split() == ["PRE", "gold/m/sub/"] and lines[1].split()[2:] == ["1,000", "gold/m/new.bin"]
    info = tools.info("gold/m/new.bin")
    assert info["exists"] and info["size"] == 1000 and len(info["etag"]) == 32
    got = tools.get("gold/m/new.bin", tmp_path / "out")
    assert got["dest"] == str(tmp_path / "out") and (tmp_path / "out").read_bytes() == src.read_bytes()
    assert tools.info("gold/m/missing.bin") == {"uri": str(tmp_path / "published/gold/m/missing.bin"),
                                                "exists": False}  # fmt: skip


def test_rm_refuses_keys_outside_the_lake_prefix_unless_forced(tmp_path):
    tools = S3Tools(LocalStore(tmp_path / "published"), "gold", None)
    src = tmp_path / "a.txt"
    src.write_text("hello")
    tools.put(src, "raw/keep.txt")
    tools.put(src, "goldfish/keep.txt")  # shares the prefix's letters, not its folder
    for key in ("raw/keep.txt", "goldfish/keep.txt"):
        with pytest.raises(S3ToolsError, match=r"refusing to delete .* outside the lake prefix 'gold/'"):
            tools.rm(key)
        assert tools.info(key)["exists"]
    assert tools.rm("raw/keep.txt", force=True)["deleted"]
    assert not tools.info("raw/keep.txt")["exists"]
    with pytest.raises(S3ToolsError, match="does not exist"):
        tools.rm("gold/never.txt")


def test_cli_without_a_connection_works_on_the_publish_folder(env, capsys):
    src = env / "report.json"
    src.write_text('{"ok": true}')
    assert cli.main(["s3", "put", str(src), "gold/_tools/report.json"]) == 0
    out = capsys.readouterr()
    assert "no Airflow connection 'lakehouse_s3'" in out.err and "single request" in out.out
    assert (Layout(env / "data").published / "gold/_tools/report.json").read_text() == '{"ok": true}'
    assert cli.main(["s3", "ls"]) == 0
    assert capsys.readouterr().out.split() == ["PRE", "gold/_tools/"]
    assert cli.main(["s3", "ls", "gold/_tools", "--json"]) == 0
    assert '"key": "gold/_tools/report.json"' in capsys.readouterr().out
    assert cli.main(["s3", "info", "gold/_tools/nothing"]) == 1
    capsys.readouterr()
    assert cli.main(["s3", "rm", "elsewhere/x"]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert cli.main(["s3", "rm", "gold/_tools/report.json"]) == 0
    assert cli.main(["s3", "get", "gold/_tools/report.json", str(env / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err
