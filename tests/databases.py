"""
The shared database servers the tests, the e2e run and the benchmarks use, from environment variables.

Each ``TRACKLY_TEST_*`` variable left unset (or empty) keeps the machine's default:

- PostgreSQL: ``TRACKLY_TEST_PG_HOST`` (127.0.0.1), ``TRACKLY_TEST_PG_PORT`` (5432),
  ``TRACKLY_TEST_PG_USER`` (postgres), ``TRACKLY_TEST_PG_PASSWORD`` (none),
  ``TRACKLY_TEST_PG_DATABASE`` (test);
- MariaDB: ``TRACKLY_TEST_MARIADB_HOST`` (127.0.0.1), ``TRACKLY_TEST_MARIADB_PORT`` (3306),
  ``TRACKLY_TEST_MARIADB_USER`` (root), ``TRACKLY_TEST_MARIADB_PASSWORD`` (none),
  ``TRACKLY_TEST_MARIADB_DATABASE`` (test);
- Redis, for the e2e run's Celery broker: ``TRACKLY_TEST_REDIS_URL`` (redis://127.0.0.1:6379/7).

The tests create and drop tables of their own in these databases; the e2e run also creates and drops
databases of its own (``trackly_e2e_*``) on the PostgreSQL server. Servers the tests start themselves
(``tests/mariadb_server.py``) are not these.
"""

from __future__ import annotations

import os
from typing import Any


def _setting(name: str, default: str) -> str:
    return os.environ.get(f"TRACKLY_TEST_{name}") or default


PG_HOST = _setting("PG_HOST", "127.0.0.1")
PG_PORT = int(_setting("PG_PORT", "5432"))
PG_USER = _setting("PG_USER", "postgres")
PG_PASSWORD = _setting("PG_PASSWORD", "")
PG_DATABASE = _setting("PG_DATABASE", "test")

MARIADB_HOST = _setting("MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(_setting("MARIADB_PORT", "3306"))
MARIADB_USER = _setting("MARIADB_USER", "root")
MARIADB_PASSWORD = _setting("MARIADB_PASSWORD", "")
MARIADB_DATABASE = _setting("MARIADB_DATABASE", "test")

REDIS_URL = _setting("REDIS_URL", "redis://127.0.0.1:6379/7")


def postgres_dsn(database: str = PG_DATABASE, **options: str) -> str:
    """A libpq connection string for ``database`` on the PostgreSQL server, plus libpq ``options``."""
    from psycopg.conninfo import make_conninfo

    password = {"password": PG_PASSWORD} if PG_PASSWORD else {}
    return make_conninfo(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database, **password, **options)


def postgres_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    """A SQLAlchemy URL for ``database`` on the PostgreSQL server (Airflow's metadata, Celery's results)."""
    from urllib.parse import quote

    credentials = quote(PG_USER, safe="") + (f":{quote(PG_PASSWORD, safe='')}" if PG_PASSWORD else "")
    return f"{driver}://{credentials}@{PG_HOST}:{PG_PORT}/{database}"


def postgres_connection(database: str = PG_DATABASE, **fields: Any) -> dict[str, Any]:
    """An Airflow connection (the JSON form of ``AIRFLOW_CONN_*``) to ``database``; ``fields`` override."""
    conn: dict[str, Any] = {"conn_type": "postgres", "host": PG_HOST, "port": PG_PORT, "login": PG_USER}
    if PG_PASSWORD:
        conn["password"] = PG_PASSWORD
    return {**conn, "schema": database, **fields}


def mariadb_options(database: str | None = MARIADB_DATABASE) -> dict[str, Any]:
    """Keyword arguments for ``MySQLdb.connect`` (or PyMySQL's) to ``database`` (None: no database)."""
    options: dict[str, Any] = {
        "host": MARIADB_HOST,
        "port": MARIADB_PORT,
        "user": MARIADB_USER,
        "password": MARIADB_PASSWORD,
    }
    return options if database is None else {**options, "database": database}


def mariadb_connection(database: str = MARIADB_DATABASE, **fields: Any) -> dict[str, Any]:
    """An Airflow ``mysql`` connection (the JSON form of ``AIRFLOW_CONN_*``) to ``database``."""
    conn: dict[str, Any] = {"conn_type": "mysql", "host": MARIADB_HOST, "port": MARIADB_PORT}
    conn["login"] = MARIADB_USER
    if MARIADB_PASSWORD:
        conn["password"] = MARIADB_PASSWORD
    return {**conn, "schema": database, **fields}
