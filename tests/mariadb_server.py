"""A MariaDB server of the tests' own: a temporary datadir, a free loopback port, chosen settings."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fetch_all

INSTALL_DB = Path("/usr/bin/mariadb-install-db")
MARIADBD = Path("/usr/sbin/mariadbd")
DATABASE = "test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnMariaDb:
    """
    ``mariadbd`` run from a temporary directory (datadir, socket, pid and log inside it), root
    without a password on 127.0.0.1 and a free port, database ``test``. Never the shared server.
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir

    @classmethod
    def start(cls, workdir: Path, *server_options: str) -> OwnMariaDb:
        """A datadir installed in ``workdir``, the server started with ``server_options`` (skip if absent)."""
        missing = [str(path) for path in (INSTALL_DB, MARIADBD) if not os.access(path, os.X_OK)]
        if missing:
            pytest.skip(f"MariaDB server binaries not installed: {', '.join(missing)}")
        user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root unless told
        datadir = workdir / "data"
        subprocess.run(
            [str(INSTALL_DB), "--no-defaults", f"--datadir={datadir}", *user, "--skip-test-db",
             "--auth-root-authentication-method=normal", "--skip-name-resolve"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        port = _free_port()
        log = (workdir / "server.out").open("wb")
        process = subprocess.Popen(
            [str(MARIADBD), "--no-defaults", f"--datadir={datadir}", *user, f"--port={port}",
             "--bind-address=127.0.0.1", f"--socket={workdir / 'mysqld.sock'}",
             f"--pid-file={workdir / 'mysqld.pid'}", f"--log-error={workdir / 'error.log'}",
             f"--tmpdir={workdir}", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             *server_options],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = cls(process, port, workdir)
        server._wait_until_ready()
        server.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}", database=None)
        return server

    def _wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {(self.workdir / 'error.log').read_text()[-2000:]}")
            try:
                self.connect(database=None).close()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def connect(self, database: str | None = DATABASE, **options: Any) -> Any:
        """A mysqlclient connection as root (``options`` passed to ``MySQLdb.connect``)."""
        import MySQLdb

        if database is not None:
            options["database"] = database
        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", password="", **options)

    def execute(self, sql: str, rows: list[Any] | None = None, *, database: str | None = DATABASE) -> None:
        """Run ``sql`` (once, or for each of ``rows``) in a session set to UTC, and commit."""
        conn = self.connect(database=database)
        try:
            cursor = conn.cursor()
            cursor.execute("SET time_zone = '+00:00'")
            cursor.executemany(sql, rows) if rows is not None else cursor.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` in a session left at the server's default time zone."""
        return fetch_all(self.connect(), sql)

    def airflow_connection(self, client: str = "mysqlclient") -> dict[str, Any]:
        """This server as an Airflow ``mysql`` connection read by ``client``'s driver."""
        extra = {} if client == "mysqlclient" else {"client": client}
        return {
            "conn_type": "mysql",
            "host": "127.0.0.1",
            "port": self.port,
            "login": "root",
            "schema": DATABASE,
            "extra": extra,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir / "data", ignore_errors=True)
