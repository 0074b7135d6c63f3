"""
The opt-ins of a contact import (operators/_engine/opt_ins.py): sent false unless asked for,
announced with their count and cost when on, and an answer that did one unasked stops the import.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from trackly_provider.operators._engine.opt_ins import (
    announcement,
    cost,
    record_fields,
    summary,
    turned_on,
    unrequested,
)
from trackly_provider.trackly_api.entities import CLICKS, CONTACTS, REVENUE, SENDS
from trackly_provider.trackly_api.results import ImportResult, RecordError

JOURNEYS, VALIDATION = CONTACTS.opt_ins
JOURNEYS_TEXT = (
    "send_welcome_journeys=True: Trackly enrols each contact in its list's Welcome Journeys, which "
    "TEXT them (use_journeys: true); "
)
VALIDATION_TEXT = (
    "paid_phone_validation=True: Trackly runs a paid phone lookup per number (use_validation: true); "
)


def answer(journeys_enrolled: int) -> ImportResult:
    counts = {"contacts_created": 5, "list_contacts_created": 5, "journeys_enrolled": journeys_enrolled}
    return ImportResult(5, 0, 0, counts=counts)


def test_the_opt_ins_are_use_journeys_then_use_validation():
    assert (JOURNEYS.field, JOURNEYS.argument) == ("use_journeys", "send_welcome_journeys")
    assert (VALIDATION.field, VALIDATION.argument) == ("use_validation", "paid_phone_validation")
    assert JOURNEYS.answer_count == "journeys_enrolled"
    assert VALIDATION.price_per_record == Decimal("0.003")


def test_with_nothing_chosen_every_contact_says_false_to_each_opt_in():
    assert record_fields(CONTACTS, {}) == {"use_journeys": False, "use_validation": False}
    assert record_fields(CONTACTS, {"use_journeys": False, "use_validation": False}) == {
        "use_journeys": False,
        "use_validation": False,
    }


def test_journeys_on_never_enrols_a_contact_twice():
    fields = record_fields(CONTACTS, {"use_journeys": True})
    assert fields == {"use_journeys": True, "skip_journey_if_exists": True, "use_validation": False}
    assert list(fields) == ["use_journeys", "skip_journey_if_exists", "use_validation"]


def test_validation_on_alone_sends_no_journey_field():
    assert record_fields(CONTACTS, {"use_validation": True}) == {
        "use_journeys": False,
        "use_validation": True,
    }


def test_both_on():
    assert record_fields(CONTACTS, {"use_validation": True, "use_journeys": True}) == {
        "use_journeys": True,
        "skip_journey_if_exists": True,
        "use_validation": True,
    }


def test_a_choice_by_another_name_turns_nothing_on():
    chosen = {"send_welcome_journeys": True, "paid_phone_validation": True, "skip_journey_if_exists": True}
    assert record_fields(CONTACTS, chosen) == {"use_journeys": False, "use_validation": False}
    assert turned_on(CONTACTS, chosen) == []


@pytest.mark.parametrize("entity", [CLICKS, SENDS, REVENUE])
def test_history_records_carry_no_opt_in_field(entity):
    assert record_fields(entity, {"use_journeys": True}) == {}
    assert turned_on(entity, {"use_journeys": True}) == []


def test_turned_on_keeps_the_declaration_order():
    assert turned_on(CONTACTS, {}) == []
    assert turned_on(CONTACTS, {"use_validation": True}) == [VALIDATION]
    assert turned_on(CONTACTS, {"use_validation": True, "use_journeys": True}) == [JOURNEYS, VALIDATION]
    assert turned_on(CONTACTS, {"use_journeys": True, "use_validation": False}) == [JOURNEYS]


def test_the_cost_is_exact_in_dollars():
    assert cost(VALIDATION, 1234) == Decimal("3.702")
    assert cost(VALIDATION, 1) == Decimal("0.003")
    assert cost(VALIDATION, 0) == Decimal("0")
    assert cost(VALIDATION, 1_000_000) == Decimal("3000")
    assert isinstance(cost(VALIDATION, 1234), Decimal)


def test_an_opt_in_without_a_price_has_no_cost():
    assert cost(JOURNEYS, 1234) is None


def test_journeys_are_announced_with_the_count():
    assert announcement(CONTACTS, JOURNEYS, 1234, dry_run=False) == (
        JOURNEYS_TEXT + "this run sends it for 1,234 contacts."
    )


def test_journeys_are_announced_without_a_count():
    assert announcement(CONTACTS, JOURNEYS, None, dry_run=False) == (
        JOURNEYS_TEXT + "this run sends it for every contacts record the query returns."
    )


def test_a_dry_run_announces_what_a_real_run_would_send():
    assert announcement(CONTACTS, JOURNEYS, 1_000_000, dry_run=True) == (
        JOURNEYS_TEXT + "a real run sends it for 1,000,000 contacts. Dry run: nothing is sent."
    )
    assert announcement(CONTACTS, JOURNEYS, None, dry_run=True) == (
        JOURNEYS_TEXT
        + "a real run sends it for every contacts record the query returns. Dry run: nothing is sent."
    )


def test_validation_is_announced_with_its_cost():
    assert announcement(CONTACTS, VALIDATION, 1234, dry_run=False) == (
        VALIDATION_TEXT + "this run sends it for 1,234 contacts, up to $3.702 at $0.003 each "
        "(the vendor's price; cached lookups are free)."
    )
    assert announcement(CONTACTS, VALIDATION, 1_000_000, dry_run=True) == (
        VALIDATION_TEXT + "a real run sends it for 1,000,000 contacts, up to $3,000.000 at $0.003 each "
        "(the vendor's price; cached lookups are free). Dry run: nothing is sent."
    )


def test_validation_without_a_count_gives_the_price_per_record():
    assert announcement(CONTACTS, VALIDATION, None, dry_run=False) == (
        VALIDATION_TEXT + "this run sends it for every contacts record the query returns, at $0.003 each "
        "(the vendor's price)."
    )


def test_an_answer_within_what_was_asked_is_not_unrequested():
    assert unrequested(CONTACTS, {"use_journeys": True}, answer(3)) is None
    assert unrequested(CONTACTS, {}, answer(0)) is None
    assert unrequested(CONTACTS, {"use_validation": True}, answer(0)) is None
    assert unrequested(CONTACTS, {}, ImportResult(5, 0, 0)) is None  # no counts: none done


def test_journeys_enrolled_while_off_stops_the_import_naming_the_count_and_the_argument():
    message = unrequested(CONTACTS, {"use_validation": True}, answer(2))
    assert message == (
        "Trackly answered journeys_enrolled = 2 although every contacts record was sent with "
        "use_journeys: false, which should mean it never enrols each contact in its list's Welcome "
        "Journeys, which TEXT them. The import stopped at once, without retries. Check the account in "
        "Trackly (the lists' journeys, any account-wide setting) before importing again; "
        "send_welcome_journeys=True is the only way to ask for it."
    )
    assert unrequested(CONTACTS, {}, answer(1)) == message.replace("= 2", "= 1")


def test_the_summary_names_every_opt_in_and_the_most_a_priced_one_costs():
    assert summary(CONTACTS, {}, 10) == {"opt_ins": {"use_journeys": False, "use_validation": False}}
    assert summary(CONTACTS, {"use_validation": True, "use_journeys": True}, 1234) == {
        "opt_ins": {"use_journeys": True, "use_validation": True},
        "use_validation_cost_usd_at_most": "3.702",
    }
    assert summary(CLICKS, {"use_journeys": True}, 10) == {}


def test_a_validation_code_while_validation_is_off_is_unrequested():
    validated = ImportResult(
        1, 2, 0, [RecordError(0, "validation_failed", ""), RecordError(1, "provider_error", "")]
    )
    message = unrequested(CONTACTS, {}, validated)
    assert message is not None
    assert message.startswith("Trackly answered error code validation_failed for 1 record(s) although every")
    assert "use_validation: false" in message and "paid_phone_validation=True" in message
    assert unrequested(CONTACTS, {"use_validation": True}, validated) is None
    assert unrequested(CONTACTS, {}, ImportResult(0, 1, 0, [RecordError(0, "not_sendable", "")])) is None
