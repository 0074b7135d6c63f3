"""
ImportRun driven step by step, as a subclass's ``execute`` could: a real SQLite source through its
common-sql hook, the ledger in another SQLite file, and the sandbox over HTTP; no Airflow run.
"""

from __future__ import annotations

import logging

from tests.helpers import LEDGER_CONN_ID, SELECT_ALL, SOURCE_CONN_ID, clicks
from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.source import sql_hook
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators._engine.import_run import ImportRun, RunArguments
from trackly_provider.trackly_api.entities import CLICKS

LOG = logging.getLogger("tests.import_run")


def new_run(**arguments) -> ImportRun:
    given = {"sql": SELECT_ALL, "parameters": None, "batch_size": 2, "max_in_flight": 2, **arguments}
    return ImportRun(CLICKS, RunArguments(**given), LOG)


def test_a_run_driven_step_by_step_imports_every_row(sandbox, sqlite_source):
    sqlite_source.insert_clicks(clicks(5))
    run, trackly = new_run(), TracklyHook()
    try:
        run.start(sql_hook(SOURCE_CONN_ID), trackly)
        run.import_rows()
        assert run.finish() is None
    finally:
        trackly.close()
    summary = run.summary()
    assert (summary["rows_read"], summary["success_count"], summary["batches"]) == (5, 5, 3)
    assert sorted(record["message_id"] for record in sandbox.received()) == [f"msg-{n:07d}" for n in range(5)]
    assert [len(request) for request in sandbox.requests()] == [2, 2, 1]


def test_a_second_run_on_the_same_ledger_skips_every_confirmed_record_and_sends_nothing(
    sandbox, sqlite_source, ledger_db
):
    sqlite_source.insert_clicks(clicks(4))
    runs = []
    for _ in range(2):
        run, trackly = new_run(), TracklyHook()
        try:
            with ImportLedger(sql_hook(LEDGER_CONN_ID), "trackly_import_ledger", "clicks/day") as ledger:
                run.start(sql_hook(SOURCE_CONN_ID), trackly, ledger=ledger)
                run.import_rows()
                assert run.finish() is None
        finally:
            trackly.close()
        runs.append(run.summary())
    first, second = runs
    assert (first["success_count"], first["duplicates_skipped"], first["batches"]) == (4, 0, 2)
    assert (second["success_count"], second["duplicates_skipped"], second["batches"]) == (0, 4, 0)
    assert second["ledger"]["confirmed_before"] == 4
    assert second["ledger"]["skipped_confirmed"] == 4
    assert len(sandbox.requests()) == 2  # the first run's two batches only
