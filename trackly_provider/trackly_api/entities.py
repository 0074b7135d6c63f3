"""What Trackly's import endpoints accept: one declaration per entity, read by the import engine."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

FieldKind = Literal["id", "text", "timestamp", "phone", "amount", "flag", "count", "custom_fields"]
"""How a column's value becomes a record value; ``values.CONVERTERS`` holds one function per kind."""


@dataclass(frozen=True)
class Field:
    """One record field: its column name, how its value converts, whether the API requires it."""

    name: str
    kind: FieldKind
    required: bool = False
    # The API's code for a present but invalid value where it has one, else ours: invalid_<name>.
    invalid_code: str | None = None
    # Why leaving this optional field out matters: the engine counts rows without it and warns once.
    warn_when_missing: str | None = None

    @property
    def missing_code(self) -> str:
        return f"missing_{self.name}"

    @property
    def rejected_code(self) -> str:
        return self.invalid_code or f"invalid_{self.name}"


@dataclass(frozen=True)
class OptIn:
    """
    A request field that costs money or reaches customers: sent ``false`` on every record unless the
    operator's ``argument`` turns it on, which the run then announces as a warning.

    ``answer_count``: the answer's count of what the field did; above 0 while it was off, the import
    stops at once (Trackly did what was not asked), as it does on one of its ``error_codes``.
    ``price_per_record``: the vendor's quote in USD, for the warning's cost estimate.
    """

    field: str
    argument: str
    effect: str  # what turning it on does, ending the warning's first sentence
    answer_count: str | None = None
    price_per_record: Decimal | None = None
    sent_with: tuple[tuple[str, bool], ...] = ()  # fields sent with it when on
    error_codes: tuple[str, ...] = ()  # per-record codes only it produces: one while off stops the import


@dataclass(frozen=True)
class Entity:
    """
    One import endpoint: its fields, its request and answer shapes, and how safe a resend is.

    ``deduplicated``: sending a record again cannot store it twice (clicks and sends: Trackly skips
    it by ``key_field``; contacts: an upsert), so a request whose outcome is unknown may be sent
    again. When False (revenue), sending twice counts twice: the engine never re-sends such a
    request and needs a ledger of confirmed records. ``resend_effect`` says what a resend does,
    in the advice of a failed import.

    ``key_field`` names a record in errors, rejects and the ledger (never its other values); when
    ``key_is_personal`` (a phone number), a keyed hash stands for it (``references``), reported
    under ``key_label``.

    ``body_key``: the request body's array; a batch of more than 1,000 is refused with
    ``too_many_<body_key>``. ``max_record_bytes``: the API's limit on one record's JSON, besides the
    body's 5 MB. ``answer_counts``: the counts a 200 answer holds besides ``success_count``,
    ``error_count`` and ``duplicates_skipped`` (0 when absent), each at most ``success_count``.
    ``custom_prefix``: columns named ``<prefix><key>`` become ``custom_fields[<key>]``.
    """

    name: str  # the word used in messages and XCom
    fields: tuple[Field, ...]
    key_field: str
    deduplicated: bool
    path: str = ""  # default: /api/v2/history/<name>
    dataset: str = ""  # the lineage dataset and Asset name under trackly://<host>/; default: history/<name>
    body_key: str = "records"
    key_is_personal: bool = False
    # Whether the answer counts a record it already had as a duplicate (clicks, sends); False for an
    # upsert (contacts), where it is stored again and counted as a success.
    counts_duplicates: bool = True
    key_label: str = "message_id"
    max_record_bytes: int | None = None
    answer_counts: tuple[str, ...] = ()
    # (name, created count): records stored that were updated, not created: success_count - created
    updated_count: tuple[str, str] | None = None
    custom_prefix: str | None = None
    opt_ins: tuple[OptIn, ...] = ()
    resend_effect: str = ""  # default: Trackly skips <name> it already stored...

    def __post_init__(self) -> None:
        history = f"history/{self.name}"
        object.__setattr__(self, "path", self.path or f"/api/v2/{history}")
        object.__setattr__(self, "dataset", self.dataset or history)
        object.__setattr__(
            self,
            "resend_effect",
            self.resend_effect
            or f"Trackly skips {self.name} it already stored and counts them as duplicates",
        )

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if not field.required)

    @property
    def too_many_code(self) -> str:
        """The API's code for a request of more than 1,000 records: ``too_many_records``..."""
        return f"too_many_{self.body_key}"


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

# The contact's consent evidence (TCPA): without it Trackly records the moment of the import.
SIGNUP_DATE_MISSING = (
    "Trackly then records the time of the import as their signup date, which loses the consent "
    "evidence (TCPA) a migrated list must keep; select the original opt-in time AS signup_date"
)

CONTACTS = Entity(
    "contacts",
    (
        Field("phone_number", "phone", required=True, invalid_code="invalid_phone"),
        Field("list_number", "phone", required=True, invalid_code="invalid_list_number"),
        Field("signup_date", "timestamp", warn_when_missing=SIGNUP_DATE_MISSING),
        Field("ip_address", "text"),
        Field("url", "text"),
        Field("custom_fields", "custom_fields"),
    ),
    key_field="phone_number",
    deduplicated=True,  # an upsert by phone number and list: a contact sent twice is updated, not doubled
    path="/api/v2/contacts/bulk",
    dataset="contacts",
    body_key="contacts",
    key_is_personal=True,
    counts_duplicates=False,
    key_label="contact_ref",
    max_record_bytes=4_000,  # "each contact object at most 4,000 bytes" (trackly-api.md, Contacts)
    answer_counts=("contacts_created", "list_contacts_created", "journeys_enrolled"),
    updated_count=("contacts_updated", "list_contacts_created"),  # a contact already on that list
    custom_prefix="custom_",
    opt_ins=(
        OptIn(
            "use_journeys",
            "send_welcome_journeys",
            "enrols each contact in its list's Welcome Journeys, which TEXT them",
            answer_count="journeys_enrolled",
            # never enrol a contact twice, so that a retried request cannot text anyone again
            sent_with=(("skip_journey_if_exists", True),),
        ),
        OptIn(
            "use_validation",
            "paid_phone_validation",
            "runs a paid phone lookup per number",
            price_per_record=Decimal("0.003"),  # the vendor's quote per non-cached lookup
            error_codes=("validation_failed", "provider_error"),  # "only with use_validation"
        ),
    ),
    resend_effect="Trackly updates contacts it already has (an upsert) and never duplicates them",
)
