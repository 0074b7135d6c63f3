"""What Trackly's history endpoints accept: one declaration per entity, read by the import engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["id", "text", "timestamp", "phone", "amount", "flag", "count"]
"""How a column's value becomes a record value; ``values.CONVERTERS`` holds one function per kind."""


@dataclass(frozen=True)
class Field:
    """One record field: its column name, how its value converts, whether the API requires it."""

    name: str
    kind: FieldKind
    required: bool = False
    # The API's code for a present but invalid value where it has one, else ours: invalid_<name>.
    invalid_code: str | None = None

    @property
    def missing_code(self) -> str:
        return f"missing_{self.name}"

    @property
    def rejected_code(self) -> str:
        return self.invalid_code or f"invalid_{self.name}"


@dataclass(frozen=True)
class Entity:
    """
    One history endpoint: its fields and how safe it is to send a record twice.

    ``deduplicated``: Trackly skips a record it already stored (by ``key_field``), so a request
    whose outcome is unknown may be sent again. When False (revenue), sending twice counts twice:
    the engine never re-sends such a request and needs a ledger of confirmed records.
    """

    name: str  # the endpoint's last path segment, and the word used in messages
    fields: tuple[Field, ...]
    key_field: str  # the record's message id, shown (never other values) in errors and rejects
    deduplicated: bool

    @property
    def path(self) -> str:
        return f"/api/v2/history/{self.name}"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if not field.required)


CLICKS = Entity(
    "clicks",
    (
        Field("message_id", "id", required=True),
        Field("offer_id", "id", required=True),
        Field("phone_number", "phone", required=True),  # invalid_phone_number: ours, the API lists none
        Field("timestamp", "timestamp", required=True, invalid_code="invalid_timestamp"),
        Field("send_timestamp", "timestamp", invalid_code="invalid_timestamp"),
    ),
    key_field="message_id",
    deduplicated=True,
)

SENDS = Entity(
    "sends",
    (
        Field("id", "id", required=True),
        Field("to_number", "phone", required=True, invalid_code="invalid_phone"),
        Field("timestamp", "timestamp", required=True, invalid_code="invalid_timestamp"),
        Field("list_id", "id"),
        Field("list_number", "phone"),  # a sending list's number: invalid_list_number, as on contacts
        Field("message", "text"),
        Field("send_type", "id"),
        Field("delivered", "flag"),
        Field("length", "count"),
    ),
    key_field="id",
    deduplicated=True,
)

REVENUE = Entity(
    "revenue",
    (
        Field("message_id", "id", required=True),
        Field("offer_id", "id", required=True),
        Field("revenue", "amount", required=True),
        Field("payout", "amount"),
        Field("attribution_type", "id"),
        Field("timestamp", "timestamp", invalid_code="invalid_timestamp"),
    ),
    key_field="message_id",
    deduplicated=False,
)
