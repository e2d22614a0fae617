"""A throw-away PostgreSQL cluster from Debian's ``postgresql`` binaries (``make test`` installs them).

``initdb`` into a temporary folder, ``pg_ctl start`` listening only on a unix socket in that folder (no TCP, so
parallel test processes never compete for a port), ``pg_ctl stop`` at the end. PostgreSQL refuses to run as root,
so as root the server runs as the ``postgres`` user the Debian package creates, in a folder handed to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def pg_bin() -> Path:
    """The newest installed ``/usr/lib/postgresql/<version>/bin``; AssertionError naming the fix when absent."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    assert found, "PostgreSQL is not installed: `make test` installs Debian's postgresql package"
    return found[-1].parent


@dataclass(frozen=True)
class Cluster:
    socket_dir: Path
    port: int
    user: str
    bin: Path

    def connection(self, database: str) -> dict[str, Any]:
        """An Airflow connection (``AIRFLOW_CONN_*`` JSON) for ``database`` over the unix socket."""
        return {"conn_type": "postgres", "host": str(self.socket_dir), "port": self.port, "login": self.user,
                "schema": database}  # fmt: skip

    def createdb(self, name: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute(f'create database "{name}"')

    def connect(self, database: str) -> Any:  # a psycopg connection
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=self.user, dbname=database)


@contextlib.contextmanager
def pg_cluster() -> Iterator[Cluster]:
    bin_dir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    user = "postgres" if as_root else (os.environ.get("USER") or "postgres")
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", 5432  # the port only names the socket file in the cluster's own folder
    opts = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True)  # fmt: skip
    subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                    "start"], check=True, capture_output=True)  # fmt: skip
    try:
        yield Cluster(root, port, user, bin_dir)
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
