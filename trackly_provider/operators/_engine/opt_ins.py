"""
The opt-ins of an import (``Entity.opt_ins``: a contact's ``use_journeys`` and ``use_validation``):
the fields every record carries, the warnings that announce them, and the answer that breaks them.

Every record carries each opt-in's field explicitly, ``false`` unless the operator's named argument
turned it on: never the API's default, which a vendor could change. An opt-in that is on is
announced as a warning at the start of every run with the number of records it will touch (and
its cost when it has a price); a dry run announces the same. An answer counting what an opt-in
that is off would have done (``journeys_enrolled > 0`` without ``use_journeys``) stops the import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trackly_provider.trackly_api.entities import Entity, OptIn
from trackly_provider.trackly_api.results import ImportResult


def record_fields(entity: Entity, chosen: Mapping[str, bool]) -> dict[str, Any]:
    """The fields every record carries: each opt-in's (``chosen``, by field name; False when absent)."""
    fields: dict[str, Any] = {}
    for opt_in in entity.opt_ins:
        on = chosen.get(opt_in.field, False)
        fields[opt_in.field] = on
        if on:
            fields.update(opt_in.sent_with)
    return fields


def turned_on(entity: Entity, chosen: Mapping[str, bool]) -> list[OptIn]:
    """The entity's opt-ins that ``chosen`` turns on, in declaration order."""
    return [opt_in for opt_in in entity.opt_ins if chosen.get(opt_in.field, False)]


def cost(opt_in: OptIn, records: int) -> Decimal | None:
    """The most ``records`` records cost with ``opt_in`` on, in USD; None when it has no price."""
    return None if opt_in.price_per_record is None else opt_in.price_per_record * records


def summary(entity: Entity, chosen: Mapping[str, bool], records: int) -> dict[str, Any]:
    """
    The XCom summary's part: ``opt_ins`` (each field, on or off) and, for each opt-in on with a
    price, ``<field>_cost_usd_at_most`` for ``records`` records (text: an exact decimal); nothing
    for an entity without opt-ins.
    """
    if not entity.opt_ins:
        return {}
    part: dict[str, Any] = {"opt_ins": {opt.field: chosen.get(opt.field, False) for opt in entity.opt_ins}}
    for opt in turned_on(entity, chosen):
        price = cost(opt, records)
        if price is not None:
            part[f"{opt.field}_cost_usd_at_most"] = str(price)
    return part


def announcement(entity: Entity, opt_in: OptIn, records: int | None, dry_run: bool) -> str:
    """
    The warning of an opt-in that is on: what it does, to how many records (None: not counted), and
    what it may cost.
    """
    count = (
        f"{records:,} {entity.name}"
        if records is not None
        else f"every {entity.name} record the query returns"
    )
    text = f"{opt_in.argument}=True: Trackly {opt_in.effect} ({opt_in.field}: true); "
    text += f"a real run sends it for {count}" if dry_run else f"this run sends it for {count}"
    price = cost(opt_in, records) if records is not None else None
    if price is not None:
        text += f", up to ${price:,f} at ${opt_in.price_per_record} each"
        text += " (the vendor's price; cached lookups are free)"
    elif opt_in.price_per_record is not None:
        text += f", at ${opt_in.price_per_record} each (the vendor's price)"
    return text + (". Dry run: nothing is sent." if dry_run else ".")


def unrequested(entity: Entity, chosen: Mapping[str, bool], result: ImportResult) -> str | None:
    """
    The failure message when an answer counts what an opt-in that is off would have done
    (``journeys_enrolled`` above 0 without ``use_journeys``), else None.
    """
    for opt_in in entity.opt_ins:
        if chosen.get(opt_in.field, False):
            continue
        name = opt_in.answer_count
        done = result.counts.get(name, 0) if name is not None else 0
        if done:
            return unrequested_text(entity, name, str(done))  # type: ignore[arg-type]
        codes = Counter(error.code for error in result.errors if error.code in opt_in.error_codes)
        if codes:
            code, count = codes.most_common(1)[0]
            return _unrequested(entity, opt_in, f"error code {code} for {count:,} record(s)")
    return None


def counts_that_must_be_zero(entity: Entity, chosen: Mapping[str, bool]) -> tuple[str, ...]:
    """The answer counts of the opt-ins that are off (``journeys_enrolled`` without ``use_journeys``)."""
    return tuple(
        opt_in.answer_count
        for opt_in in entity.opt_ins
        if opt_in.answer_count is not None and not chosen.get(opt_in.field, False)
    )


def unrequested_text(entity: Entity, count_name: str, shown: str) -> str:
    """The failure message of an answer whose ``count_name`` is ``shown`` (not 0) with its opt-in off."""
    opt_in = next(opt_in for opt_in in entity.opt_ins if opt_in.answer_count == count_name)
    return _unrequested(entity, opt_in, f"{count_name} = {shown}")


def _unrequested(entity: Entity, opt_in: OptIn, what: str) -> str:
    return (
        f"Trackly answered {what} although every {entity.name} record was sent with "
        f"{opt_in.field}: false, which should mean it never {opt_in.effect}. The import stopped "
        "at once, without retries. Check the account in Trackly (the lists' journeys, any "
        f"account-wide setting) before importing again; {opt_in.argument}=True is the only "
        "way to ask for it."
    )
