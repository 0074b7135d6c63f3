"""ContactImportOperator: stream a SQL query's rows into Trackly's bulk contact import, safe by default."""

from __future__ import annotations

from typing import Any

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.operators.history_import import BaseHistoryImportOperator
from trackly_provider.trackly_api.entities import CONTACTS


class ContactImportOperator(BaseHistoryImportOperator):
    """
    Create or update contacts from a SQL query in Trackly (``POST /api/v2/contacts/bulk``).

    Import contacts before any history into a fresh account: a message is sent from a list to a
    contact on it, and revenue needs its contact (``contact_not_found``). Trackly creates a contact
    or updates the one it has (keyed by phone number and list, custom fields merged), so a rerun
    is safe and reports updates (``contacts_updated``), not creations.

    Columns: ``phone_number`` and ``list_number`` (a sending list of the account, ``GET
    /api/v2/lists``) are required, both read as every phone field is (E.164, or ``default_region``);
    ``signup_date`` (the opt-in time, UTC), ``ip_address`` and ``url`` are optional consent
    evidence. ``custom_fields``: each column named ``custom_<key>`` is the field ``<key>``, and a
    column named ``custom_fields`` may hold a JSON object of them (a ``custom_<key>`` column wins);
    values are text, numbers or booleans, NULL leaves a key out (docs/operators.md, "Contacts").
    A contact over the API's 4,000 bytes as JSON is rejected (``record_too_large``) with its row.
    Rows without ``signup_date`` are counted, and warned about once: Trackly would record the
    import time as their signup date, losing the consent evidence (TCPA).

    Safe by default: every contact is sent with ``use_journeys: false`` and ``use_validation:
    false``. The two named arguments below turn them on; each run then starts with a warning
    naming the number of contacts (and the cost). An answer with ``journeys_enrolled > 0`` when
    journeys were not asked for fails the task at once (``TracklyUnrequestedEffectError``), and a
    ``402`` (validation without billing) fails it without retries (``TracklyBillingError``).

    Phone numbers never leave the task: the answer's errors repeat them and are dropped on
    arrival; XCom, the log and the rejects table name a contact by its row index and
    ``contact_ref``, a keyed hash of its number (``TracklyHook.contact_reference`` finds a
    number's reference). Other arguments and the XCom summary: see ``BaseHistoryImportOperator``;
    the summary adds ``contacts_created``, ``list_contacts_created``, ``journeys_enrolled``,
    ``contacts_updated``, ``records_without_signup_date`` and ``opt_ins``.

    :param send_welcome_journeys: ``True`` enrols each contact in its list's Welcome Journeys,
        which TEXT them (``use_journeys: true``, with ``skip_journey_if_exists: true`` so that a
        retried request texts nobody twice). Default ``False``. A literal bool: not templated.
    :param paid_phone_validation: ``True`` runs Trackly's paid lookup of each number
        (``use_validation: true``; the vendor quotes $0.003 per non-cached lookup, and the account
        needs a payment method). Default ``False``. A literal bool: not templated.
    """

    entity = CONTACTS

    def __init__(
        self,
        *,
        send_welcome_journeys: bool = False,
        paid_phone_validation: bool = False,
        **kwargs: Any,
    ) -> None:
        for name, value in (
            ("send_welcome_journeys", send_welcome_journeys),
            ("paid_phone_validation", paid_phone_validation),
        ):
            if not isinstance(value, bool):
                raise TracklyConfigError(
                    f"{name} must be True or False, written in the DAG (got {type(value).__name__}): it "
                    "decides whether Trackly texts or bills for every contact, so it is never templated "
                    "or read from text."
                )
        super().__init__(**kwargs)
        self.send_welcome_journeys = send_welcome_journeys
        self.paid_phone_validation = paid_phone_validation
