"""The import operators' argument checks, made when a DAG is parsed or a task starts (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from trackly_provider.database.tables import checked_table_name
from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.settings import EXTRA_NAME, KNOWN_EXTRAS
from trackly_provider.operators._engine.batch_window import MAX_IN_FLIGHT_LIMIT
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.trackly_api.limits import MAX_RECORDS_PER_REQUEST
from trackly_provider.trackly_api.phone_numbers import is_known_region

DEFAULT_LEDGER_TABLE = "trackly_import_ledger"
MAX_SECONDS = 1e9  # about 31 years
IMPORT_OPERATORS = (
    "ClickHistoryImportOperator, SendHistoryImportOperator or RevenueHistoryImportOperator "
    "(trackly_provider.operators)"
)
HOW_TO_SUBCLASS = (
    "set the class attribute entity to the endpoint's Entity (CLICKS, SENDS or REVENUE from "
    "trackly_provider.trackly_api.entities)"
)


def check_entity(cls: type, base: type) -> None:
    """
    Refuse to build an import operator that names no endpoint: ``base`` itself, or a subclass of it
    without the class attribute ``entity``.

    :raises TypeError: naming the three import operators and how to subclass ``base``.
    """
    if isinstance(getattr(cls, "entity", None), Entity):
        return
    if cls is base:
        raise TypeError(
            f"{base.__name__} cannot be built directly: it is the engine the import operators share "
            f"and names no Trackly endpoint. Use {IMPORT_OPERATORS}; or subclass it and {HOW_TO_SUBCLASS}."
        )
    raise TypeError(
        f"{cls.__name__} names no Trackly endpoint: {HOW_TO_SUBCLASS}, or subclass one of {IMPORT_OPERATORS}."
    )


def check_limits(batch_size: int, max_error_rate: float, max_in_flight: int) -> None:
    """Refuse a batch size, error rate or in-flight count out of range, saying what is allowed."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ValueError(f"batch_size must be a whole number from 1 to 1000, got {batch_size!r}.")
    if not 1 <= batch_size <= MAX_RECORDS_PER_REQUEST:
        raise ValueError(
            f"batch_size must be from 1 to {MAX_RECORDS_PER_REQUEST} (the API's limit per request), "
            f"got {batch_size}."
        )
    if not 0.0 <= max_error_rate <= 1.0:
        raise ValueError(f"max_error_rate must be between 0.0 and 1.0, got {max_error_rate!r}.")
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
        raise ValueError(f"max_in_flight must be a whole number, got {max_in_flight!r}.")
    if not 1 <= max_in_flight <= MAX_IN_FLIGHT_LIMIT:
        raise ValueError(f"max_in_flight must be from 1 to {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight}.")


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise TracklyConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")


def as_flag(name: str, value: bool | str) -> bool:
    """A boolean argument, given as a bool or as a template's rendering of one (``"True"``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise TracklyConfigError(f"{name} must be True or False, got {value!r}.")


def as_seconds(name: str, value: float | timedelta) -> float:
    """A duration given as seconds (a number >= 0) or a ``timedelta``, in seconds (at most 10**9)."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or (isinstance(seconds, float) and not math.isfinite(seconds))
    ):
        raise TracklyConfigError(f"{name} must be a number of seconds or a timedelta, got {value!r}.")
    if seconds < 0:
        raise TracklyConfigError(f"{name} must not be negative, got {value!r}.")
    return float(min(seconds, MAX_SECONDS))  # a whole number past a float's range: forever all the same


def ledger_table_of(entity: Entity, value: str | None) -> str | None:
    """
    The ledger table an import keeps, or None for none.

    None: the entity's default, ``trackly_import_ledger`` where Trackly does not deduplicate the
    entity (revenue), no ledger where it does. Empty or blank text (an empty Variable, a template
    that renders to nothing) means ``trackly_import_ledger``: a ledger is never switched off by
    accident. Anything else must be a table name.
    """
    if value is None:
        return None if entity.deduplicated else DEFAULT_LEDGER_TABLE
    if not isinstance(value, str):
        raise TracklyConfigError(f"ledger_table must be a table name or None, got {type(value).__name__}.")
    return checked_table_name(value.strip() or DEFAULT_LEDGER_TABLE, "ledger_table")


def checked_region(value: str | None) -> str | None:
    """
    ``default_region`` in capitals: None, or a CLDR region code libphonenumber knows (``"US"``, ``"gb"``).

    :raises TracklyConfigError: for anything else (``"USA"``, ``"XX"``, ``1``), saying what to give.
    """
    if value is None:
        return None
    if isinstance(value, str) and is_known_region(value.strip().upper()):
        return value.strip().upper()
    raise TracklyConfigError(
        f"default_region must be a two-letter CLDR region code, such as 'US', 'GB' or 'FR' "
        f"(the country of numbers written without a country code), or None; got {value!r}."
    )


def is_template(value: Any) -> bool:
    """Text that Airflow renders before the task runs (``"{{ params.x }}"``): checked once rendered."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def checked_hook_params(name: str, value: Any) -> dict[str, Any]:
    """
    ``sql_hook_params`` or ``trackly_hook_params`` as a dict of keyword arguments: None -> ``{}``.

    :raises TracklyConfigError: for anything but a dict with text keys, or None.
    """
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise TracklyConfigError(
            f"{name} must be a dict of keyword arguments for the hook (text keys), or None; got "
            f"{type(value).__name__}."
        )
    return dict(value)


def check_hook_params(sql_hook_params: Any, trackly_hook_params: Any) -> None:
    """Check both hook parameters as given, when the DAG is parsed; a template is checked once rendered."""
    if not is_template(sql_hook_params):
        checked_hook_params("sql_hook_params", sql_hook_params)
    if not is_template(trackly_hook_params):
        checked_trackly_hook_params(trackly_hook_params)


def checked_trackly_hook_params(value: Any) -> dict[str, Any]:
    """
    ``trackly_hook_params`` as keyword arguments of ``TracklyHook``: None -> ``{}``.

    The keys are the connection's extras (``KNOWN_EXTRAS``), which ``TracklyHook`` takes as
    keyword arguments of the same names; its test seams (``transport``, ``sleep``) are not among
    them.

    :raises TracklyConfigError: for anything but a dict or None, or a key ``TracklyHook`` does not
        take, naming the keys it takes (``trackly_conn_id`` is the operator's own argument).
    """
    params = checked_hook_params("trackly_hook_params", value)
    unknown = [key for key in params if key not in KNOWN_EXTRAS]
    if unknown:
        # A key that is not a word (a URL with a password, 6 MB of text) is not quoted.
        shown = [repr(key) if EXTRA_NAME.fullmatch(key) else "a key that is not a word" for key in unknown]
        raise TracklyConfigError(
            f"trackly_hook_params has {', '.join(shown)}, which TracklyHook does not "
            f"take. It takes {', '.join(KNOWN_EXTRAS)} (the connection is the operator's trackly_conn_id)."
        )
    return params
