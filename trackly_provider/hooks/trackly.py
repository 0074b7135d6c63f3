"""TracklyHook: the Trackly connection, one pooled httpx client, retries and meaningful errors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from trackly_provider import __version__
from trackly_provider.exceptions import (
    TracklyApiError,
    TracklyAuthError,
    TracklyBillingError,
    TracklyConfigError,
    TracklyEndpointNotFoundError,
    TracklyOutcomeUnknownError,
    TracklyResponseError,
    TracklyRetriesExhaustedError,
    TracklyTransientError,
)
from trackly_provider.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from trackly_provider.hooks.network.answers import ACCEPT_ENCODING, describe_answer, media_type
from trackly_provider.hooks.network.failures import configuration_problem, failure_label
from trackly_provider.hooks.network.tls import trust_source
from trackly_provider.hooks.network.transport import open_transport, send_once
from trackly_provider.hooks.retry import parse_retry_after
from trackly_provider.hooks.settings import TracklySettings, parse_settings, unknown_extras
from trackly_provider.trackly_api.entities import CLICKS, CONTACTS, REVENUE, SENDS, Entity
from trackly_provider.trackly_api.limits import (
    MAX_BODY_BYTES,
    MAX_ERRORS_LISTED,
    MAX_RECORDS_PER_REQUEST,
    RECORD_TOO_LARGE,
)
from trackly_provider.trackly_api.redact import server_code, server_text
from trackly_provider.trackly_api.references import personal_reference
from trackly_provider.trackly_api.results import (
    ImportResult,
    RecordError,
    encode_records,
    parse_import_result,
)
from trackly_provider.trackly_api.values import phone_number as phone_number_e164
from trackly_provider.version_compat import BaseHook

LISTS_PATH = "/api/v2/lists"
# The Test button makes one attempt while the user waits: its connection opened within
# TEST_BUTTON_CONNECT_SECONDS and the whole attempt within TEST_BUTTON_SECONDS (each, or the
# connection's connect_timeout / request_timeout if less). Five seconds opens any reachable
# Trackly many times over; an unreachable host fails in that time instead of the 10 s default.
TEST_BUTTON_SECONDS = 30.0
TEST_BUTTON_CONNECT_SECONDS = 5.0


class TracklyAuth(httpx.Auth):
    """Attach the API key as ``X-Api-Key`` and name this provider in ``User-Agent``."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Api-Key"] = self._api_key
        request.headers["User-Agent"] = f"airflow-provider-trackly/{__version__}"
        yield request

    def __repr__(self) -> str:
        return "TracklyAuth(api_key=***)"


def error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """
    ``(code, error)`` from an error body; copes with bodies without ``code`` and non-JSON bodies.

    Both are filtered (``redact.server_code``, ``redact.server_text``): a code outside the API's alphabet
    is ``unexpected_code``, a text loses its phone numbers and keys and is cut.
    """
    body = _json_or_none(response)
    if isinstance(body, dict) and (body.get("code") or body.get("error") or body.get("message")):
        code, text = body.get("code"), body.get("error") or body.get("message")
        return (server_code(code) if code else None), (server_text(text) if text else "") or "no error text"
    reason = server_text(response.reason_phrase or "error")
    return None, f"{reason} (non-JSON body, {describe_answer(response, response.content)})"


def origin(base_url: str) -> str:
    """``scheme://host[:port]`` of a base URL: where a connection goes, without its path."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def without_connection_id(message: str, conn_id: str) -> str:
    """
    ``message`` with the connection id left out, for the UI's Test button.

    The button tests a copy of the form under a random id (``'OlijjtSG'``), which means nothing to
    the person looking at the form: ``Connection 'x': the ...`` becomes ``The ...``, ``Connection
    'x' has`` becomes ``The connection has``, any other ``connection 'x'`` or ``'x'`` becomes
    ``the connection``.
    """
    for named, plain in (
        (f"Connection '{conn_id}': ", ""),
        (f"Connection '{conn_id}'", "The connection"),
        (f"connection '{conn_id}'", "the connection"),
        (f"'{conn_id}'", "the connection"),
    ):
        message = message.replace(named, plain)
    return message[:1].upper() + message[1:]


def unreachable_text(exc: httpx.HTTPError, url: str, connect_timeout: float, *, via_proxy: bool) -> str:
    """
    What the Test button says when its one attempt at ``url`` (an origin) failed on the network:
    ``Could not connect to <url>: <reason>`` and what to check, or what failed once connected.
    """
    where = (
        "Check the Base URL and Port, and that the Airflow api-server (where Test runs; the workers "
        "connect from their own hosts) can reach it: DNS, firewall, "
        + ("the proxy it goes through (Proxy URL, HTTPS_PROXY)." if via_proxy else "proxy (HTTPS_PROXY).")
    )
    if isinstance(exc, httpx.ConnectTimeout):
        reason = f"no answer within {connect_timeout:g} s (connect timeout)"
        return f"Could not connect to {url}: {reason}. {where}"
    if isinstance(exc, httpx.ConnectError):
        return f"Could not connect to {url}: {server_text(str(exc)) or type(exc).__name__}. {where}"
    return (
        f"Connected to {url}, but GET {LISTS_PATH} failed: {failure_label(exc)}. Check that the Base "
        "URL is Trackly's and no proxy or gateway on the way cuts the answer."
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def too_large_text(record: dict[str, Any], error: str) -> str:
    """
    Why a record alone was refused as too large, naming its largest field (never a value) and how
    to shorten it in the query; ``error`` is the API's text, already redacted.
    """
    sizes = {name: len(orjson.dumps(value)) for name, value in record.items()}
    field = max(sizes, key=sizes.__getitem__)
    return (
        f"Trackly refused the record alone as too large (HTTP 413: {error}; its limit is "
        f"{MAX_BODY_BYTES:,} bytes per request body); its largest field, {field}, is {sizes[field]:,} "
        f"bytes as JSON. Shorten that column in the query: LEFT({field}, 10000) or "
        f"SUBSTRING({field}, 1, 10000)."
    )


class TracklyHook(BaseHook):
    """
    Talk to the Trackly SMS API.

    The API key lives in the connection's password (the form's "API key"), so Airflow masks it. The
    host (the form's "Base URL") is the base URL (default ``https://app.tracklysms.com``; a
    scheme-less host means https; plain http only for loopback; a path for a gateway, also from the
    schema field; a Port, if given, must agree with it). Extras (empty or null: the default), each overridable
    by the matching argument here: ``connect_timeout`` (10 s), ``read_timeout`` (60 s, between two
    reads), ``request_timeout`` (120 s, a whole attempt), ``max_response_bytes`` (1,048,576 bytes,
    after decompression), ``max_attempts`` (5), ``backoff_base`` (1 s), ``backoff_max`` (60 s),
    ``retry_after_max`` (300 s), ``verify`` (true, false or a CA bundle path), ``client_cert`` and
    ``client_key`` (PEM paths), ``proxy`` (a URL; else ``HTTPS_PROXY``/``NO_PROXY``).

    :param trackly_conn_id: the Trackly connection id.
    """

    conn_name_attr = "trackly_conn_id"
    default_conn_name = "trackly_default"
    conn_type = "trackly"
    hook_name = "Trackly SMS"

    def __init__(
        self,
        trackly_conn_id: str = default_conn_name,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        retry_after_max: float | None = None,
        request_timeout: float | None = None,
        max_response_bytes: int | None = None,
        verify: bool | str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        proxy: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.trackly_conn_id = trackly_conn_id
        self._overrides = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_attempts": max_attempts,
            "backoff_base": backoff_base,
            "backoff_max": backoff_max,
            "retry_after_max": retry_after_max,
            "request_timeout": request_timeout,
            "max_response_bytes": max_response_bytes,
            "verify": verify,
            "client_cert": client_cert,
            "client_key": client_key,
            "proxy": proxy,
        }
        self._transport = transport
        self._sleep = sleep
        self._via_proxy = False  # set when the transport is opened

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form for Airflow 3.0 and 3.1; later releases read the provider info's."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """
        The extras as form fields for Airflow 3.0 and 3.1 (3.2+ reads the provider info's
        ``conn-fields``): the same names, labels and descriptions. Seconds are text fields, so that
        ``2.5`` can be typed (those releases take integer, text, password and boolean fields only).

        Only wtforms is imported, here and not at module level: Airflow imports the hook without it,
        and a missing wtforms (``ImportError`` named ``wtforms``) is what those releases expect
        when the FAB provider is absent (they then show the form without its custom fields).
        """
        from wtforms import IntegerField, StringField
        from wtforms.validators import Optional

        widgets = {}
        for name, field in CONN_FIELDS.items():
            kind = IntegerField if "integer" in field["schema"]["type"] else StringField
            widgets[name] = kind(field["label"], validators=[Optional()], description=field["description"])
        return widgets

    @cached_property
    def settings(self) -> TracklySettings:
        """The connection's validated settings (raises a clear error on a malformed key or URL)."""
        conn = self.get_connection(self.trackly_conn_id)
        extras = conn.extra_dejson  # parsed from JSON on each read
        for unknown in unknown_extras(extras):
            self.log.warning("Trackly connection '%s': %s", self.trackly_conn_id, unknown)
        return parse_settings(
            self.trackly_conn_id,
            host=conn.host,
            port=conn.port,
            password=conn.password,
            extras=extras,
            overrides=self._overrides,
            schema=conn.schema,
        )

    @cached_property
    def client(self) -> httpx.Client:
        """
        One pooled client for every request this hook makes: its TLS trust (``network/tls.py``), its
        proxy (``network/proxies.py``) and a deadline on every attempt (``network/deadlines.py``).
        """
        settings = self.settings
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        transport = self._transport or self._open_transport(limits)
        return httpx.Client(
            base_url=settings.base_url,
            auth=TracklyAuth(settings.api_key),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=limits,
            transport=transport,
            trust_env=False,  # the environment's proxies and CAs are read by _open_transport
        )

    def _open_transport(self, limits: httpx.Limits) -> httpx.HTTPTransport:
        transport, self._via_proxy = open_transport(self.trackly_conn_id, self.settings, limits, self.log)
        return transport

    def get_conn(self) -> httpx.Client:
        return self.client

    def close(self) -> None:
        """Close the pooled client, if one was opened."""
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    def import_clicks(self, records: Sequence[dict[str, Any]]) -> ImportResult:
        """Import 1 to 1,000 click records (``POST /api/v2/history/clicks``); see ``import_records``."""
        return self.import_records(CLICKS, records)

    def import_sends(self, records: Sequence[dict[str, Any]]) -> ImportResult:
        """Import 1 to 1,000 send records (``POST /api/v2/history/sends``); see ``import_records``."""
        return self.import_records(SENDS, records)

    def import_contacts(self, contacts: Sequence[dict[str, Any]]) -> ImportResult:
        """
        Create or update 1 to 1,000 contacts (``POST /api/v2/contacts/bulk``); see ``import_records``.

        Each contact is an object of at most 4,000 bytes as JSON (``phone_number`` and
        ``list_number`` in E.164, optional ``signup_date``, ``ip_address``, ``url``,
        ``custom_fields``); the caller decides ``use_journeys`` and ``use_validation`` (the
        operator always sends both). The result's ``counts`` hold ``contacts_created``,
        ``list_contacts_created`` and ``journeys_enrolled``; its errors never hold the phone
        numbers the answer repeats (dropped on arrival). A ``402`` (paid validation without
        billing) raises ``TracklyBillingError``.
        """
        return self.import_records(CONTACTS, contacts)

    def contact_reference(self, phone_number: str, default_region: str | None = None) -> str:
        """
        The reference (``c_`` and 16 hex digits) that stands for ``phone_number`` in the errors,
        XCom and rejects table of a contact import on this connection: a keyed hash with the API
        key (``trackly_api/references.py``), so that only holders of the key can find it.

        :param phone_number: the number as the query returns it; normalised to E.164 first.
        :raises ValueError: the value is not a phone number (nor one in ``default_region``).
        """
        number = phone_number_e164(phone_number, default_region)
        if number is None:
            raise ValueError("not a phone number: write it in E.164 (+14155550100) or pass default_region")
        return personal_reference(number, self.settings.api_key)

    def import_revenue(self, records: Sequence[dict[str, Any]]) -> ImportResult:
        """
        Import 1 to 1,000 revenue records (``POST /api/v2/history/revenue``); see ``import_records``.

        Trackly stores revenue every time it receives it, so a request whose outcome is unknown is
        never sent again: it raises ``TracklyOutcomeUnknownError``.
        """
        return self.import_records(REVENUE, records)

    def import_records(
        self, entity: Entity, records: Sequence[dict[str, Any]], must_be_zero: Sequence[str] = ()
    ) -> ImportResult:
        """
        Import 1 to 1,000 records of ``entity``; error indexes refer to ``records``.

        A 413 for an oversized body splits the batch in halves, down to single records; a single
        record still refused is an error of its own (``record_too_large``). Network faults, 429 and
        5xx are retried with the connection's backoff, except, for an entity Trackly does not
        deduplicate, a fault after the request may have reached it (see ``_send``). An answer whose
        count in ``must_be_zero`` is not 0 raises ``TracklyUnrequestedEffectError``
        (``parse_import_result``).
        """
        return self.import_encoded(
            entity, encode_records(records, entity.body_key), len(records), must_be_zero
        )

    def import_encoded(
        self, entity: Entity, body: bytes | memoryview, record_count: int, must_be_zero: Sequence[str] = ()
    ) -> ImportResult:
        """``import_records`` of a body from ``encode_records``, or of a pooled view (request_bodies.py)."""
        if not 1 <= record_count <= MAX_RECORDS_PER_REQUEST:
            raise ValueError(
                f"import_{entity.name} takes 1 to {MAX_RECORDS_PER_REQUEST} records per request, "
                f"got {record_count}."
            )
        response = self._send("POST", entity.path, body, resend_when_unknown=entity.deduplicated)
        if response.status_code == 413:
            return self._split_oversized(entity, orjson.loads(body)[entity.body_key], response, must_be_zero)
        if response.status_code != 200:
            raise self._api_error(response)
        result = parse_import_result(self._json(response), record_count, entity.answer_counts, must_be_zero)
        if result.duplicates_skipped and not entity.counts_duplicates:
            raise TracklyResponseError(
                f"Trackly answered duplicates_skipped = {result.duplicates_skipped} for {entity.name}, "
                "which it creates or updates and never skips; cannot trust the counts."
            )
        if result.unlisted_errors and record_count > MAX_ERRORS_LISTED and entity.deduplicated:
            return self._attribute_errors(entity, orjson.loads(body)[entity.body_key], result, must_be_zero)
        return result

    def _attribute_errors(
        self,
        entity: Entity,
        records: Sequence[dict[str, Any]],
        result: ImportResult,
        must_be_zero: Sequence[str] = (),
    ) -> ImportResult:
        """
        Find which records failed when the answer listed only the first 100 of its errors.

        Only for an entity Trackly deduplicates: the records not listed are sent again, at most 100
        a request (each answer then lists every error): those stored the first time come back as
        duplicates and are still counted as imported; every record is counted once.
        """
        listed = {error.index for error in result.errors}
        unlisted = [index for index in range(len(records)) if index not in listed]
        errors = list(result.errors)
        imported = result.success_count
        counts, warnings = Counter(result.counts), result.warnings
        still_unlisted = 0
        for start in range(0, len(unlisted), MAX_ERRORS_LISTED):
            part = unlisted[start : start + MAX_ERRORS_LISTED]
            answer = self.import_records(entity, [records[index] for index in part], must_be_zero)
            imported += answer.success_count  # failed the first time, stored now (or updated again)
            counts.update(answer.counts)
            warnings += tuple(w for w in answer.warnings if w not in warnings)
            errors += [RecordError(part[error.index], error.code, error.error) for error in answer.errors]
            still_unlisted += answer.unlisted_errors
        self.log.info(
            "Trackly listed %d of %d errors for %d records; sent the other %d records again in %d "
            "request(s) to learn which failed.",
            len(result.errors),
            result.error_count,
            len(records),
            len(unlisted),
            -(-len(unlisted) // MAX_ERRORS_LISTED),
        )
        errors.sort(key=lambda error: error.index)
        error_count = len(errors) + still_unlisted
        if not entity.counts_duplicates:  # an upsert: a record stored the first time is updated again
            imported = len(records) - error_count
        duplicates = len(records) - imported - error_count
        if duplicates < 0:
            raise TracklyResponseError(
                f"Trackly's counts do not add up after sending {len(unlisted)} records again to attribute "
                f"their errors: {imported} imported and {error_count} errors out of {len(records)}."
            )
        totals = {name: min(counts[name], imported) for name in entity.answer_counts}
        return ImportResult(imported, error_count, duplicates, errors, totals, warnings)

    def _split_oversized(
        self,
        entity: Entity,
        records: Sequence[dict[str, Any]],
        response: httpx.Response,
        must_be_zero: Sequence[str] = (),
    ) -> ImportResult:
        """
        A 413 means nothing was stored: send the batch again in halves, down to single records.

        A single record still refused is an error of that record alone (``record_too_large``), so
        the rest of the batch is imported. A 413 ``too_many_records`` is a bug of ours and raises.
        """
        code, error = error_fields(response)
        if code == entity.too_many_code:
            raise TracklyApiError(
                413,
                code,
                error,
                context=f"Trackly refused a request of {len(records)} record(s) as too many "
                "(a bug in airflow-provider-trackly: it sends at most 1,000; please report it)",
            )
        if len(records) == 1:
            self.log.warning("Trackly answered 413 for a single %s record; it is rejected.", entity.name)
            too_large = RecordError(0, RECORD_TOO_LARGE, too_large_text(records[0], error))
            return ImportResult(0, 1, 0, [too_large])
        half = len(records) // 2
        self.log.warning("Trackly answered 413 for %d records; splitting into halves.", len(records))
        first = self.import_records(entity, records[:half], must_be_zero)
        return first + self.import_records(entity, records[half:], must_be_zero).shifted(half)

    def wait_before_retry(self, attempt: int) -> float:
        """Sleep the connection's backoff before retry ``attempt`` (1 = the first retry); return it."""
        delay = self.settings.retry.backoff(attempt)
        self._sleep(delay)
        return delay

    def check_access(self, *, once: bool = False) -> None:
        """
        Call ``GET /api/v2/lists``, a cheap authenticated read; raise what an import would meet.

        The answer must be Trackly's: a 200 JSON object with a ``lists`` array (the API page). A login
        page, captive portal or proxy that answers 200 raises ``TracklyResponseError`` saying what
        came back; an error status raises as ``_api_error`` does. With ``once``, one attempt within
        ``TEST_BUTTON_SECONDS`` (30 s) and a connection opened within ``TEST_BUTTON_CONNECT_SECONDS``
        (5 s), as the Test button must answer while the user waits; a network failure then raises
        ``TracklyTransientError`` naming the URL tried (``unreachable_text``).
        """
        response = self._try_once(LISTS_PATH) if once else self._send("GET", LISTS_PATH, None)
        if response.status_code != 200:
            raise self._api_error(response)
        body = _json_or_none(response)
        json_type = media_type(response).lower().endswith("json")
        if not (json_type and isinstance(body, dict) and isinstance(body.get("lists"), list)):
            kind = "not JSON" if body is None else "JSON without a 'lists' array"
            kind = kind if json_type or body is None else "not a JSON content type"
            raise TracklyResponseError(
                f"GET {response.request.url.path} answered {response.status_code} with "
                f"{describe_answer(response, response.content)}: "
                f'{kind}, so not Trackly\'s answer ({{"lists": [...]}}). Something between this worker '
                f"and Trackly answered instead: check the Base URL ({self.settings.base_url}) and any "
                "proxy or login portal on the way."
            )

    def test_connection(self) -> tuple[bool, str]:
        """
        For the UI's Test button: ``(True, "Connected to Trackly at <Base URL>: the API key works.")``,
        or ``(False, why)``, from ``check_access(once=True)`` (one attempt, connect timeout at most
        5 s, at most 30 s in all). ``why`` names the URL tried and the form's fields by their labels
        (API key, Base URL, Port), never the connection id (the button tests a copy under a random
        one), the key or a phone number.
        """
        try:
            self.check_access(once=True)
        except Exception as exc:
            return False, without_connection_id(str(exc), self.trackly_conn_id)
        return True, f"Connected to Trackly at {self.settings.base_url}: the API key works."

    def _try_once(self, path: str) -> httpx.Response:
        """``GET path`` once with the Test button's limits (``check_access(once=True)``)."""
        settings = self.settings
        connect_timeout = min(settings.connect_timeout, TEST_BUTTON_CONNECT_SECONDS)
        try:
            return send_once(
                self.client,
                "GET",
                path,
                None,
                request_timeout=min(settings.request_timeout, TEST_BUTTON_SECONDS),
                max_response_bytes=settings.max_response_bytes,
                conn_id=self.trackly_conn_id,
                connect_timeout=connect_timeout,
            )
        except httpx.HTTPError as exc:
            url = str(self.client.base_url).rstrip("/")
            trust = trust_source(settings.verify)
            problem = configuration_problem(exc, self.trackly_conn_id, url, trust, via_proxy=self._via_proxy)
            if problem:
                raise TracklyConfigError(problem) from None
            where = origin(settings.base_url)
            raise TracklyTransientError(
                unreachable_text(exc, where, connect_timeout, via_proxy=self._via_proxy)
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        content: bytes | memoryview | None,
        *,
        resend_when_unknown: bool = True,
        attempts: int | None = None,
        request_timeout: float | None = None,
    ) -> httpx.Response:
        """
        Send with retries on network faults, 429 and 5xx; return the first final response.

        With ``resend_when_unknown=False`` only failures that certainly left the request
        unprocessed are retried (``RetryPolicy.certainly_unprocessed_error``/``_status``, and any
        fault before a byte of the request left); any other fault raises
        ``TracklyOutcomeUnknownError`` at once. A fault no retry can fix (a refused certificate, a
        proxy refusing its credentials) raises ``TracklyConfigError`` at once. ``attempts`` and
        ``request_timeout`` override the connection's.
        """
        retry = self.settings.retry
        max_attempts = attempts or retry.max_attempts
        for attempt in range(1, max_attempts + 1):
            try:
                response = send_once(
                    self.client,
                    method,
                    path,
                    content,
                    request_timeout=request_timeout or self.settings.request_timeout,
                    max_response_bytes=self.settings.max_response_bytes,
                    conn_id=self.trackly_conn_id,
                )
            except httpx.HTTPError as exc:
                url = str(self.client.base_url).rstrip("/")
                problem = configuration_problem(
                    exc,
                    self.trackly_conn_id,
                    url,
                    trust_source(self.settings.verify),
                    via_proxy=self._via_proxy,
                )
                if problem:
                    raise TracklyConfigError(problem) from None
                if not retry.is_retryable_error(exc):
                    raise
                failure = failure_label(exc)
                if not resend_when_unknown and not retry.certainly_unprocessed_error(exc):
                    raise TracklyOutcomeUnknownError(
                        f"{method} {path}: {failure} after the request was sent"
                    ) from None
                wait = None
            else:
                if not retry.is_retryable_status(response.status_code):
                    return response
                if not resend_when_unknown and not retry.certainly_unprocessed_status(response.status_code):
                    raise TracklyOutcomeUnknownError(f"{method} {path}: HTTP {response.status_code}")
                failure = f"HTTP {response.status_code}"
                wait = parse_retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait > retry.retry_after_max:
                    raise TracklyTransientError(  # the value is the server's: not quoted
                        f"Trackly asked to wait longer than retry_after_max={retry.retry_after_max:.0f} s "
                        f"(Retry-After) before retrying {method} {path} on connection "
                        f"'{self.trackly_conn_id}'. Raise retry_after_max or rerun later."
                    )
            if attempt == max_attempts:
                tries = "once" if attempt == 1 else f"{attempt} times"
                raise TracklyRetriesExhaustedError(
                    f"{method} {path} failed {tries}, the last with {failure}; giving up."
                )
            delay = wait if wait is not None else retry.backoff(attempt)
            self.log.warning(
                "Trackly %s %s failed with %s (attempt %d of %d); retrying in %.2f s.",
                method,
                path,
                failure,
                attempt,
                max_attempts,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, response: httpx.Response) -> Any:
        """A 200's JSON body; a body that is not JSON raises ``TracklyResponseError`` saying what it is."""
        body = _json_or_none(response)
        if body is None:
            raise TracklyResponseError(
                f"Trackly answered {response.request.method} {response.request.url.path} with "
                f"{response.status_code} {describe_answer(response, response.content)}: not a JSON "
                "object, so the batch is not counted."
            )
        return body

    def _api_error(self, response: httpx.Response) -> TracklyApiError:
        code, error = error_fields(response)
        status = response.status_code
        if status == 401:
            return TracklyAuthError(
                status,
                code,
                error,
                context=f"Trackly rejected the API key of connection '{self.trackly_conn_id}' at "
                f"{origin(self.settings.base_url)}: check the connection's API key (copy it again from "
                "Trackly's settings page)",
            )
        if status == 403:
            return TracklyAuthError(
                status,
                code,
                error,
                context=f"Trackly at {origin(self.settings.base_url)} refused connection "
                f"'{self.trackly_conn_id}' (403: the account may be suspended or the API key lacks access)",
            )
        if status == 402:  # the API page: validation asked for without billing, or a suspended account
            advice = (
                "the account is suspended for billing: settle it in Trackly"
                if code == "suspended"
                else "paid phone validation (use_validation) needs a payment method on the Trackly "
                "account: add one in Trackly's billing settings, or import without paid_phone_validation"
            )
            return TracklyBillingError(
                status,
                code,
                error,
                context=f"Trackly refused the whole request of {response.request.url.path} for billing "
                f"(402, nothing was stored): {advice}",
            )
        context = f"Trackly answered {response.request.method} {response.request.url.path} with an error"
        if 300 <= status < 400:
            target = urlsplit(response.headers.get("location", "")).hostname or "an unknown place"
            context = (
                f"{response.request.method} {response.request.url.path} was redirected to "
                f"{server_text(target)[:100]} (a login portal, or a Base URL that moved?): Trackly's API "
                f"does not redirect; check the Base URL ({self.settings.base_url}) and any proxy on the way"
            )
        if status == 404:
            return TracklyEndpointNotFoundError(
                status,
                code,
                error,
                context=f"Nothing answers {response.request.method} {response.request.url.path} at "
                f"{self.settings.base_url}, the Base URL of connection '{self.trackly_conn_id}': set it to "
                "Trackly's host alone (https://app.tracklysms.com; the API's /api/v2 is added), or, if "
                "Trackly sits behind a gateway under a path, put that path in the Base URL, e.g. "
                "https://gateway.example/trackly. A retry cannot fix this",
            )
        return TracklyApiError(status, code, error, context=context)
