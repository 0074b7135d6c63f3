"""An Airflow deployment as users run it: api-server, scheduler, dag-processor (and Celery workers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psutil

BIN = Path(sys.executable).parent
DAG_ID = "trackly_click_history_backfill"
ADMIN = "admin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


class AirflowApi:
    """Airflow's REST API at ``base_url``, logged in as ``ADMIN`` with ``password``, as a user's script is."""

    def __init__(self, base_url: str, password: str) -> None:
        self.base_url = base_url
        self.password = password
        self._token: str | None = None

    # The REST API, with a JWT from /auth/token as a script of a user's would get one.
    def token(self) -> str:
        if self._token is None:
            answer = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": ADMIN, "password": self.password},
                timeout=30,
            )
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """
        A REST call, as a user's client makes it. A 500 "Database error" is the api-server meeting
        the SQLite metadata database's lock (seen on CI: a trigger's audit-log INSERT failing after
        5 s, SQLite's busy timeout, with the cause hidden): the request's transaction was rolled
        back whole, so it is sent again, as ``airflow`` commands meeting the lock are.
        """
        for _ in range(3):
            answer = httpx.request(
                method,
                f"{self.base_url}{path}",
                headers={"Authorization": f"Bearer {self.token()}"},
                timeout=60,
                **kwargs,
            )
            if answer.status_code != 500 or '"reason":"Database error"' not in answer.text:
                break
            time.sleep(2)
        if answer.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def dag_runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    def wait_for_run(self, run_id: str, timeout: float = 300, dag_id: str = DAG_ID) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in ("success", "failed") else None

        return dict(wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout))

    def task_results(
        self, run_id: str, task_id: str, dag_id: str = DAG_ID
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """
        Each instance of a (mapped) task in a run, by map index, with its XCom ``return_value``
        (None when it pushed none, as a task that failed early).
        """
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        tis = self.api("GET", path, params={"limit": 500})["task_instances"]
        results = []
        for ti in sorted((ti for ti in tis if ti["task_id"] == task_id), key=lambda ti: ti["map_index"]):
            try:
                xcom = self.api(
                    "GET",
                    f"{path}/{task_id}/xcomEntries/return_value",
                    params={"map_index": ti["map_index"], "deserialize": True},
                )["value"]
            except RuntimeError as exc:
                if "HTTP 404" not in str(exc):
                    raise
                xcom = None
            results.append((ti, xcom if xcom is None or isinstance(xcom, dict) else json.loads(xcom)))
        return results

    def imports(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each mapped import of a run, by day: its state, try, host and XCom counts."""
        return {
            ti["rendered_map_index"]: {
                "state": ti["state"],
                "try_number": ti["try_number"],
                "hostname": ti["hostname"],
                "counts": counts,
            }
            for ti, counts in self.task_results(run_id, "import_clicks")
        }


class Deployment(AirflowApi):
    """One Airflow home and the processes serving it; every process is stopped by ``stop``."""

    def __init__(self, home: Path, env: dict[str, str], port: int | None = None) -> None:
        """A fresh ``home`` (any earlier one is removed); the api-server on ``port`` (default: a free one)."""
        shutil.rmtree(home, ignore_errors=True)
        (home / "dags").mkdir(parents=True)
        (home / "logs").mkdir()
        self.home = home
        self.port = port or free_port()
        super().__init__(f"http://127.0.0.1:{self.port}", secrets.token_urlsafe(12))
        (home / "passwords.json").write_text(json.dumps({ADMIN: self.password}))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            **env,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """
        ``airflow ARGS`` in this deployment, as a user types it; a failure shows what it printed.

        The local deployment's metadata is SQLite: a command that meets the scheduler's write lock
        ("database is locked") is rolled back whole, so it is run again, as a user would.
        """
        for _ in range(3):
            done = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True)
            if done.returncode == 0 or "database is locked" not in done.stdout + done.stderr:
                break
            time.sleep(2)
        if check and done.returncode != 0:
            printed = (done.stdout + done.stderr)[-3000:]
            raise RuntimeError(f"airflow {' '.join(args)} exited with {done.returncode}:\n{printed}")
        return done

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start ``airflow ARGS`` in its own session (so that ``kill`` can take its whole tree)."""
        log = (self.home / "logs" / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_core(self, migrate: bool = True) -> None:
        """``airflow db migrate`` unless ``migrate`` is False, then the core processes; wait for the API."""
        if migrate:
            self.airflow("db", "migrate")
        self.start("api-server", "api-server")
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        wait_for("the api-server", self._api_up, timeout=120)

    def check_running(self, *names: str) -> None:
        """Raise if any of ``names`` (default: every process) has exited."""
        for name in names or list(self.processes):
            process = self.processes[name]
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.home}/logs")

    def _api_up(self) -> bool:
        self.check_running()
        try:
            return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self, name: str) -> None:
        """``kill -9`` a process and everything it started, as when its machine dies."""
        process = self.processes.pop(name)
        tree = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def deploy_example(
        self,
        source: Path,
        start_date: date,
        replace: dict[str, str] | None = None,
        constants: dict[str, str] | None = None,
    ) -> None:
        """
        An example DAG as shipped, set as a user who wants catchup sets it: its ``START_DATE``
        ``start_date``, ``CATCHUP = True``, and each of ``constants`` (name: Python text) on its
        ``NAME = ...`` line; with quick task retries (5 s), paused on creation (the scenario unpauses
        it when it is ready for the catchup), and each of ``replace``'s texts swapped for its value.
        Every line and text edited must occur exactly once (AssertionError otherwise).
        """
        text = source.read_text()
        start = f'pendulum.datetime({start_date.year}, {start_date.month}, {start_date.day}, tz="UTC")'
        settings = {
            "START_DATE": start,
            "CATCHUP": "True",
            "RETRY_DELAY": "timedelta(seconds=5)",
            **(constants or {}),
        }
        edits = {
            **{rf"^{name} = .*$": f"{name} = {value}" for name, value in settings.items()},
            # the DAG(...) argument, not the docstring's mention of it
            r"(?<=^    )is_paused_upon_creation=False": "is_paused_upon_creation=True",
            **{re.escape(old): new for old, new in (replace or {}).items()},
        }
        for pattern, value in edits.items():
            text, found = re.subn(pattern, value.replace("\\", r"\\"), text, count=1, flags=re.M)
            assert found == 1, f"{pattern!r} not in {source.name}"
        (self.home / "dags" / source.name).write_text(text)
