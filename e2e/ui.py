"""
``make ui`` as a newcomer uses it, in a real headless Chromium: the ``ui`` scenario of ``make e2e``.

Starts ``python -m scripts.ui`` (what ``make ui`` runs) and reads the URL, the login and the
sandbox's URL it prints; logs in through the login form; presses the ``trackly_default`` row's
Test button on the Connections page and checks the message shown (the Port is filled in, the Base
URL's, as docs/connection.md asks on Airflow 3.3.2, whose Test button refuses an empty Port with a
400 and a red "Bad Request"); opens the connection's edit form; triggers
``trackly_click_history_backfill`` with a 3-day ``start_date``/``end_date`` range through the
trigger form; waits for the run and checks each day's XCom counts against what the seeded source
holds and the sandbox stored, and that the run's page shows each day's label; checks that the
DAG, switched on as shipped, made one scheduled run and no catchup. Screenshots go to ``docs/``
(``SCREENSHOTS``). Ctrl-C (SIGINT) then stops it: every process it started must be gone. Measured:
the seconds from starting the script to its URL answering, and to the first import's counts
being visible.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from e2e.deployment import ADMIN, DAG_ID, AirflowApi, wait_for
from e2e.screenshots import Browser
from e2e.source import VALID_PER_DAY, expectations, stored_per_day
from scripts.ui import seeded_days

if TYPE_CHECKING:
    from e2e.run import Timings

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
# What each screenshot shows, by file name in docs/.
SCREENSHOTS = {
    "ui-login.png": "make ui's login page",
    "connection-form.png": "the trackly_default connection's edit form, after its Test button",
    "trigger-form.png": "the trigger form with a 3-day start_date/end_date range",
    "ui-run.png": "the finished run: one import_clicks per day, labelled with its date",
}


class UiProcess:
    """``python -m scripts.ui`` in its own session, its output collected line by line."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scripts.ui"],
            cwd=REPO,
            env={**os.environ, "UI_PORT": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def printed(self, pattern: str) -> re.Match[str] | None:
        """The first line printed so far matching ``pattern``; raises if the script has exited."""
        for line in list(self.lines):
            if found := re.match(pattern, line):
                return found
        if self.process.poll() is not None:
            raise RuntimeError(f"make ui exited with {self.process.returncode}:\n" + "\n".join(self.lines))
        return None

    def interrupt(self, timeout: float = 90) -> int:
        """Ctrl-C: SIGINT to its process group, as a terminal sends it; its exit code."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise


def ui_scenario(timings: Timings, _sandbox_url: str) -> None:
    """The ``ui`` scenario (``e2e.run``): ``make ui``'s own sandbox, not the run's shared one."""
    ui = UiProcess()
    try:
        with timings.step("ui: make ui until its URL answers and it prints the login"):
            url = wait_for(
                "make ui to say its URL", lambda: ui.printed(r"Starting Airflow .* on (\S+) "), 60, 0.2
            )[1]
            wait_for(f"{url} to answer", lambda: answers(url), 180, 0.2)
            reachable = time.monotonic() - ui.started
            login = wait_for("make ui to print the login", lambda: ui.printed(r"Log in: +(\S+) / (\S+)"), 180)
            assert ui.printed(r"Airflow UI: +(\S+)")[1] == url, ui.lines  # type: ignore[index]
            sandbox_url = wait_for("the sandbox's URL", lambda: ui.printed(r"Sandbox: +(\S+)"), 10)[1]
            assert login[1] == ADMIN, login[0]
            printed_ready = time.monotonic() - ui.started
        api = AirflowApi(url, login[2])
        days = seeded_days(datetime.now(timezone.utc).date())
        expected = expectations(dict.fromkeys(days, VALID_PER_DAY))
        chosen = days[-6:-3]  # what make ui suggests: clear of the scheduled run's days (the last 3)
        page = Browser()
        try:
            with timings.step("ui: log in through the login form"):
                page.open(url)
                page.wait_for_text("Sign in")
                page.screenshot(DOCS / "ui-login.png")
                page.type("input[name=username]", login[1])
                page.type("input[name=password]", login[2])
                page.click("Sign in")
                wait_for("the home page", lambda: page.evaluate("location.pathname") == "/", 30, 0.5)
            with timings.step("ui: the Connections page's Test button on trackly_default"):
                test_connection(page, url, sandbox_url)
            with timings.step("ui: trigger a 3-day range through the trigger form"):
                run_id = trigger_range(page, api, url, chosen)
            with timings.step("ui: the run's imports, checked against the source and the sandbox"):
                first = wait_for("the first import's counts", lambda: first_counts(api, run_id), 300, 0.5)
                first_seen = time.monotonic() - ui.started
                run = api.wait_for_run(run_id, 300)
                assert run["state"] == "success", run
                check_imports(api, run_id, chosen, expected, sandbox_url)
                show_run(page, url, run_id, chosen)
            with timings.step("ui: switched on as shipped, the DAG made one scheduled run, no catchup"):
                scheduled = [r for r in api.dag_runs() if r["run_type"] == "scheduled"]
                assert len(scheduled) == 1, [r["dag_run_id"] for r in scheduled]
        finally:
            page.close()
        timings.notes.append(
            f"make ui: its URL answered {reachable:.0f} s after the script started, the login was printed "
            f"at {printed_ready:.0f} s (the example DAGs parsed), and the first import of a range "
            f"triggered through the UI showed its counts at {first_seen:.0f} s "
            f"({first['rendered_map_index']}: {first['counts']['success_count']} imported). Screenshots: "
            + ", ".join(f"[{what}]({name})" for name, what in SCREENSHOTS.items())
            + "."
        )
        timings.images.extend(SCREENSHOTS.items())
        print(f"   make ui: URL answering at {reachable:.1f} s, first import's counts at {first_seen:.1f} s")
    finally:
        code = ui.interrupt()
    assert code == 0 and ui.lines[-1] == "Stopped.", (code, ui.lines[-5:])
    assert not answers(url), f"{url} still answers after Ctrl-C"


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_connection(page: Browser, url: str, sandbox_url: str) -> None:
    """The row's Test button: success, saying which URL it reached; then the edit form beside it."""
    page.open(f"{url}/connections")
    page.wait_for_text("trackly_default")
    page.press_in_row("trackly_default", "Test Connection")
    answered = ("Test Connection Successful", "Test Connection Failed")
    wait_for("the Test button's answer", lambda: any(text in page.text() for text in answered), 30, 0.2)
    shown = page.text()
    assert "Test Connection Successful" in shown, shown[-500:]
    assert f"Connected to Trackly at {sandbox_url}: the API key works." in shown, shown[-500:]
    page.press_in_row("trackly_default", "Edit Connection")
    page.wait_for_text("API key")
    page.screenshot(DOCS / "connection-form.png")
    page.send("Input.dispatchKeyEvent", type="keyDown", key="Escape", code="Escape", windowsVirtualKeyCode=27)


def trigger_range(page: Browser, api: AirflowApi, url: str, days: list[date]) -> str:
    """Fill the trigger form's start_date and end_date, press Trigger; the new run's id."""
    before = {run["dag_run_id"] for run in api.dag_runs()}
    page.open(f"{url}/dags/{DAG_ID}")
    page.click("Trigger")
    page.wait_for_text("start_date")
    page.fill("input[name='element_start_date']", str(days[0]))
    page.fill("input[name='element_end_date']", str(days[-1]))
    page.screenshot(DOCS / "trigger-form.png")
    page.click("Trigger", "[role=dialog] button")

    def new_run() -> str | None:
        runs = [
            run for run in api.dag_runs() if run["dag_run_id"] not in before and run["run_type"] == "manual"
        ]
        return str(runs[0]["dag_run_id"]) if runs else None

    run_id: str = wait_for("the triggered run", new_run, 60, 0.5)
    conf = api.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["conf"]
    assert (conf["start_date"], conf["end_date"]) == (str(days[0]), str(days[-1])), conf
    return run_id


def first_counts(api: AirflowApi, run_id: str) -> dict[str, Any] | None:
    """The first of the run's imports to push its counts: its task instance and XCom, or None yet."""
    for ti, counts in api.task_results(run_id, "import_clicks"):
        if counts is not None:
            return {**ti, "counts": counts}
    return None


def check_imports(
    api: AirflowApi, run_id: str, days: list[date], expected: dict[date, Any], sandbox_url: str
) -> None:
    """Each day: its rows read, imported and rejected are the seeded ones, and the sandbox holds it once."""
    found = api.imports(run_id)
    assert sorted(found) == [str(day) for day in days], sorted(found)
    stored = stored_per_day(sandbox_url)
    for day in days:
        counts, want = found[str(day)]["counts"], expected[day]
        assert found[str(day)]["state"] == "success", found[str(day)]
        assert (counts["rows_read"], counts["success_count"], counts["duplicates_skipped"]) == (
            want.rows,
            want.valid,
            0,
        ), (day, counts)
        assert counts["error_count"] == want.errors, (day, counts)
        assert stored[str(day)] == want.valid, (day, stored[str(day)])


def show_run(page: Browser, url: str, run_id: str, days: list[date]) -> None:
    """The run's page lists each import by its day (its map index label); screenshot it."""
    page.open(f"{url}/dags/{DAG_ID}/runs/{run_id}")
    for day in days:
        page.wait_for_text(str(day))
    page.screenshot(DOCS / "ui-run.png")
