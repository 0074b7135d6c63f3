"""The lines a real task logs (operators/_engine/import_log.py): the first, and the closing one."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.dag_runs import run_with_tries
from tests.helpers import clicks, utc

DAY = [utc(2025, 11, 15), utc(2025, 11, 16)]
DAY_SQL = (
    "SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM sms_clicks "
    "WHERE clicked_at >= ? AND clicked_at < ? ORDER BY id"
)


def test_the_log_names_the_day_and_connections_first_and_the_errors_by_code_last(
    airflow, sandbox, sqlite_source, task_output
):
    good = clicks(3)
    no_offer = ("msg-no-offer", None, "+12025550100", None, "2025-11-15 10:00:00")
    bad_phone_1 = ("msg-bad-1", "offer-1", "12", None, "2025-11-15 10:00:01")
    bad_phone_2 = ("msg-bad-2", "offer-1", "34", None, "2025-11-15 10:00:02")
    next_day = clicks(1, start=9, day=DAY[1])
    sqlite_source.insert_clicks([*good, no_offer, bad_phone_1, bad_phone_2, *next_day])
    result, tries = run_with_tries(airflow, sql=DAY_SQL, parameters=DAY, max_error_rate=0.5)
    assert (result.state, tries) == ("success", 1)
    log = task_output()
    host = urlsplit(sandbox.url).netloc
    first = log.index("Importing clicks, ")
    assert log[first:].startswith(
        "Importing clicks, the day 2025-11-15 ([2025-11-15T00:00:00+00:00, 2025-11-16T00:00:00+00:00]), "
        "from SQL connection 'trackly_source' (sql_conn_id) to Trackly connection 'trackly_default' "
        f"(trackly_conn_id, host {host})."
    )
    closing = re.search(r"Imported 6 rows of clicks in [\d.]+ s \([\d,]+ rows/s\): (.*)", log)
    assert closing is not None
    assert closing[1].startswith(
        "3 imported, 0 duplicates, 3 errors, 1 batch. Errors by code: invalid_phone_number 2, "
        "missing_offer_id 1."
    )
    assert first < closing.start()
    assert "Progress:" not in log  # a run under 30 s writes none
    assert sandbox.api_key not in log
