"""
``make e2e``: the example DAGs in real Airflow deployments, proven by the data the sandbox stored.

``python -m e2e.run [local] [celery] [ui]``. The local and celery scenarios start api-server, scheduler and
dag-processor (and, for Celery, two workers), the sandbox, and a PostgreSQL source; drives them the
way users do (catchup, ``airflow backfill create``, CLI and REST triggers, clearing a day, killing a
worker); and checks every day's XCom counts against the rows stored. The local scenario also runs
the migration DAG's catchup, whose overlapping runs import a day's revenue at once
(``e2e/migration.py``). The ui scenario runs ``make ui``'s script and drives its Airflow UI in a
headless Chromium (``e2e/ui.py``), writing the screenshots in ``docs/``. Timings, notes and the
screenshots' links go to ``docs/e2e.md``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from e2e.deployment import DAG_ID, Deployment, wait_for
from e2e.migration import (
    DAYS,
    MIGRATION_DAG_ID,
    SOURCE_CONN_ID,
    catch_up,
    deploy_migration_dag,
    seed_migration,
)
from e2e.source import (
    DayExpectation,
    insert_late_click,
    nightly_days,
    recreate_database,
    rejects_by_task,
    reset_sandbox,
    seed,
    set_faults,
    source_connection,
    stored_per_day,
)
from e2e.ui import ui_scenario
from tests.databases import REDIS_URL, postgres_url
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.process import start_sandbox, stop_sandbox

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".e2e"
EXAMPLE_DAG = REPO / "dags_examples" / "trackly_click_history_backfill.py"
REPORT_DAG = REPO / "dags_examples" / "trackly_clicks_report.py"
REPORT_DAG_ID = "trackly_clicks_report"
TODAY = datetime.now(timezone.utc).date()
# What a day's valid rows must be reported as: all imported, all duplicates, or split between the two.
NEW, DUPLICATES, PARTLY_DUPLICATES = "new", "duplicates", "partly duplicates"


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


class Timings:
    """Wall time of each step, in order."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []
        self.notes: list[str] = []
        self.images: list[tuple[str, str]] = []  # (file name in docs/, what it shows)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        yield
        self.steps.append((name, time.monotonic() - started))
        print(f"   {time.monotonic() - started:.1f} s", flush=True)


def deploy_dag(deployment: Deployment, start_date: date) -> None:
    """The example DAG as shipped, with its START_DATE a few days back and quick task retries."""
    deployment.deploy_example(EXAMPLE_DAG, start_date)
    (deployment.home / "dags" / REPORT_DAG.name).write_text(REPORT_DAG.read_text())


def move_start_date(deployment: Deployment, day: date) -> None:
    """
    Set the deployed DAG's ``START_DATE`` to ``day``, as its docstring tells a user importing older
    history to; wait until Airflow has parsed it. The DAG refuses ranges before ``START_DATE``, and
    a catchup already made does not go back for the days now before it.
    """
    deploy_dag(deployment, day)
    details = f"/api/v2/dags/{DAG_ID}/details"
    wait_for(
        f"START_DATE {day} to be parsed",
        lambda: str(deployment.api("GET", details)["start_date"])[:10] == str(day),
        timeout=120,
    )


def check_day(
    day: date, found: dict[str, Any], expected: DayExpectation, stored: Counter[str], *, outcome: str
) -> None:
    """A day's import succeeded, its counts add up, and the sandbox holds each valid row once."""
    counts = found["counts"]
    assert found["state"] == "success", (day, found)
    assert counts["rows_read"] == expected.rows, (day, counts)
    assert counts["error_count"] == expected.errors, (day, counts)
    assert counts["success_count"] + counts["duplicates_skipped"] == expected.valid, (day, counts)
    if outcome == NEW:
        assert counts["success_count"] == expected.valid, (day, counts)
    elif outcome == DUPLICATES:
        assert counts["duplicates_skipped"] == expected.valid, (day, counts)
    assert stored[str(day)] == expected.valid, (day, stored[str(day)], expected.valid)


def run_and_check(
    deployment: Deployment,
    run_id: str,
    days: list[date],
    expected: dict[date, DayExpectation],
    sandbox_url: str,
    *,
    outcome: str = NEW,
    timeout: float = 300,
) -> dict[str, dict[str, Any]]:
    run = deployment.wait_for_run(run_id, timeout)
    assert run["state"] == "success", run
    found = deployment.imports(run_id)
    assert sorted(found) == [str(day) for day in days], (run_id, sorted(found))
    stored = stored_per_day(sandbox_url)
    for day in days:
        check_day(day, found[str(day)], expected[day], stored, outcome=outcome)
    return found


def trigger_cli(deployment: Deployment, conf: dict[str, str], logical_date: str | None = None) -> str:
    """``airflow dags trigger -c CONF``, with ``-l`` only when a logical date is given."""
    args = ["dags", "trigger", DAG_ID, "-c", json.dumps(conf), "-o", "json"]
    out = deployment.airflow(*args, *(["-l", logical_date] if logical_date else [])).stdout
    (run,) = json.loads([line for line in out.splitlines() if line.startswith("[{")][-1])
    assert (run["logical_date"] is None) == (logical_date is None), run
    return str(run["dag_run_id"])


def trigger_rest(deployment: Deployment, conf: dict[str, str], logical_date: str | None = None) -> str:
    """``POST /api/v2/dags/{dag_id}/dagRuns``, ``"logical_date"`` null unless given, as a script would."""
    body = {"logical_date": logical_date, "conf": conf}
    run = deployment.api("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", json=body)
    assert (run["logical_date"] is None) == (logical_date is None), run
    return str(run["dag_run_id"])


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def check_connection_form(deployment: Deployment) -> None:
    """What the UI's connection form gets for Trackly, and the Test button of docs/connection.md."""
    (meta,) = [
        m for m in deployment.api("GET", "/ui/connections/hook_meta") if m["connection_type"] == "trackly"
    ]
    behaviour = meta["standard_fields"]
    assert behaviour["password"]["title"] == "API key", behaviour
    assert behaviour["host"]["title"] == "Base URL", behaviour
    assert behaviour["host"]["placeholder"] == "https://app.tracklysms.com", behaviour
    assert behaviour["login"]["hidden"] is True and behaviour["url_schema"]["hidden"] is True, behaviour


def check_connection_test(deployment: Deployment, sandbox_url: str) -> None:
    """The UI's "Test" button (AIRFLOW__CORE__TEST_CONNECTION=Enabled): a good key passes, a bad one not."""
    body = {"connection_id": "trackly_try", "conn_type": "trackly", "host": sandbox_url}
    good = deployment.api("POST", "/api/v2/connections/test", json={**body, "password": SANDBOX_API_KEY})
    assert good["status"] is True, good
    bad = deployment.api("POST", "/api/v2/connections/test", json={**body, "password": "trk_" + "x" * 32})
    assert bad["status"] is False and "rejected the API key" in bad["message"], bad


def local_scenario(timings: Timings, sandbox_url: str) -> None:
    """LocalExecutor on the default (SQLite) metadata database."""
    database, migration = "trackly_e2e_local", "trackly_e2e_migration"
    recreate_database(database)
    recreate_database(migration)
    migration_days = [ago(n) for n in range(DAYS, 0, -1)]
    seed_migration(migration, migration_days)
    catchup = [ago(3), ago(2), ago(1)]
    backfill = [ago(6), ago(5)]
    cli_range = [ago(9), ago(8)]
    rest_range = [ago(12), ago(11), ago(10)]
    expected = seed(database, dict.fromkeys(catchup + backfill + cli_range + rest_range, 200))
    deployment = Deployment(
        WORK / "local",
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW_CONN_TRACKLY_SOURCE": source_connection(database),
            "AIRFLOW_CONN_TRACKLY_DEFAULT": trackly_connection(sandbox_url),
            f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}": source_connection(migration),
            "AIRFLOW_CONN_TRACKLY_LEDGER": source_connection(migration),
        },
    )
    try:
        with timings.step("local: start api-server, scheduler, dag-processor"):
            deploy_dag(deployment, catchup[0])
            deploy_migration_dag(deployment, migration_days[0])
            deployment.start_core()
            for dag_id in (DAG_ID, MIGRATION_DAG_ID):
                wait_for(f"{dag_id} to be parsed", lambda dag_id=dag_id: dag_parsed(deployment, dag_id), 180)
        with timings.step("local: connection form (hook_meta) and connection test"):
            check_connection_form(deployment)
            check_connection_test(deployment, sandbox_url)
        with timings.step("local: catchup of 3 days after unpausing"):
            deployment.airflow("dags", "unpause", REPORT_DAG_ID)
            deployment.airflow("dags", "unpause", DAG_ID)
            runs = wait_for("3 scheduled runs", lambda: scheduled_runs(deployment, 3), timeout=120)
            for (
                run
            ) in runs:  # each also imports the days before it again; runs overlap, so who stores first varies
                start = datetime.fromisoformat(run["data_interval_start"]).date()
                days = nightly_days(start, catchup[0])
                run_and_check(
                    deployment, run["dag_run_id"], days, expected, sandbox_url, outcome=PARTLY_DUPLICATES
                )
        with timings.step("local: START_DATE moved back to the oldest day the ranges below import"):
            move_start_date(deployment, rest_range[0])
        with timings.step("local: airflow backfill create (2 days)"):
            deployment.airflow(
                "backfill", "create", "--dag-id", DAG_ID,
                "--from-date", str(backfill[0]), "--to-date", str(backfill[-1]),
            )  # fmt: skip
            runs = wait_for("2 backfill runs", lambda: runs_of_type(deployment, "backfill", 2), timeout=120)
            for run in runs:
                start = datetime.fromisoformat(run["data_interval_start"]).date()
                run_and_check(deployment, run["dag_run_id"], [start], expected, sandbox_url)
        with timings.step("local: CLI range trigger without -l (2 days)"):
            run_id = trigger_cli(
                deployment, {"start_date": str(cli_range[0]), "end_date": str(cli_range[-1])}
            )
            run_and_check(deployment, run_id, cli_range, expected, sandbox_url)
        with timings.step("local: REST range trigger, logical_date null (3 days)"):
            conf = {"start_date": str(rest_range[0]), "end_date": str(rest_range[-1])}
            run_and_check(deployment, trigger_rest(deployment, conf), rest_range, expected, sandbox_url)
        nightly = nightly_days(ago(1), catchup[0])
        with timings.step("local: a late row of 2 days ago, then a REST trigger, no params, no logical date"):
            insert_late_click(database, ago(2))
            late_day = expected[ago(2)]
            expected[ago(2)] = DayExpectation(rows=late_day.rows + 1, valid=late_day.valid + 1)
            run_id = trigger_rest(deployment, {})
            found = run_and_check(
                deployment, run_id, nightly, expected, sandbox_url, outcome=PARTLY_DUPLICATES
            )
            imported = {str(day): found[str(day)]["counts"]["success_count"] for day in nightly}
            assert imported == {str(ago(3)): 0, str(ago(2)): 1, str(ago(1)): 0}, imported
            timings.notes.append(f"The run after a late row was written imported, per day: {imported}.")
        with timings.step("local: CLI trigger with -l now, no params (its inferred interval: yesterday)"):
            now = datetime.now(timezone.utc).isoformat()
            run_id = trigger_cli(deployment, {}, logical_date=now)
            run_and_check(deployment, run_id, nightly, expected, sandbox_url, outcome=DUPLICATES)
        with timings.step("local: REST range trigger with a logical date, as the UI's form sends"):
            now = datetime.now(timezone.utc).isoformat()
            conf = {"start_date": str(cli_range[0]), "end_date": str(cli_range[-1])}
            run_id = trigger_rest(deployment, conf, logical_date=now)
            run_and_check(deployment, run_id, cli_range, expected, sandbox_url, outcome=DUPLICATES)
        with timings.step("local: START_DATE back to the catchup's first day"):
            move_start_date(deployment, catchup[0])  # so that the rerun below plans what the run did
        with timings.step("local: clear a day's run and rerun it (all duplicates)"):
            (run,) = [
                r for r in scheduled_runs(deployment, 3) if r["data_interval_start"][:10] == str(ago(2))
            ]
            deployment.api(
                "POST",
                f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
                json={"dag_run_id": run["dag_run_id"], "dry_run": False, "only_failed": False},
            )
            wait_for(
                "the cleared run to start again", lambda: run_state(deployment, run) != "success", 60, 0.2
            )
            days = nightly_days(ago(2), catchup[0])
            run_and_check(deployment, run["dag_run_id"], days, expected, sandbox_url, outcome=DUPLICATES)
            rejects = rejects_by_task(database, run["dag_run_id"])  # the rerun replaced the first try's rows
            assert rejects == {(0, 2): expected[ago(3)].errors, (1, 2): expected[ago(2)].errors}, rejects
        stored = stored_per_day(sandbox_url)
        assert sum(stored.values()) == sum(e.valid for e in expected.values()), stored
        with timings.step("local: every import's asset event reached the report DAG scheduled on it"):
            runs, events = check_report_dag(deployment, expected)
            timings.notes.append(
                f"{REPORT_DAG_ID} ran {runs} times, on the clicks asset, and reported all {events} import "
                "events; per day, their success_count adds up to the day's valid rows."
            )
        with timings.step(
            f"local: {MIGRATION_DAG_ID} catchup of {DAYS} days, runs at once re-importing late rows"
        ):
            deployment.airflow("dags", "pause", REPORT_DAG_ID)  # the migration's clicks are not its to report
            timings.notes.append(catch_up(deployment, sandbox_url, migration, migration_days[0]))
    finally:
        deployment.stop()


def check_report_dag(deployment: Deployment, expected: dict[date, DayExpectation]) -> tuple[int, int]:
    """
    Every import's event on the clicks asset triggered ``trackly_clicks_report``, which reported it:
    per day, the reported ``success_count`` adds up to the day's valid rows (each stored once).

    An event that lands while the scheduler creates a report run (after the run's queue entry) is
    left to the next run, which only a later event queues: a last event, posted by hand as users
    can, flushes those. The report leaves it out (it is not an import's).
    """
    (asset,) = deployment.api("GET", "/api/v2/assets", params={"uri_pattern": "history/clicks"})["assets"]
    deployment.api("POST", "/api/v2/assets/events", json={"asset_id": asset["id"], "extra": {"e2e": "flush"}})

    def reported() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        path = f"/api/v2/dags/{REPORT_DAG_ID}/dagRuns"
        runs = deployment.api("GET", path, params={"limit": 1000})["dag_runs"]
        if not runs or any(run["state"] not in ("success", "failed") for run in runs):
            return None
        try:  # Airflow answers 500 while a run an event created has not started (no start_date yet)
            events = deployment.api(
                "GET", "/api/v2/assets/events", params={"source_dag_id": DAG_ID, "limit": 1000}
            )
        except RuntimeError:
            return None
        entries = []
        for run in runs:
            assert (run["state"], run["run_type"]) == ("success", "asset_triggered"), run
            xcom = deployment.api(
                "GET",
                f"{path}/{run['dag_run_id']}/taskInstances/report_imported_clicks/xcomEntries/return_value",
                params={"deserialize": True},
            )["value"]
            entries += xcom if isinstance(xcom, list) else json.loads(xcom)
        return (runs, entries) if len(entries) == len(events["asset_events"]) else None

    runs, entries = wait_for(f"{REPORT_DAG_ID} to report every import", reported, timeout=180, every=2)
    imported: Counter[str] = Counter()
    for entry in entries:
        assert entry["source_dag_id"] == DAG_ID and entry["entity"] == "clicks", entry
        imported[entry["partition"][0][:10]] += entry["success_count"]
    assert imported == {str(day): e.valid for day, e in expected.items()}, imported
    return len(runs), len(entries)


def trackly_connection(sandbox_url: str) -> str:
    return json.dumps({"conn_type": "trackly", "host": sandbox_url, "password": SANDBOX_API_KEY})


def dag_parsed(deployment: Deployment, dag_id: str = DAG_ID) -> bool:
    try:
        deployment.api("GET", f"/api/v2/dags/{dag_id}")
    except RuntimeError:
        return False
    return True


def runs_of_type(deployment: Deployment, run_type: str, count: int) -> list[dict[str, Any]] | None:
    runs = [run for run in deployment.dag_runs() if run["run_type"] == run_type]
    return sorted(runs, key=lambda run: run["data_interval_start"]) if len(runs) >= count else None


def scheduled_runs(deployment: Deployment, count: int) -> list[dict[str, Any]] | None:
    return runs_of_type(deployment, "scheduled", count)


def run_state(deployment: Deployment, run: dict[str, Any]) -> str:
    return str(deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")["state"])


def celery_scenario(timings: Timings, sandbox_url: str) -> None:
    """CeleryExecutor, two workers, Redis broker, PostgreSQL metadata and results; one worker killed."""
    database, metadata = "trackly_e2e_celery", "trackly_e2e_airflow"
    recreate_database(database)
    recreate_database(metadata)
    catchup = [ago(4), ago(3), ago(2), ago(1)]
    big_day = ago(20)
    expected = seed(database, {**dict.fromkeys(catchup, 200), big_day: 40_000})
    postgres = postgres_url(metadata)
    hostnames = Path(tempfile.mkdtemp(prefix="trackly-e2e-"))
    (hostnames / "e2e_worker_name.py").write_text(
        "import os\n\n\ndef worker_name():\n    return os.environ['E2E_WORKER_NAME']\n"
    )
    deployment = Deployment(
        WORK / "celery",
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres,
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": postgres_url(metadata, "db+postgresql"),
            # One task slot per worker (Airflow's Celery defaults: prefetch 1, acks late): while a
            # worker runs a task it takes no other, so days queued together land on both workers.
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW_CONN_TRACKLY_SOURCE": source_connection(database),
            "AIRFLOW_CONN_TRACKLY_DEFAULT": trackly_connection(sandbox_url),
        },
    )
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    try:
        with timings.step("celery: start api-server, scheduler, dag-processor, 2 workers"):
            deploy_dag(deployment, catchup[0])
            deployment.start_core()
            for name in ("worker1", "worker2"):
                deployment.start(
                    name,
                    "celery", "worker", "--celery-hostname", f"{name}@%h",
                    env={
                        "E2E_WORKER_NAME": name,
                        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "e2e_worker_name.worker_name",
                        "PYTHONPATH": str(hostnames),
                    },
                )  # fmt: skip
            for name in ("worker1", "worker2"):
                wait_for(f"{name} to be ready", lambda name=name: worker_ready(deployment, name), timeout=180)
            wait_for("the DAG to be parsed", lambda: dag_parsed(deployment), timeout=180)
        with timings.step("celery: connection form (hook_meta)"):
            check_connection_form(deployment)
        with timings.step("celery: catchup of 4 days over both workers"):
            set_faults(sandbox_url, latency_ms=1000)  # each day's import takes a while, so days overlap
            deployment.airflow("dags", "unpause", DAG_ID)
            runs = wait_for("4 scheduled runs", lambda: scheduled_runs(deployment, 4), timeout=120)
            host_of_day = {}
            for run in runs:
                start = datetime.fromisoformat(run["data_interval_start"]).date()
                days = nightly_days(start, catchup[0])
                found = run_and_check(
                    deployment, run["dag_run_id"], days, expected, sandbox_url, outcome=PARTLY_DUPLICATES
                )
                host_of_day.update({f"run {start}, day {day}": ti["hostname"] for day, ti in found.items()})
            assert set(host_of_day.values()) == {"worker1", "worker2"}, host_of_day
            timings.notes.append(f"Catchup imports per worker: {dict(sorted(host_of_day.items()))}.")
            set_faults(sandbox_url, latency_ms=0)
        with timings.step("celery: START_DATE moved back to the big day, before the catchup's"):
            move_start_date(deployment, big_day)  # the DAG refuses a range before START_DATE
        with timings.step("celery: kill -9 the worker importing a 40,006-row day; Airflow retries it"):
            set_faults(sandbox_url, latency_ms=2000)  # a slow API, so the kill lands mid-import
            run_id = trigger_cli(deployment, {"start_date": str(big_day), "end_date": str(big_day)})
            victim = wait_for(
                "the import to be half-way",
                lambda: importing_worker(deployment, run_id, big_day, sandbox_url),
                180,
                0.2,
            )
            stored_at_kill = stored_per_day(sandbox_url)[str(big_day)]
            deployment.kill(victim)
            print(
                f"   killed {victim} with {stored_at_kill} of {expected[big_day].valid} rows stored",
                flush=True,
            )
            set_faults(sandbox_url, latency_ms=0)
            found = run_and_check(
                deployment, run_id, [big_day], expected, sandbox_url, outcome=PARTLY_DUPLICATES, timeout=600
            )[str(big_day)]
            assert found["try_number"] == 2 and found["hostname"] != victim, found
            counts = found["counts"]
            assert counts["duplicates_skipped"] >= stored_at_kill, (counts, stored_at_kill)
            timings.notes.append(
                f"Killed {victim} with {stored_at_kill:,} of {expected[big_day].valid:,} valid rows stored; "
                f"try {found['try_number']} on {found['hostname']}: {counts['success_count']:,} imported, "
                f"{counts['duplicates_skipped']:,} duplicates, {counts['error_count']} errors, "
                f"{stored_per_day(sandbox_url)[str(big_day)]:,} stored."
            )
    finally:
        deployment.stop()


def worker_ready(deployment: Deployment, name: str) -> bool:
    """Whether the Celery worker ``name`` has connected to the broker and takes tasks."""
    deployment.check_running(name)
    return b" ready." in (deployment.home / "logs" / f"{name}.log").read_bytes()


def importing_worker(deployment: Deployment, run_id: str, day: date, sandbox_url: str) -> str | None:
    """The worker running ``day``'s import once part of it, not all, is stored."""
    stored = stored_per_day(sandbox_url)[str(day)]
    if not 0 < stored < 20_000:
        return None
    tis = deployment.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    (ti,) = [ti for ti in tis if ti["task_id"] == "import_clicks"]
    return str(ti["hostname"]) if ti["state"] == "running" else None


SCENARIOS = {"local": local_scenario, "celery": celery_scenario, "ui": ui_scenario}


def write_report(results: dict[str, Timings]) -> None:
    lines = [
        "# End-to-end runs",
        "",
        "Written by `make e2e` (`python -m e2e.run`): real `airflow api-server`, `scheduler` and",
        "`dag-processor`, the sandbox over HTTP, a PostgreSQL source; every step checked against the",
        "XCom counts of each day and the records the sandbox stored.",
        "",
        f"Run on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    for timings in results.values():
        lines += [f"| {name} | {seconds:.0f} |" for name, seconds in timings.steps]
    lines += ["", *(note for timings in results.values() for note in timings.notes)]
    images = [image for timings in results.values() for image in timings.images]
    if images:
        lines += ["", "## Screenshots", "", "Taken by the ui scenario in headless Chromium.", ""]
        lines += [f"{what}:\n\n![{what}]({name})\n" for name, what in images]
    (REPO / "docs" / "e2e.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    wanted = argv or list(SCENARIOS)
    results = {}
    WORK.mkdir(exist_ok=True)
    process, sandbox_url = start_sandbox(WORK)
    try:
        for name in wanted:
            results[name] = Timings()
            reset_sandbox(sandbox_url)
            SCENARIOS[name](results[name], sandbox_url)
    finally:
        stop_sandbox(process)
    write_report(results)
    for name, timings in results.items():
        print(f"{name}: {len(timings.steps)} steps passed in {sum(s for _, s in timings.steps):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
