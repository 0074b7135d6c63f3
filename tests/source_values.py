"""
The tables of tests/integration/test_source_values.py: for each database (and MySQL driver) and entity, a real
table whose columns have that database's usual types, holding good rows around one row per unusual
value, and what must become of every row.

A table holds 3 good rows, one row per unusual value (a ``Case``: one cell of a good row changed),
3 good rows and, for the entities Trackly deduplicates, the first good row again (a duplicate).
A case is ``accept``-ed (the record Trackly must receive) or ``reject``-ed (the code, and what the
rejection must say the column holds).

Where each unusual value lives, and why there: a column has one type for every row of a query (but
in SQLite, and in a JSON column), so a type no good row could hold sits in an optional column (left
out by the good rows, whose value is NULL): ``list_id``, ``list_number``, ``send_type`` (sends),
``attribution_type`` (revenue).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from tests.databases import mariadb_connection, postgres_connection
from tests.helpers import MariaDbSource, PostgresSource
from trackly_provider.trackly_api.entities import CLICKS, REVENUE, SENDS, Entity
from trackly_provider.trackly_api.limits import MAX_BODY_BYTES
from trackly_provider.trackly_api.values import FIXES

REJECTS_TABLE = "values_rejects"
LEDGER_TABLE = "values_ledger"
GOOD_ROWS = 3  # before and after the unusual ones
NUMBER = re.compile(r"\+?\d[\d\s().-]{5,}\d")  # seven digits or more, maybe with separators


def opaque(type_name: str) -> str:
    """How a rejection describes a PostgreSQL type loaded without its value (postgres_types)."""
    return f"a PostgreSQL {type_name} (cast it in the query: CAST(col AS text) or CAST(col AS numeric))"


# Phone numbers, in every form sources hold them; each line's E.164 is what Trackly must receive.
WITHOUT_PLUS = "12025550143"  # the country code but no '+': a national number without default_region
FORMATTED = "+1 (202) 555-0143"  # -> +12025550143
TEL_URI = "tel:+1-202-555-0143"  # RFC 3966 -> +12025550143
NOT_A_NUMBER = "abc"
TEN_KB = ("+12025550143," * 788)[:10_240]  # a list of numbers pasted into one field
SHORT_E164 = "+6834002"  # Niue: 7 digits, valid E.164
AS_INTEGER = 12_025_550_143  # a BIGINT phone column: digits, no '+'
NOT_UTF8_PHONE = b"+14155559876\xff"  # SQLite TEXT holding an invalid byte

# Timestamps whose instant in UTC falls outside years 1 to 9999, and the last ones inside.
YEAR_1_EAST = "0001-01-01T00:00:00+01:00"  # 0000-12-31T23:00Z
YEAR_9999_WEST = "9999-12-31T23:59:59-01:00"  # 10000-01-01T00:59:59Z
YEAR_1_UTC = "0001-01-01T00:00:00+00:00"
YEAR_9999_UTC = "9999-12-31T23:59:59+00:00"

# Bytes: Latin-1 text (not UTF-8), a binary UUID that is not UTF-8, and the binary UUID that
# happens to decode (44670959-5b44-47cf-b62e-772b5a32535c, 'Dg\tY[DG϶.w+Z2S\\': a tab inside).
LATIN1_ID = "café-7".encode("latin-1")
BINARY_UUID = UUID("9a79a29a-ecf1-41f1-b4ef-02fc0a0b0c0d").bytes
DECODABLE_UUID = UUID("44670959-5b44-47cf-b62e-772b5a32535c").bytes

SIX_MIB_MESSAGE = ("Your code is 123456. " * 314_573)[: 6 * 1024 * 1024]


@dataclass(frozen=True)
class Sql:
    """A cell written into the INSERT as SQL (a cast, a special value), not bound as a parameter."""

    text: str
    value: Any = None  # what it stores, for the phone-number leak check


@dataclass(frozen=True)
class Case:
    """One unusual row: the cells it changes in a good row, and what must become of it."""

    cells: dict[str, Any]
    record: dict[str, Any] | None = None  # accepted: the record's fields that differ (None: left out)
    field: str = ""  # rejected: the record field the rejection names
    code: str = ""
    holds: str | None = None  # what the rejection says the column holds; None: NULL (missing_...)

    @property
    def accepted(self) -> bool:
        return not self.code


def accept(record: dict[str, Any] | None = None, **cells: Any) -> Case:
    return Case(cells, record=record or {})


def reject(field: str, code: str, holds: str | None, **cells: Any) -> Case:
    return Case(cells, field=field, code=code, holds=holds)


@dataclass(frozen=True)
class Row:
    """A row as inserted, and what it must become: a record sent, or an XCom ``errors`` entry."""

    cells: dict[str, Any]
    record: dict[str, Any] | None
    error: dict[str, Any] | None


def rejection_text(entity: Entity, case: Case) -> str:
    """The rejection's text as the row builder writes it (records.py, values.why_invalid)."""
    if case.holds is None:
        return f"column {case.field} is NULL or empty"
    if case.code == "record_too_large":
        return (
            f"column {case.field} holds {case.holds}: the record would not fit in the API's "
            f"{MAX_BODY_BYTES:,}-byte request body. Shorten it in the query: LEFT(col, 10000) or "
            "SUBSTRING(col, 1, 10000)."
        )
    kind = next(f.kind for f in entity.fields if f.name == case.field)
    return f"column {case.field} holds {case.holds}, not a valid {case.field}. {FIXES[kind]}"


@dataclass(frozen=True)
class ValueTable:
    """A table of one entity in one database: its columns, its query, its good rows and its cases."""

    entity: Entity
    columns: dict[str, str]  # column -> SQL type (``row_no``, the query's order, comes first)
    select: str  # the query's column list, aliased to the record's fields
    good: Callable[[int], tuple[dict[str, Any], dict[str, Any]]]  # row index -> (cells, record)
    cases: tuple[Case, ...]
    phone_columns: tuple[str, ...]
    label: str = ""  # the table's name after ``values_``: the entity's by default

    @property
    def name(self) -> str:
        return f"values_{self.label or self.entity.name}"

    @property
    def sql(self) -> str:
        return f"SELECT {self.select} FROM {self.name} ORDER BY row_no"

    def rows(self) -> list[Row]:
        """The rows, in query order."""
        rows = [self._good_row(i) for i in range(GOOD_ROWS)]
        rows += [self._case_row(GOOD_ROWS + n, case) for n, case in enumerate(self.cases)]
        rows += [self._good_row(len(rows) + i) for i in range(GOOD_ROWS)]
        if self.entity.deduplicated:  # the first good row again: Trackly skips it
            rows.append(Row({**rows[0].cells}, rows[0].record, None))
        assert len(rows) < 60, "row indexes are seconds of a minute in the good rows' timestamps"
        return rows

    def _good_row(self, index: int) -> Row:
        cells, record = self.good(index)
        return Row(cells, record, None)

    def _case_row(self, index: int, case: Case) -> Row:
        cells, record = self.good(index)
        cells = {**cells, **case.cells}
        if case.accepted:
            changed = {**record, **(case.record or {})}
            return Row(cells, {k: v for k, v in changed.items() if v is not None}, None)
        key = self.entity.key_field
        error = {
            "index": index,
            "message_id": None if case.field == key else record[key],
            "code": case.code,
            "error": rejection_text(self.entity, case),
        }
        return Row(cells, None, error)

    def phone_texts(self) -> set[str]:
        """Every phone number in the table, as written and as digits: none may leak anywhere."""
        texts: set[str] = set()
        for row in self.rows():
            for column in self.phone_columns:
                value = row.cells.get(column)
                value = value.value if isinstance(value, Sql) else value
                if isinstance(value, bytes):
                    value = value.decode("latin-1")
                for number in NUMBER.findall(str(value) if value is not None else ""):
                    digits = re.sub(r"\D", "", number)
                    texts.update({number, digits, digits[-10:]})
        return texts


def _second(index: int) -> str:
    return f"{index:02d}"


def phone(index: int) -> str:
    """A good row's phone number: E.164, unused by other tests."""
    return f"+1415555{1000 + index:04d}"


# ---------------------------------------------------------------------------------------------------
# SQLite: any cell may hold any type (a column's declared type only converts what it can).


def _phone_cases(field: str, code: str) -> list[Case]:
    """The phone forms, in a text column named as the field."""
    return [
        reject(field, code, "text of 11 characters", **{field: WITHOUT_PLUS}),
        accept({field: "+12025550143"}, **{field: FORMATTED}),
        accept({field: "+12025550143"}, **{field: TEL_URI}),
        reject(field, code, "text of 3 characters", **{field: NOT_A_NUMBER}),
        reject(field, code, "text of 10240 characters", **{field: TEN_KB}),
        accept({field: SHORT_E164}, **{field: SHORT_E164}),
    ]


def sqlite_tables() -> dict[str, ValueTable]:
    def click(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "message_id": f"click-{i:02d}",
            "offer_id": 7 + i % 3,
            "phone_number": phone(i),
            "clicked_at": f"2025-11-15 10:00:{_second(i)}",
            "sent_at": f"2025-11-15 09:59:{_second(i)}",
        }
        record = {
            "message_id": f"click-{i:02d}",
            "offer_id": str(7 + i % 3),
            "phone_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "send_timestamp": f"2025-11-15T09:59:{_second(i)}+00:00",
        }
        return cells, record

    clicks = ValueTable(
        CLICKS,
        {
            "message_id": "TEXT",
            "offer_id": "INTEGER",
            "phone_number": "TEXT",
            "clicked_at": "TEXT",
            "sent_at": "TEXT",
        },
        "message_id, offer_id, phone_number, clicked_at AS timestamp, sent_at AS send_timestamp",
        click,
        (
            reject("offer_id", "invalid_offer_id", "a floating-point number", offer_id=42.5),
            reject("offer_id", "invalid_offer_id", "NaN or an infinity", offer_id=Sql("9e999")),
            reject("offer_id", "invalid_offer_id", "NaN or an infinity", offer_id=Sql("-9e999")),
            reject("offer_id", "missing_offer_id", None, offer_id=math.nan),  # SQLite stores NaN as NULL
            reject(
                "message_id", "invalid_message_id", "6 bytes that are not UTF-8 text", message_id=LATIN1_ID
            ),
            reject(
                "message_id", "invalid_message_id", "16 bytes that are not UTF-8 text", message_id=BINARY_UUID
            ),
            reject("message_id", "invalid_message_id", "16 bytes", message_id=DECODABLE_UUID),
            accept({"message_id": "click-in-a-blob"}, message_id=b"click-in-a-blob"),  # UTF-8 text in a BLOB
            reject(
                "phone_number",
                "invalid_phone_number",
                "13 bytes that are not UTF-8 text",
                phone_number=Sql(f"CAST(x'{NOT_UTF8_PHONE.hex()}' AS TEXT)", NOT_UTF8_PHONE),
            ),
            *_phone_cases("phone_number", "invalid_phone_number"),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", clicked_at=YEAR_1_EAST),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", clicked_at=YEAR_9999_WEST),
            accept({"timestamp": YEAR_1_UTC}, clicked_at=YEAR_1_UTC),
            accept({"timestamp": YEAR_9999_UTC}, clicked_at=YEAR_9999_UTC),
            # Epoch seconds into a TEXT column: SQLite stores the digits as text.
            reject("timestamp", "invalid_timestamp", "text of 10 characters", clicked_at=1_763_200_800),
            reject("send_timestamp", "invalid_timestamp", "text of 25 characters", sent_at=YEAR_9999_WEST),
        ),
        ("phone_number",),
    )

    def send(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "id": f"send-{i:02d}",
            "to_number": phone(i),
            "sent_at": f"2025-11-15 10:00:{_second(i)}",
            "list_id": None,
            "list_number": None,
            "message": f"Hello {i}",
            "send_type": "campaign",
            "delivered": 1,
            "length": 42,
        }
        record = {
            "id": f"send-{i:02d}",
            "to_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "message": f"Hello {i}",
            "send_type": "campaign",
            "delivered": True,
            "length": 42,
        }
        return cells, record

    sends = ValueTable(
        SENDS,
        {
            "id": "TEXT",
            "to_number": "TEXT",
            "sent_at": "TEXT",
            "list_id": "REAL",  # as pandas writes a nullable integer column: 1.0
            "list_number": "INTEGER",
            "message": "TEXT",
            "send_type": "TEXT",
            "delivered": "INTEGER",
            "length": "INTEGER",
        },
        "id, to_number, sent_at AS timestamp, list_id, list_number, message, send_type, delivered, length",
        send,
        (
            reject("id", "invalid_id", "6 bytes that are not UTF-8 text", id=LATIN1_ID),
            reject("id", "invalid_id", "16 bytes", id=DECODABLE_UUID),
            *_phone_cases("to_number", "invalid_phone"),
            reject("list_id", "invalid_list_id", "a floating-point number", list_id=1.0),
            reject("list_id", "invalid_list_id", "NaN or an infinity", list_id=Sql("9e999")),
            reject("list_number", "invalid_list_number", "a whole number", list_number=AS_INTEGER),
            accept({"list_number": "+12025550143"}, list_number=FORMATTED),  # text stays text
            reject("message", "record_too_large", "text of 6291456 characters", message=SIX_MIB_MESSAGE),
            reject("message", "invalid_message", "6 bytes that are not UTF-8 text", message=LATIN1_ID),
            reject("delivered", "invalid_delivered", "a whole number", delivered=2),
            accept({"delivered": False}, delivered=0),
            reject("length", "invalid_length", "NaN or an infinity", length=Sql("9e999")),
            reject("length", "invalid_length", "a floating-point number", length=4.5),
            reject("length", "invalid_length", "NaN or an infinity", length="1e400"),  # INTEGER: 1e400 -> Inf
            reject("timestamp", "invalid_timestamp", "text of 25 characters", sent_at=YEAR_1_EAST),
        ),
        ("to_number", "list_number"),
    )

    def revenue(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "message_id": f"rev-{i:02d}",
            "offer_id": f"offer-{i % 3}",
            "revenue": "12.50",
            "payout": 1.1,
            "attribution_type": "click",
            "ts": f"2025-11-15 11:00:{_second(i)}",
        }
        record = {
            "message_id": f"rev-{i:02d}",
            "offer_id": f"offer-{i % 3}",
            "revenue": 12.5,
            "payout": 1.1,
            "attribution_type": "click",
            "timestamp": f"2025-11-15T11:00:{_second(i)}+00:00",
        }
        return cells, record

    revenues = ValueTable(
        REVENUE,
        {
            "message_id": "TEXT",
            "offer_id": "TEXT",
            "revenue": "TEXT",
            "payout": "REAL",
            "attribution_type": "TEXT",
            "ts": "TEXT",
        },
        "message_id, offer_id, revenue, payout, attribution_type, ts AS timestamp",
        revenue,
        (
            reject("revenue", "invalid_revenue", "text of 4 characters", revenue="sNaN"),
            reject("revenue", "invalid_revenue", "text of 3 characters", revenue="NaN"),
            reject("revenue", "invalid_revenue", "text of 8 characters", revenue="Infinity"),
            reject("revenue", "invalid_revenue", "text of 9 characters", revenue="-Infinity"),
            reject("revenue", "invalid_revenue", "text of 5 characters", revenue="1e400"),
            reject("payout", "invalid_payout", "NaN or an infinity", payout=Sql("9e999")),
            reject("payout", "invalid_payout", "NaN or an infinity", payout=Sql("-9e999")),
            reject("offer_id", "invalid_offer_id", "6 bytes that are not UTF-8 text", offer_id=LATIN1_ID),
            reject(
                "attribution_type", "invalid_attribution_type", "16 bytes", attribution_type=DECODABLE_UUID
            ),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", ts=YEAR_9999_WEST),
            accept({"timestamp": YEAR_1_UTC}, ts=YEAR_1_UTC),
        ),
        (),
    )
    return {"clicks": clicks, "sends": sends, "revenue": revenues}


# ---------------------------------------------------------------------------------------------------
# PostgreSQL through psycopg 3, in a session whose time zone is not UTC (the import sets its own).


def postgres_tables() -> dict[str, ValueTable]:
    from psycopg.types.json import Jsonb

    def click(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "message_id": f"click-{i:02d}".encode(),
            "offer_id": Jsonb(f"offer-{i % 3}"),
            "phone_number": phone(i),
            "clicked_at": f"2025-11-15 10:00:{_second(i)}+00",
            "sent_on": date(2025, 11, 15),
        }
        record = {
            "message_id": f"click-{i:02d}",
            "offer_id": f"offer-{i % 3}",
            "phone_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "send_timestamp": "2025-11-15T00:00:00+00:00",
        }
        return cells, record

    clicks = ValueTable(
        CLICKS,
        {
            "message_id": "bytea",
            "offer_id": "jsonb",  # as payload->'offer_id' gives it: one JSON type per row
            "phone_number": "text",
            "clicked_at": "timestamptz",
            "sent_on": "date",
        },
        "message_id, offer_id, phone_number, clicked_at AS timestamp, sent_on AS send_timestamp",
        click,
        (
            reject(
                "message_id", "invalid_message_id", "6 bytes that are not UTF-8 text", message_id=LATIN1_ID
            ),
            reject(
                "message_id", "invalid_message_id", "16 bytes that are not UTF-8 text", message_id=BINARY_UUID
            ),
            reject("message_id", "invalid_message_id", "16 bytes", message_id=DECODABLE_UUID),
            reject("offer_id", "invalid_offer_id", "a JSON object", offer_id=Jsonb({"a": 1})),
            reject("offer_id", "invalid_offer_id", "a list", offer_id=Jsonb([1, 2])),
            reject("offer_id", "invalid_offer_id", "a boolean", offer_id=Jsonb(True)),
            reject("offer_id", "invalid_offer_id", "a floating-point number", offer_id=Jsonb(42.0)),
            accept({"offer_id": "42"}, offer_id=Jsonb(42)),
            *_phone_cases("phone_number", "invalid_phone_number"),
            # timestamptz arrives as its text in the import's UTC session: infinities and years past
            # 9999 or before 1 (BC) are text no ISO parser reads.
            reject("timestamp", "invalid_timestamp", "text of 8 characters", clicked_at="infinity"),
            reject("timestamp", "invalid_timestamp", "text of 9 characters", clicked_at="-infinity"),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", clicked_at=YEAR_1_EAST),
            reject("timestamp", "invalid_timestamp", "text of 23 characters", clicked_at=YEAR_9999_WEST),
            accept({"timestamp": YEAR_1_UTC}, clicked_at=YEAR_1_UTC),
            accept({"timestamp": YEAR_9999_UTC}, clicked_at=YEAR_9999_UTC),
            reject("send_timestamp", "invalid_timestamp", "text of 8 characters", sent_on="infinity"),
            reject("send_timestamp", "invalid_timestamp", "text of 9 characters", sent_on="-infinity"),
            accept({"send_timestamp": YEAR_1_UTC}, sent_on=date(1, 1, 1)),
            accept({"send_timestamp": "9999-12-31T00:00:00+00:00"}, sent_on=date(9999, 12, 31)),
        ),
        ("phone_number",),
    )

    def send(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "id": f"send-{i:02d}",
            "to_number": phone(i),
            "sent_at": f"2025-11-15 10:00:{_second(i)}+00",
            "list_id": None,
            "list_number": None,
            "message": f"Hello {i}",
            "send_type": None,
            "delivered": True,
            "length": Decimal(42),
        }
        record = {
            "id": f"send-{i:02d}",
            "to_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "message": f"Hello {i}",
            "delivered": True,
            "length": 42,
        }
        return cells, record

    sends = ValueTable(
        SENDS,
        {
            "id": "text",
            "to_number": "text",
            "sent_at": "timestamptz",
            "list_id": "float8",
            "list_number": "bigint",
            "message": "text",
            "send_type": "money",
            "delivered": "boolean",
            "length": "numeric",
        },
        "id, to_number, sent_at AS timestamp, list_id, list_number, message, send_type, delivered, length",
        send,
        (
            *_phone_cases("to_number", "invalid_phone"),
            reject("list_id", "invalid_list_id", "a floating-point number", list_id=1.0),
            reject("list_id", "invalid_list_id", "NaN or an infinity", list_id=math.nan),
            reject("list_id", "invalid_list_id", "NaN or an infinity", list_id=math.inf),
            reject("list_id", "invalid_list_id", "NaN or an infinity", list_id=-math.inf),
            reject("list_number", "invalid_list_number", "a whole number", list_number=AS_INTEGER),
            reject("message", "record_too_large", "text of 6291456 characters", message=SIX_MIB_MESSAGE),
            reject("send_type", "invalid_send_type", opaque("money"), send_type=Decimal("12.34")),
            accept({"delivered": False}, delivered=False),
            reject("length", "invalid_length", "a NaN or infinite decimal", length=Decimal("NaN")),
            reject("length", "invalid_length", "a NaN or infinite decimal", length=Decimal("Infinity")),
            reject("length", "invalid_length", "a decimal", length=Decimal(10**400)),
            reject("length", "invalid_length", "a decimal", length=Decimal("4.5")),
            accept({"length": 42}, length=Decimal("42.0")),
            reject("timestamp", "invalid_timestamp", "text of 8 characters", sent_at="infinity"),
        ),
        ("to_number", "list_number"),
    )

    def revenue(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        message_id = UUID(f"00000000-0000-4000-8000-{i:012d}")
        cells = {
            "message_id": message_id,
            "offer_id": Decimal(7 + i % 3),
            "revenue": Decimal("12.50"),
            "payout": 1.1,
            "attribution_type": None,
            "ts": datetime(2025, 11, 15, 11, 0, i),
        }
        record = {
            "message_id": str(message_id),
            "offer_id": str(7 + i % 3),
            "revenue": 12.5,
            "payout": 1.1,
            "timestamp": f"2025-11-15T11:00:{_second(i)}+00:00",
        }
        return cells, record

    revenues = ValueTable(
        REVENUE,
        {
            "message_id": "uuid",
            "offer_id": "numeric",
            "revenue": "numeric",
            "payout": "float8",
            "attribution_type": "interval",
            "ts": "timestamp",
        },
        "message_id, offer_id, revenue, payout, attribution_type, ts AS timestamp",
        revenue,
        (
            reject("offer_id", "invalid_offer_id", "a NaN or infinite decimal", offer_id=Decimal("NaN")),
            reject("offer_id", "invalid_offer_id", "a NaN or infinite decimal", offer_id=Decimal("Infinity")),
            reject(
                "offer_id", "invalid_offer_id", "a NaN or infinite decimal", offer_id=Decimal("-Infinity")
            ),
            reject("offer_id", "invalid_offer_id", "a decimal", offer_id=Decimal("42.0")),
            reject("offer_id", "invalid_offer_id", "a decimal", offer_id=Decimal("7.5")),
            reject("offer_id", "invalid_offer_id", "a decimal", offer_id=Decimal(10**400)),
            reject("revenue", "invalid_revenue", "a NaN or infinite decimal", revenue=Decimal("NaN")),
            reject("revenue", "invalid_revenue", "a NaN or infinite decimal", revenue=Decimal("Infinity")),
            reject("revenue", "invalid_revenue", "a NaN or infinite decimal", revenue=Decimal("-Infinity")),
            reject("revenue", "invalid_revenue", "a decimal", revenue=Decimal(10**400)),
            reject("payout", "invalid_payout", "NaN or an infinity", payout=math.nan),
            reject("payout", "invalid_payout", "NaN or an infinity", payout=math.inf),
            reject("payout", "invalid_payout", "NaN or an infinity", payout=-math.inf),
            reject(
                "attribution_type",
                "invalid_attribution_type",
                opaque("interval"),
                attribution_type=Sql("'1 day 2 hours'"),
            ),
            reject("timestamp", "invalid_timestamp", "text of 8 characters", ts="infinity"),
            accept({"timestamp": YEAR_1_UTC}, ts=datetime(1, 1, 1)),
        ),
        (),
    )
    # A time of day where a timestamp or an id belongs: the column holds no instant.
    times = ValueTable(
        REVENUE,
        {**revenues.columns, "attribution_type": "time"},
        revenues.select,
        revenue,
        (
            reject("attribution_type", "invalid_attribution_type", opaque("time"), attribution_type="10:00"),
            reject("attribution_type", "invalid_attribution_type", opaque("time"), attribution_type="24:00"),
        ),
        (),
        label="revenue_time",
    )
    # Native booleans and arrays where an id belongs (jsonb gives the same Python types row by row).
    bools_and_arrays = ValueTable(
        SENDS,
        {**sends.columns, "list_id": "boolean", "send_type": "int[]"},
        sends.select,
        send,
        (
            reject("list_id", "invalid_list_id", "a boolean", list_id=True),
            reject("send_type", "invalid_send_type", "a list", send_type=[1, 2]),
        ),
        ("to_number", "list_number"),
        label="sends_bool_array",
    )
    return {
        "clicks": clicks,
        "sends": sends,
        "revenue": revenues,
        "revenue_time": times,
        "sends_bool_array": bools_and_arrays,
    }


# ---------------------------------------------------------------------------------------------------
# MariaDB, through mysqlclient or mysql-connector-python (their types differ: BIT, SET).


def mariadb_tables(driver: str) -> dict[str, ValueTable]:
    connector = driver == "mysql-connector-python"

    def click(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        message_id = f"click-{i:010d}"  # BINARY(16) pads shorter values with NUL bytes
        cells = {
            "message_id": message_id,
            "offer_id": f"offer-{i % 3}",
            "phone_number": phone(i),
            "clicked_at": datetime(2025, 11, 15, 10, 0, i),
            "sent_at": datetime(2025, 11, 15, 9, 59, i),
        }
        record = {
            "message_id": message_id,
            "offer_id": f"offer-{i % 3}",
            "phone_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "send_timestamp": f"2025-11-15T09:59:{_second(i)}+00:00",
        }
        return cells, record

    clicks = ValueTable(
        CLICKS,
        {
            "message_id": "BINARY(16)",
            "offer_id": "VARCHAR(64)",
            "phone_number": "TEXT",
            "clicked_at": "DATETIME(6)",
            "sent_at": "TIMESTAMP(6) NULL",
        },
        "message_id, offer_id, phone_number, clicked_at AS timestamp, sent_at AS send_timestamp",
        click,
        (
            reject(
                "message_id", "invalid_message_id", "16 bytes that are not UTF-8 text", message_id=BINARY_UUID
            ),
            reject("message_id", "invalid_message_id", "16 bytes", message_id=DECODABLE_UUID),
            reject("message_id", "invalid_message_id", "16 bytes", message_id="click-7"),  # NUL-padded
            *_phone_cases("phone_number", "invalid_phone_number"),
            # MySQL's zero date: both drivers return None.
            reject("timestamp", "missing_timestamp", None, clicked_at=Sql("'0000-00-00 00:00:00'")),
            accept({"timestamp": YEAR_1_UTC}, clicked_at=datetime(1, 1, 1)),
            accept(
                {"timestamp": "9999-12-31T23:59:59.999999+00:00"},
                clicked_at=datetime(9999, 12, 31, 23, 59, 59, 999999),
            ),
            accept({"send_timestamp": "2038-01-19T03:14:07+00:00"}, sent_at=datetime(2038, 1, 19, 3, 14, 7)),
        ),
        ("phone_number",),
    )

    def send(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "id": f"send-{i:02d}".encode(),
            "to_number": phone(i),
            "sent_at": f"2025-11-15T10:00:{_second(i)}Z",
            "list_id": None,
            "list_number": None,
            "message": f"Hello {i}",
            "send_type": None,
            "delivered": Sql("b'1'"),
            "length": 42,
        }
        record = {
            "id": f"send-{i:02d}",
            "to_number": phone(i),
            "timestamp": f"2025-11-15T10:00:{_second(i)}+00:00",
            "message": f"Hello {i}",
            "delivered": True,
            "length": 42,
        }
        return cells, record

    sends = ValueTable(
        SENDS,
        {
            "id": "VARBINARY(64)",
            "to_number": "TEXT",
            "sent_at": "VARCHAR(40)",  # ISO 8601 text with its offset, as an application wrote it
            "list_id": "TIME",
            "list_number": "BIGINT",
            "message": "LONGTEXT",
            "send_type": "SET('campaign', 'test')",
            "delivered": "BIT(1)",
            "length": "INT",
        },
        "id, to_number, sent_at AS timestamp, list_id, list_number, message, send_type, delivered, length",
        send,
        (
            reject("id", "invalid_id", "6 bytes that are not UTF-8 text", id=LATIN1_ID),
            *_phone_cases("to_number", "invalid_phone"),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", sent_at=YEAR_1_EAST),
            reject("timestamp", "invalid_timestamp", "text of 25 characters", sent_at=YEAR_9999_WEST),
            accept({"timestamp": YEAR_1_UTC}, sent_at=YEAR_1_UTC),
            accept({"timestamp": YEAR_9999_UTC}, sent_at=YEAR_9999_UTC),
            reject("list_id", "invalid_list_id", "a duration", list_id="10:00:00"),
            reject("list_id", "invalid_list_id", "a duration", list_id="-838:59:59"),
            reject("list_number", "invalid_list_number", "a whole number", list_number=AS_INTEGER),
            reject("message", "record_too_large", "text of 6291456 characters", message=SIX_MIB_MESSAGE),
            # mysql-connector-python gives a SET as a Python set; mysqlclient as its text, sent as it is.
            reject("send_type", "invalid_send_type", "a set", send_type="campaign,test")
            if connector
            else accept({"send_type": "campaign,test"}, send_type="campaign,test"),
            accept({"delivered": False}, delivered=Sql("b'0'")),  # BIT(1): b'\x00' or 0, by driver
        ),
        ("to_number", "list_number"),
    )

    def revenue(i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cells = {
            "message_id": f"rev-{i:02d}",
            "offer_id": f"offer-{i % 3}",
            "revenue": Decimal("12.50"),
            "payout": 1.1,
            "attribution_type": None,
            "ts": datetime(2025, 11, 15, 11, 0, i),
        }
        record = {
            "message_id": f"rev-{i:02d}",
            "offer_id": f"offer-{i % 3}",
            "revenue": 12.5,
            "payout": 1.1,
            "timestamp": f"2025-11-15T11:00:{_second(i)}+00:00",
        }
        return cells, record

    revenues = ValueTable(
        REVENUE,
        {
            "message_id": "VARCHAR(64)",
            "offer_id": "VARCHAR(64)",
            "revenue": "DECIMAL(12, 2)",
            "payout": "DOUBLE",
            "attribution_type": "JSON",
            "ts": "TIMESTAMP(6) NULL",
        },
        "message_id, offer_id, revenue, payout, attribution_type, ts AS timestamp",
        revenue,
        (
            # MariaDB's JSON is LONGTEXT with a check: both drivers return its text, sent as written.
            accept({"attribution_type": '{"a": 1}'}, attribution_type='{"a": 1}'),
            accept({"revenue": 9999999999.99}, revenue=Decimal("9999999999.99")),
        ),
        (),
    )
    return {"clicks": clicks, "sends": sends, "revenue": revenues}


# ---------------------------------------------------------------------------------------------------


@dataclass
class Database:
    """A source database as the tests write and read it (not through the import), and its tables."""

    driver: str  # sqlite, psycopg, mysqlclient, mysql-connector-python
    path: Path | None = None  # SQLite's file
    tables: list[str] = dataclasses.field(default_factory=list)  # created, dropped by the test

    @property
    def placeholder(self) -> str:
        return "?" if self.driver == "sqlite" else "%s"

    def _connect(self) -> Any:
        if self.driver == "sqlite":
            return sqlite3.connect(self.path)
        if self.driver == "psycopg":
            return PostgresSource.connect()
        return MariaDbSource.connect()

    def execute(self, statements: list[tuple[str, list[Any]]]) -> None:
        with closing(self._connect()) as conn:
            cursor = conn.cursor()
            for sql, params in statements:
                if params:
                    cursor.execute(sql, params)
                else:  # no parameters: MySQLdb would read a '%' in the statement as one
                    cursor.execute(sql)
            cursor.close()
            conn.commit()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(self._connect()) as conn:
            cursor = conn.cursor()
            cursor.execute(sql)
            rows = list(cursor.fetchall())
            cursor.close()
            conn.commit()
            return rows

    def drop(self, *tables: str) -> None:
        self.execute([(f"DROP TABLE IF EXISTS {table}", []) for table in tables])

    def load(self, table: ValueTable, rows: list[Row]) -> None:
        """Create the table anew and insert ``rows``, numbered by their position."""
        columns = {"row_no": "INTEGER", **table.columns}
        self.drop(table.name)
        self.tables.append(table.name)
        statements = [
            (f"CREATE TABLE {table.name} ({', '.join(f'{n} {t}' for n, t in columns.items())})", [])
        ]
        for row_no, row in enumerate(rows):
            cells = {"row_no": row_no, **row.cells}
            values, params = [], []
            for column in columns:
                cell = cells.get(column)
                if isinstance(cell, Sql):
                    values.append(cell.text)
                else:
                    values.append(self.placeholder)
                    params.append(cell)
            statements.append(
                (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(values)})", params)
            )
        self.execute(statements)


def connection_json(driver: str, path: Path | None = None) -> str:
    """The source's Airflow connection: PostgreSQL's session in a time zone that is not UTC."""
    if driver == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": str(path)})
    if driver == "psycopg":
        # UTC-03:30 in November
        return json.dumps(postgres_connection(extra={"options": "-c TimeZone=America/St_Johns"}))
    extra = {"client": driver} if driver == "mysql-connector-python" else {}
    return json.dumps(mariadb_connection(extra=extra))


TABLES: dict[str, Callable[[], dict[str, ValueTable]]] = {
    "sqlite": sqlite_tables,
    "psycopg": postgres_tables,
    "mysqlclient": lambda: mariadb_tables("mysqlclient"),
    "mysql-connector-python": lambda: mariadb_tables("mysql-connector-python"),
}
