"""
ContactImportOperator through real Airflow (``dag.test()``), from real SQLite and PostgreSQL into the
sandbox over HTTP (``POST /api/v2/contacts/bulk``; /work/shared/trackly-api.md, "Contacts").

Each test is one or a few task runs and asserts, contact by contact, what the sandbox received
(``/_sandbox/state``: ``requests``, ``contacts``, ``list_contacts``, ``journey_enrolments``) and
what the run left behind (XCom, the task log, the rejects table, OpenLineage, the Asset event).
Every test uses phone numbers of its own, so a number found where it must not be is this test's.
"""

from __future__ import annotations

import importlib.util
import json
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.conftest import AIRFLOW_VERSION, OPENLINEAGE_EVENTS
from tests.dag_runs import run_with_tries
from tests.helpers import REJECTS_TABLE, AirflowRunner, RunResult
from tests.integration.test_assets import asset_events
from tests.integration.test_click_history_operator import EXPECTED_KEYS
from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators.contact_import import ContactImportOperator
from trackly_provider.sandbox import (
    NOT_SENDABLE_PREFIX,
    SANDBOX_LIST_NUMBER,
    SECOND_LIST_NUMBER,
    VALIDATION_FAILS_PREFIX,
)
from trackly_provider.trackly_api.entities import CONTACTS
from trackly_provider.utils.assets import trackly_asset

TASK_ID = "import_contacts"
UNKNOWN_LIST = "+18005550199"  # E.164, but no list of the sandbox's account
OFF = {"use_journeys": False, "use_validation": False}  # what every contact carries by default
XCOM_KEYS = EXPECTED_KEYS | {  # the history operators' keys, and the contacts' own
    "contacts_created",
    "list_contacts_created",
    "journeys_enrolled",
    "contacts_updated",
    "records_without_signup_date",
    "opt_ins",
}
SIGNUP_WARNING = (
    "{count} contact{s} (of {rows} rows read) {had} no signup_date: Trackly then records the time "
    "of the import as their signup date, which loses the consent evidence (TCPA) a migrated list must "
    "keep; select the original opt-in time AS signup_date."
)
JOURNEYS_WARNING = (
    "send_welcome_journeys=True: Trackly enrols each contact in its list's Welcome Journeys, which TEXT "
    "them (use_journeys: true); {run} sends it for {count} contacts{end}"
)
VALIDATION_WARNING = (
    "paid_phone_validation=True: Trackly runs a paid phone lookup per number (use_validation: true); "
    "{run} sends it for {count} contacts, up to ${cost} at $0.003 each (the vendor's price; cached "
    "lookups are free){end}"
)
DRY_RUN_END = ". Dry run: nothing is sent."
RUN_END = "."
PHONE_LIKE = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")  # a run of 7 or more digits, punctuated as numbers are


# --- running the operator ------------------------------------------------------------------------


def run_contacts(airflow: AirflowRunner, *, outlets: bool = False, **kwargs: Any) -> tuple[RunResult, int]:
    """
    One ``ContactImportOperator`` task run (``dag.test()``): its result and its last try number
    (``dag.test()`` runs Airflow's retries from 3.3 on). ``outlets``: the task updates the contacts
    Asset (``trackly_asset(CONTACTS)``), as a DAG scheduled on it would declare.
    """
    asset = "[trackly_asset(CONTACTS)]" if outlets else None
    return run_with_tries(airflow, "ContactImportOperator", TASK_ID, outlets=asset, **kwargs)


def account(sandbox: Any, **settings: Any) -> None:
    """The sandbox account's settings (``POST /_sandbox/account``: billing, enrol_regardless...)."""
    httpx.post(f"{sandbox.url}/_sandbox/account", json=settings).raise_for_status()


def counts(xcom: dict[str, Any], *extra_keys: str) -> tuple[int, int, int]:
    """(rows_read, success_count, error_count), checked: every key, no duplicates, the sums."""
    assert set(xcom) == XCOM_KEYS | set(extra_keys)
    assert xcom["duplicates_skipped"] == 0  # an upsert never skips
    done = xcom["records_to_send"] if xcom["dry_run"] else xcom["success_count"]
    assert done + xcom["error_count"] == xcom["rows_read"]
    assert sum(xcom["errors_by_code"].values()) == xcom["error_count"]
    assert xcom["contacts_updated"] == xcom["success_count"] - xcom["list_contacts_created"]
    return xcom["rows_read"], xcom["success_count"], xcom["error_count"]


def reference(number: str, default_region: str | None = None) -> str:
    """The contact_ref that names ``number`` on the sandbox's connection, as a user finds it."""
    return TracklyHook("trackly_default").contact_reference(number, default_region)


def sent_contacts(sandbox: Any) -> list[dict[str, Any]]:
    """Every contact the sandbox received, in order, across requests."""
    return [contact for request in sandbox.requests() for contact in request]


def phone_forms(number: str) -> set[str]:
    """``number`` (E.164, +1) as it could leak: E.164, without the '+', and its national 10 digits."""
    assert number.startswith("+1") and len(number) == 12
    return {number, number[1:], number[2:]}


def leaked(text: str, numbers: list[str]) -> list[str]:
    """The numbers found in ``text``: written whole, or as the digits of a punctuated run."""
    runs = ["".join(c for c in run if c.isdigit()) for run in PHONE_LIKE.findall(text)]
    return [
        number
        for number in numbers
        if any(form in text for form in phone_forms(number)) or any(number[2:] in run for run in runs)
    ]


def contacts_table(source: Any, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> str:
    """Create ``contacts`` (a ``row_id`` then ``columns``, typed for the source) holding ``rows``."""
    spec = ", ".join(["row_id INTEGER", *(f"{name} {kind}" for name, kind in columns.items())])
    marks = ", ".join(["?" if source.dialect == "sqlite" else "%s"] * (len(columns) + 1))
    numbered = [(index, *row) for index, row in enumerate(rows)]
    if source.dialect == "sqlite":
        source.execute("DROP TABLE IF EXISTS contacts")
        source.execute(f"CREATE TABLE contacts ({spec})")
        source.execute(f"INSERT INTO contacts VALUES ({marks})", numbered)
    else:
        source.tables.append("contacts")
        with source.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS contacts")
            cur.execute(f"CREATE TABLE contacts ({spec})")
            cur.executemany(f"INSERT INTO contacts VALUES ({marks})", numbered)
    return f"SELECT {', '.join(columns)} FROM contacts ORDER BY row_id"


# --- every error code, SQLite's JSON text, paid validation on a billed account -------------------

SQLITE_COLUMNS = {
    "phone_number": "TEXT",
    "list_number": "TEXT",
    "signup_date": "TEXT",
    "custom_note": "TEXT",
    "custom_visits": "INTEGER",
    "custom_fields": "TEXT",
}


def p1(n: int) -> str:
    return f"+1312471{n:04d}"


def padded_to(size: int, phone: str) -> str:
    """A custom_note that makes the contact ``size`` bytes as sent (paid validation on)."""
    empty = {"phone_number": phone, "list_number": SANDBOX_LIST_NUMBER, "custom_fields": {"note": ""}}
    empty.update(use_journeys=False, use_validation=True)
    return "n" * (size - len(json.dumps(empty, separators=(",", ":"))))


def test_every_contact_error_code_is_counted_by_row_and_the_valid_contacts_arrive_exactly(
    airflow, sandbox, sqlite_source, task_output
):
    voip, fails_validation = NOT_SENDABLE_PREFIX + "2849163", VALIDATION_FAILS_PREFIX + "3817264"
    json_fields = '{"note": "json", "vip": true, "ratio": 1.5, "big": 9007199254740991, "skip": null}'
    rows = [
        (p1(0), SANDBOX_LIST_NUMBER, "2025-01-02 03:04:05", "col", 7, json_fields),  # 0: imported
        (None, SANDBOX_LIST_NUMBER, "2025-01-02 03:04:05", None, None, None),  # 1
        ("12345", SANDBOX_LIST_NUMBER, None, None, None, None),  # 2
        (p1(3), None, None, None, None, None),  # 3
        (p1(4), "list-one", None, None, None, None),  # 4
        (p1(5), SANDBOX_LIST_NUMBER, "15/11/2025", None, None, None),  # 5
        (p1(6), SANDBOX_LIST_NUMBER, None, None, None, '{"nested": {"a": 1}}'),  # 6
        (p1(7), SANDBOX_LIST_NUMBER, None, padded_to(4001, p1(7)), None, None),  # 7: 1 byte over
        (p1(8), SANDBOX_LIST_NUMBER, None, padded_to(4000, p1(8)), None, None),  # 8: imported
        (p1(9), UNKNOWN_LIST, "2025-01-02", None, None, None),  # 9
        (voip, SANDBOX_LIST_NUMBER, "2025-01-02", None, None, None),  # 10
        (fails_validation, SECOND_LIST_NUMBER, "2025-01-02", None, None, None),  # 11
        (p1(12), SECOND_LIST_NUMBER, None, None, 0, "{}"),  # 12: imported
    ]
    sql = contacts_table(sqlite_source, SQLITE_COLUMNS, rows)
    account(sandbox, billing=True)

    result, _ = run_contacts(airflow, sql=sql, paid_phone_validation=True, batch_size=4, max_error_rate=1.0)

    assert result.state == "success"
    xcom = result.xcom
    assert counts(xcom, "use_validation_cost_usd_at_most") == (13, 3, 10)
    assert xcom["errors_by_code"] == {
        "missing_phone_number": 1,
        "invalid_phone": 1,
        "missing_list_number": 1,
        "invalid_list_number": 1,
        "invalid_signup_date": 1,
        "invalid_custom_fields": 1,
        "record_too_large": 1,
        "list_not_found": 1,
        "not_sendable": 1,
        "validation_failed": 1,
    }
    rejected = [(e["index"], e["contact_ref"], e["code"]) for e in xcom["errors"]]
    assert rejected == [
        (1, None, "missing_phone_number"),  # no number read: nothing to name it by
        (2, None, "invalid_phone"),
        (3, reference(p1(3)), "missing_list_number"),
        (4, reference(p1(4)), "invalid_list_number"),
        (5, reference(p1(5)), "invalid_signup_date"),
        (6, reference(p1(6)), "invalid_custom_fields"),
        (7, reference(p1(7)), "record_too_large"),
        (9, reference(p1(9)), "list_not_found"),
        (10, reference(voip), "not_sendable"),
        (11, reference(fails_validation), "validation_failed"),
    ]
    texts = {e["index"]: e["error"] for e in xcom["errors"]}
    assert texts[6] == (
        "custom field 'nested' holds a JSON object. A custom field takes text, a number or a boolean: "
        "cast it in the query (CAST(col AS CHAR))."
    )
    assert texts[7] == (
        "the contacts record is 4,001 bytes as JSON, over the API's 4,000 bytes per record; its largest "
        "field, custom_fields, is 3,881 bytes. Shorten its column(s) in the query (custom fields: the "
        "custom_fields column and the custom_<key> ones)."
    )
    for index in (9, 10, 11):  # the API's texts repeat the number: it is redacted on arrival
        assert "[redacted]" in texts[index] and not PHONE_LIKE.search(texts[index])
    assert (xcom["contacts_created"], xcom["list_contacts_created"], xcom["journeys_enrolled"]) == (3, 3, 0)
    assert xcom["contacts_updated"] == 0
    assert xcom["records_without_signup_date"] == 2  # rows 8 and 12; rejected rows are not counted
    assert xcom["opt_ins"] == {"use_journeys": False, "use_validation": True}
    assert xcom["use_validation_cost_usd_at_most"] == "0.018"  # the 6 contacts sent

    # Record by record: only rows that can be valid were sent, each with both opt-ins explicit.
    validated = {"use_journeys": False, "use_validation": True}
    assert sandbox.requests() == [
        [
            {
                "phone_number": p1(0),
                "list_number": SANDBOX_LIST_NUMBER,
                "signup_date": "2025-01-02T03:04:05+00:00",
                # the JSON text's fields; the custom_<key> columns win; JSON null left out
                "custom_fields": {
                    "note": "col",
                    "vip": True,
                    "ratio": 1.5,
                    "big": 9007199254740991,
                    "visits": 7,
                },
                **validated,
            },
            {
                "phone_number": p1(8),
                "list_number": SANDBOX_LIST_NUMBER,
                "custom_fields": {"note": padded_to(4000, p1(8))},
                **validated,
            },
            {
                "phone_number": p1(9),
                "list_number": UNKNOWN_LIST,
                "signup_date": "2025-01-02T00:00:00+00:00",
                **validated,
            },
            {
                "phone_number": voip,
                "list_number": SANDBOX_LIST_NUMBER,
                "signup_date": "2025-01-02T00:00:00+00:00",
                **validated,
            },
        ],
        [
            {
                "phone_number": fails_validation,
                "list_number": SECOND_LIST_NUMBER,
                "signup_date": "2025-01-02T00:00:00+00:00",
                **validated,
            },
            {
                "phone_number": p1(12),
                "list_number": SECOND_LIST_NUMBER,
                "custom_fields": {"visits": 0},
                **validated,
            },
        ],
    ]
    assert len(json.dumps(sandbox.requests()[0][1], separators=(",", ":"))) == 4000
    assert sorted(sandbox.state()["contacts"]) == [p1(0), p1(8), p1(12)]

    log = task_output()
    announced = VALIDATION_WARNING.format(run="this run", count=13, cost="0.039", end=RUN_END)
    assert log.count(announced) == 1
    assert log.index(announced) < log.index("Imported 13 rows of contacts")
    assert log.count(SIGNUP_WARNING.format(count=2, s="s", rows=13, had="had")) == 1
    assert f"Rejected row 4 (contact_ref {reference(p1(4))}): invalid_list_number: column list_number" in log
    numbers = [p1(n) for n in (0, 3, 4, 5, 6, 7, 8, 9, 12)] + [voip, fails_validation]
    numbers += [SANDBOX_LIST_NUMBER, SECOND_LIST_NUMBER, UNKNOWN_LIST]
    assert leaked(log + json.dumps(xcom), numbers) == []


def test_a_non_bool_opt_in_is_refused_when_the_dag_is_parsed():
    for argument in ("send_welcome_journeys", "paid_phone_validation"):
        for value in ("True", "{{ params.journeys }}", 1, None):
            with pytest.raises(TracklyConfigError) as raised:
                ContactImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="x", **{argument: value})
            assert str(raised.value) == (
                f"{argument} must be True or False, written in the DAG (got {type(value).__name__}): it "
                "decides whether Trackly texts or bills for every contact, so it is never templated or "
                "read from text."
            )


# --- custom fields from PostgreSQL's columns and jsonb; a rerun; a merge --------------------------

PG_COLUMNS = {
    "phone_number": "TEXT",
    "list_number": "TEXT",
    "signup_date": "TIMESTAMPTZ",
    "ip_address": "TEXT",
    "url": "TEXT",
    "custom_plan": "TEXT",
    "custom_visits": "BIGINT",
    "custom_vip": "BOOLEAN",
    "custom_score": "NUMERIC(12, 2)",
    "custom_gone": "TEXT",
    "custom_fields": "JSONB",
}


MARCH = "2025-03-04T05:06:07+00:00"


def p2(n: int) -> str:
    return f"+1646382{n:04d}"


def pg_row(phone: str, list_number: str, **values: Any) -> tuple[Any, ...]:
    """A row of ``PG_COLUMNS``: ``values`` by column name (custom_fields as a dict), NULL elsewhere."""
    from psycopg.types.json import Jsonb

    if values.get("custom_fields") is not None:
        values["custom_fields"] = Jsonb(values["custom_fields"])
    row = {**dict.fromkeys(PG_COLUMNS), "phone_number": phone, "list_number": list_number, **values}
    assert list(row) == list(PG_COLUMNS)
    return tuple(row.values())


def pg_rows(first: bool) -> list[tuple[Any, ...]]:
    """Four contacts; the second import (``first`` False) changes some of their fields."""
    signup = "2025-03-04 05:06:07+00"
    if first:
        a_fields = {
            "plan": "from-json",
            "tier": 3,
            "beta": False,
            "ratio": 0.25,
            "note": None,
            "city": "Pune",
        }
        return [
            pg_row(
                p2(0),
                SANDBOX_LIST_NUMBER,
                signup_date=signup,
                ip_address="203.0.113.7",
                url="https://example.com/join",
                custom_plan="gold",
                custom_visits=42,
                custom_vip=True,
                custom_score=Decimal("12.50"),
                custom_fields=a_fields,
            ),
            pg_row(
                p2(1), SECOND_LIST_NUMBER, custom_visits=0, custom_vip=False, custom_score=Decimal("7.00")
            ),
            pg_row(p2(2), SECOND_LIST_NUMBER, signup_date=signup, custom_fields={}),
            pg_row(p2(3), SANDBOX_LIST_NUMBER, custom_plan="", custom_fields={"gone": "from-json"}),
        ]
    return [
        pg_row(p2(0), SANDBOX_LIST_NUMBER, custom_plan="platinum", custom_fields={"tier": 4, "new": "yes"}),
        pg_row(p2(1), SECOND_LIST_NUMBER, custom_vip=True, custom_gone="now"),
        pg_row(p2(2), SANDBOX_LIST_NUMBER),  # a second list for this contact
        pg_row(p2(3), SANDBOX_LIST_NUMBER),
    ]


def test_custom_fields_from_columns_and_jsonb_a_rerun_changes_nothing_and_an_update_merges(
    airflow, sandbox, postgres_source, task_output
):
    sql = contacts_table(postgres_source, PG_COLUMNS, pg_rows(first=True))
    first, _ = run_contacts(airflow, sql=sql)
    assert first.state == "success"
    assert counts(first.xcom) == (4, 4, 0)
    assert (first.xcom["contacts_created"], first.xcom["list_contacts_created"]) == (4, 4)
    assert (first.xcom["contacts_updated"], first.xcom["journeys_enrolled"]) == (0, 0)
    assert first.xcom["records_without_signup_date"] == 2
    assert first.xcom["opt_ins"] == {"use_journeys": False, "use_validation": False}
    expected = [
        {
            "phone_number": p2(0),
            "list_number": SANDBOX_LIST_NUMBER,
            "signup_date": MARCH,
            "ip_address": "203.0.113.7",
            "url": "https://example.com/join",
            "custom_fields": {
                "plan": "gold",  # the column wins over the JSON's "from-json"
                "tier": 3,
                "beta": False,
                "ratio": 0.25,
                "city": "Pune",  # the JSON's null "note" left out
                "visits": 42,
                "vip": True,
                "score": 12.5,  # NUMERIC 12.50: not whole, a double
            },
            **OFF,
        },
        {
            "phone_number": p2(1),
            "list_number": SECOND_LIST_NUMBER,
            "custom_fields": {"visits": 0, "vip": False, "score": 7},  # 7.00 is whole: a whole number
            **OFF,
        },
        # No custom field at all (NULL columns, an empty object): no custom_fields key.
        {"phone_number": p2(2), "list_number": SECOND_LIST_NUMBER, "signup_date": MARCH, **OFF},
        # A NULL custom_gone column gives no value, so the JSON's "gone" stays; "" is text.
        {
            "phone_number": p2(3),
            "list_number": SANDBOX_LIST_NUMBER,
            "custom_fields": {"gone": "from-json", "plan": ""},
            **OFF,
        },
    ]
    assert sandbox.requests() == [expected]
    after_first = sandbox.state()
    held = [(m["phone_number"], m["list_number"], m["custom_fields"]) for m in after_first["list_contacts"]]
    assert held == [(c["phone_number"], c["list_number"], c.get("custom_fields", {})) for c in expected]
    assert task_output().count(SIGNUP_WARNING.format(count=2, s="s", rows=4, had="had")) == 1

    # The same rows again: Trackly updates what it has, so nothing changes and nothing is created.
    again, _ = run_contacts(airflow, sql=sql)
    assert again.state == "success"
    assert counts(again.xcom) == (4, 4, 0)
    assert (again.xcom["contacts_created"], again.xcom["list_contacts_created"]) == (0, 0)
    assert again.xcom["contacts_updated"] == again.xcom["success_count"] == 4
    state = sandbox.state()
    assert sandbox.requests() == [expected, expected]
    for part in ("contacts", "list_contacts", "journey_enrolments"):
        assert state[part] == after_first[part], part

    # Changed rows: the custom fields sent are merged into what the list contact holds.
    contacts_table(postgres_source, PG_COLUMNS, pg_rows(first=False))
    update, _ = run_contacts(airflow, sql=sql)
    assert counts(update.xcom) == (4, 4, 0)
    assert (update.xcom["contacts_created"], update.xcom["list_contacts_created"]) == (0, 1)
    assert update.xcom["contacts_updated"] == 3
    assert update.xcom["records_without_signup_date"] == 4
    assert sandbox.requests()[2] == [
        {
            "phone_number": p2(0),
            "list_number": SANDBOX_LIST_NUMBER,
            "custom_fields": {"tier": 4, "new": "yes", "plan": "platinum"},
            **OFF,
        },
        {
            "phone_number": p2(1),
            "list_number": SECOND_LIST_NUMBER,
            "custom_fields": {"vip": True, "gone": "now"},
            **OFF,
        },
        {"phone_number": p2(2), "list_number": SANDBOX_LIST_NUMBER, **OFF},
        {"phone_number": p2(3), "list_number": SANDBOX_LIST_NUMBER, **OFF},
    ]
    held = {(m["phone_number"], m["list_number"]): m for m in sandbox.state()["list_contacts"]}
    assert held[p2(0), SANDBOX_LIST_NUMBER]["custom_fields"] == {
        "plan": "platinum",
        "tier": 4,
        "beta": False,
        "ratio": 0.25,
        "city": "Pune",
        "visits": 42,  # a NULL column leaves the key out: Trackly keeps the value it has
        "vip": True,
        "score": 12.5,
        "new": "yes",
    }
    assert held[p2(0), SANDBOX_LIST_NUMBER]["signup_date"] == MARCH  # kept
    assert held[p2(1), SECOND_LIST_NUMBER]["custom_fields"] == {
        "visits": 0,
        "vip": True,
        "score": 7,
        "gone": "now",
    }
    assert held[p2(2), SECOND_LIST_NUMBER]["custom_fields"] == {}
    assert held[p2(2), SANDBOX_LIST_NUMBER]["custom_fields"] == {}
    assert held[p2(3), SANDBOX_LIST_NUMBER]["custom_fields"] == {"gone": "from-json", "plan": ""}
    assert sorted(sandbox.state()["contacts"]) == [p2(n) for n in range(4)]


# --- the opt-ins -------------------------------------------------------------------------------------

OPT_IN_COLUMNS = {"phone_number": "TEXT", "list_number": "TEXT", "signup_date": "TEXT"}
FEBRUARY = "2025-02-01T00:00:00+00:00"


def p3(n: int) -> str:
    return f"+1720593{n:04d}"


def test_welcome_journeys_are_sent_only_when_asked_announced_first_and_never_twice(
    airflow, sandbox, sqlite_source, task_output
):
    rows = [
        (p3(0), SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00"),
        (p3(1), SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00"),
        (p3(2), SECOND_LIST_NUMBER, "2025-02-01 00:00:00"),  # a list without journeys
        (p3(3), SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00"),
        (p3(4), SECOND_LIST_NUMBER, "2025-02-01 00:00:00"),
        (None, SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00"),  # counted by COUNT(*), never sent
    ]
    sql = contacts_table(sqlite_source, OPT_IN_COLUMNS, rows)
    first, _ = run_contacts(airflow, sql=sql, send_welcome_journeys=True, max_error_rate=0.5, batch_size=2)

    assert first.state == "success"
    assert counts(first.xcom) == (6, 5, 1)
    assert first.xcom["journeys_enrolled"] == 3
    assert first.xcom["opt_ins"] == {"use_journeys": True, "use_validation": False}
    journeys = {"use_journeys": True, "skip_journey_if_exists": True, "use_validation": False}
    # Requests after the first may arrive in any order: contacts compared by phone number.
    assert sorted(sent_contacts(sandbox), key=lambda contact: contact["phone_number"]) == [
        {"phone_number": phone, "list_number": list_number, "signup_date": FEBRUARY, **journeys}
        for phone, list_number, _ in rows[:5]
    ]
    enrolled = [{"phone_number": p3(n), "list_number": SANDBOX_LIST_NUMBER} for n in (0, 1, 3)]
    assert sandbox.state()["journey_enrolments"] == enrolled
    log = task_output()
    announced = JOURNEYS_WARNING.format(run="this run", count=6, end=RUN_END)
    assert log.count(announced) == 1
    assert log.index(announced) < log.index("Imported 6 rows of contacts")
    assert "Trackly warned" not in log  # the list's journeys were asked for

    # A rerun texts nobody again: skip_journey_if_exists.
    again, _ = run_contacts(airflow, sql=sql, send_welcome_journeys=True, max_error_rate=0.5, batch_size=2)
    assert (again.state, again.xcom["journeys_enrolled"], again.xcom["contacts_updated"]) == ("success", 0, 5)
    assert sandbox.state()["journey_enrolments"] == enrolled


def test_a_dry_run_announces_both_opt_ins_and_sends_nothing(airflow, sandbox, sqlite_source, task_output):
    rows = [
        (f"+1503927{n:04d}", SANDBOX_LIST_NUMBER, None if n == 2 else "2025-02-01 00:00:00") for n in range(3)
    ]
    sql = contacts_table(sqlite_source, OPT_IN_COLUMNS, [*rows, ("+1503927", SANDBOX_LIST_NUMBER, None)])
    account(sandbox, billing=True)
    result, _ = run_contacts(
        airflow,
        sql=sql,
        send_welcome_journeys=True,
        paid_phone_validation=True,
        dry_run=True,
        max_error_rate=0.5,
    )
    assert result.state == "success"
    assert counts(result.xcom, "use_validation_cost_usd_at_most", "records_to_send") == (4, 0, 1)
    assert (result.xcom["dry_run"], result.xcom["records_to_send"]) == (True, 3)
    assert result.xcom["opt_ins"] == {"use_journeys": True, "use_validation": True}
    assert result.xcom["use_validation_cost_usd_at_most"] == "0.009"
    assert result.xcom["records_without_signup_date"] == 1
    state = sandbox.state()
    assert (state["requests_seen"], state["requests"], state["contacts"]) == (0, [], {})
    log = task_output()
    journeys = JOURNEYS_WARNING.format(run="a real run", count=4, end=DRY_RUN_END)
    validation = VALIDATION_WARNING.format(run="a real run", count=4, cost="0.012", end=DRY_RUN_END)
    assert (log.count(journeys), log.count(validation)) == (1, 1)
    assert log.index(journeys) < log.index(validation) < log.index("Dry run: read 4 rows")
    assert log.count(SIGNUP_WARNING.format(count=1, s="", rows=4, had="would have")) == 1


def test_paid_validation_without_billing_fails_after_one_request_without_retries(
    airflow, sandbox, sqlite_source
):
    rows = [(f"+1617284{n:04d}", SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00") for n in range(5)]
    sql = contacts_table(sqlite_source, OPT_IN_COLUMNS, rows)
    result, tries = run_contacts(
        airflow, sql=sql, paid_phone_validation=True, batch_size=2, retries=2, retry_delay=0
    )
    assert (result.state, tries) == ("failed", 1)
    assert result.xcom["failed"] == "TracklyBillingError"
    assert result.xcom["success_count"] == 0
    state = sandbox.state()
    # The first request goes alone: Trackly refused it whole (402), and nothing else was sent.
    assert state["requests_seen"] == 1
    assert (state["contacts"], state["list_contacts"], state["validation_lookups"]) == ({}, [], 0)


@pytest.mark.reads_failed_task_log
def test_journeys_enrolled_without_being_asked_stop_the_import_at_once(
    airflow, sandbox, sqlite_source, task_output
):
    rows = [(f"+1415736{n:04d}", SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00") for n in range(5)]
    sql = contacts_table(sqlite_source, OPT_IN_COLUMNS, rows)
    account(sandbox, enrol_regardless=True)  # a server that enrols journey lists' contacts anyway
    result, tries = run_contacts(airflow, sql=sql, batch_size=2, retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    assert result.xcom["failed"] == "TracklyUnrequestedEffectError"
    assert result.xcom["opt_ins"] == {"use_journeys": False, "use_validation": False}
    state = sandbox.state()
    assert state["requests_seen"] == 1  # the first request, sent alone; nothing after its answer
    assert [contact["use_journeys"] for contact in sent_contacts(sandbox)] == [False, False]
    assert len(state["journey_enrolments"]) == 2
    assert (
        "TracklyUnrequestedEffectError: Trackly answered journeys_enrolled = 2 although every contacts "
        "record was sent with use_journeys: false, which should mean it never enrols each contact in its "
        "list's Welcome Journeys, which TEXT them. The import stopped at once, without retries."
    ) in task_output()
    # The summary holds every answer received: this one stored 2 contacts and enrolled them.
    assert (result.xcom["journeys_enrolled"], result.xcom["success_count"]) == (2, 2)


@pytest.mark.reads_failed_task_log
def test_a_rejected_contact_over_max_error_rate_fails_naming_it_by_reference_with_the_counts_pushed(
    airflow, sandbox, sqlite_source, task_output
):
    rows = [(f"+1608451{n:04d}", SANDBOX_LIST_NUMBER, "2025-02-01 00:00:00") for n in range(3)]
    rows[1] = (rows[1][0], "list-one", rows[1][2])
    sql = contacts_table(sqlite_source, OPT_IN_COLUMNS, rows)
    result, tries = run_contacts(airflow, sql=sql, retries=2, retry_delay=0)  # max_error_rate 0.0
    assert (result.state, tries) == ("failed", 1)
    assert counts(result.xcom) == (3, 2, 1)
    assert [(e["index"], e["contact_ref"], e["code"]) for e in result.xcom["errors"]] == [
        (1, reference(rows[1][0]), "invalid_list_number")
    ]
    assert [contact["phone_number"] for contact in sent_contacts(sandbox)] == [rows[0][0], rows[2][0]]
    log = task_output()
    assert (
        "TracklyErrorRateExceededError: 1 of 3 rows (33.33%) was rejected, more than max_error_rate=0 "
        "allows. Imported 2, duplicates 0. Errors by code: invalid_list_number 1. First errors: row 1 "
        "(contact_ref "
        f"{reference(rows[1][0])}): invalid_list_number."
    ) in log
    assert leaked(log, [row[0] for row in rows] + [SANDBOX_LIST_NUMBER]) == []


# --- no phone number anywhere -------------------------------------------------------------------

LEAK_COLUMNS = {
    "phone_number": "TEXT",
    "list_number": "TEXT",
    "signup_date": "TEXT",
    "custom_note": "TEXT",
    "custom_fields": "TEXT",
}


def test_no_phone_number_anywhere_when_every_contact_is_rejected(
    airflow, sandbox, sqlite_source, task_output
):
    """National numbers (``default_region="US"``) of this test alone; every row rejected, the run kept."""
    national = {n: f"(919) 264-{8300 + n}" for n in range(6)}
    e164 = {n: f"+1919264{8300 + n}" for n in range(6)}
    voip_national = "555 284 7731"
    rows = [
        (national[0], UNKNOWN_LIST, None, None, None),  # list_not_found (the API)
        (voip_national, "800 555 0100", None, None, None),  # not_sendable (the API)
        (national[1], "800-555-01", None, None, None),  # invalid_list_number
        (national[2], "800 555 0100", "yesterday", None, None),  # invalid_signup_date
        (national[3], "800 555 0100", None, None, '{"call": [1, 2]}'),  # invalid_custom_fields
        (national[4], "800 555 0100", None, "x" * 4000, None),  # record_too_large
        ("919264830", "800 555 0100", None, None, None),  # invalid_phone: 9 digits
    ]
    sql = contacts_table(sqlite_source, LEAK_COLUMNS, rows)
    result, _ = run_contacts(
        airflow,
        outlets=True,
        sql=sql,
        default_region="US",
        max_error_rate=1.0,
        rejects_table=REJECTS_TABLE,
    )

    assert result.state == "success"
    xcom = result.xcom
    assert counts(xcom) == (7, 0, 7)
    voip = NOT_SENDABLE_PREFIX + "2847731"
    refs = [reference(national[0], "US"), reference(voip_national, "US")]
    refs += [reference(national[n], "US") for n in range(1, 5)]
    assert refs[0] == reference(e164[0]) and refs[1] == reference(voip)
    expected = [
        (0, refs[0], "list_not_found"),
        (1, refs[1], "not_sendable"),
        (2, refs[2], "invalid_list_number"),
        (3, refs[3], "invalid_signup_date"),
        (4, refs[4], "invalid_custom_fields"),
        (5, refs[5], "record_too_large"),
        (6, None, "invalid_phone"),
    ]
    assert [(e["index"], e["contact_ref"], e["code"]) for e in xcom["errors"]] == expected
    assert [(c["phone_number"], c["list_number"]) for c in sent_contacts(sandbox)] == [
        (e164[0], UNKNOWN_LIST),
        (voip, SANDBOX_LIST_NUMBER),
    ]
    assert sandbox.state()["contacts"] == {}

    rejects = sqlite_source.query(
        f"SELECT row_index, message_id, code FROM {REJECTS_TABLE} ORDER BY row_index"
    )
    assert rejects == expected
    every_reject_value = json.dumps(sqlite_source.query(f"SELECT * FROM {REJECTS_TABLE}"))

    (extra,) = asset_events(trackly_asset(CONTACTS).uri, result.run_id)
    assert (extra["entity"], extra["rows_read"], extra["error_count"], extra["success_count"]) == (
        "contacts",
        7,
        7,
        0,
    )
    job = f"{result.dag_id}.{TASK_ID}"
    lines = OPENLINEAGE_EVENTS.read_text().splitlines() if OPENLINEAGE_EVENTS.exists() else []
    events = [event for event in map(json.loads, lines) if event["job"]["name"] == job]
    if importlib.util.find_spec("airflow.providers.openlineage"):
        assert [event["eventType"] for event in events] == ["START", "COMPLETE"]
        assert events[1]["outputs"][0]["name"] == "contacts"
        assert events[1]["run"]["facets"]["trackly_import"]["errors_by_code"] == xcom["errors_by_code"]

    log = task_output()
    assert "Rejected row 0 (contact_ref" in log  # the log was read
    numbers = [*e164.values(), voip, SANDBOX_LIST_NUMBER, UNKNOWN_LIST]
    written = [*national.values(), voip_national, "919264830", "800 555 0100", "800-555-01"]
    for where, text in {
        "log": log,
        "xcom": json.dumps(xcom),
        "rejects table": every_reject_value,
        "openlineage": json.dumps(events),
        "asset event": json.dumps(extra),
    }.items():
        assert leaked(text, numbers) == [], where
        assert [value for value in written if value in text] == [], where


if AIRFLOW_VERSION < (3, 1):  # its dag.test() registers no Asset (see tests/helpers.register_history_assets)

    @pytest.fixture(autouse=True)
    def _contacts_asset_registered(airflow_home: Any) -> None:
        from airflow.models.asset import AssetActive, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        asset = trackly_asset(CONTACTS)
        with create_session() as session:
            if session.scalar(select(AssetModel).where(AssetModel.uri == asset.uri)) is None:
                model = AssetModel(name=asset.name, uri=asset.uri, group=asset.group, extra=asset.extra)
                session.add(model)
                session.add(AssetActive.for_asset(model))
