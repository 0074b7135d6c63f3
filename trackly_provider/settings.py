"""Turn an Airflow connection's fields into validated Trackly client settings (pure, no I/O)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from trackly_provider.exceptions import TracklyConfigError

DEFAULT_BASE_URL = "https://app.tracklysms.com"
API_KEY_PATTERN = re.compile(r"^trk_[A-Za-z0-9]{32}$")


@dataclass(frozen=True)
class RetrySettings:
    """How the hook retries transient failures."""

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 300.0


@dataclass(frozen=True)
class TracklySettings:
    """Everything the hook needs to talk to Trackly."""

    base_url: str
    api_key: str
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetrySettings = RetrySettings()

    @property
    def lineage_namespace(self) -> str:
        return lineage_namespace(self.base_url)

    @property
    def longest_request_seconds(self) -> float:
        """
        The longest one request may take with all its retries, in seconds: every attempt connecting
        and waiting for its answer (``connect_timeout + read_timeout``), and the longest wait between
        two attempts (``backoff_max``, or ``retry_after_max`` for a ``Retry-After``). A source read
        waiting on one request stalls at most this long (defaults: 5 x 70 + 4 x 300 = 1,550 s).
        """
        retry = self.retry
        attempts = max(1, retry.max_attempts)
        longest_wait = max(retry.backoff_max, retry.retry_after_max)
        return attempts * (self.connect_timeout + self.read_timeout) + (attempts - 1) * longest_wait


def lineage_namespace(base_url: str) -> str:
    """``trackly://<host[:port]>[/path]``: the OpenLineage namespace of a Trackly's datasets."""
    return "trackly://" + base_url.split("://", 1)[-1].rstrip("/")


def validate_api_key(raw_key: str | None, conn_id: str) -> str:
    """Return the key stripped of surrounding whitespace, or raise naming the connection, never the key."""
    key = (raw_key or "").strip()
    if not key:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has no API key: put the Trackly API key in the connection's "
            "password field (the UI labels it 'API key')."
        )
    if not API_KEY_PATTERN.match(key):
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a malformed API key: expected 'trk_' followed by 32 letters "
            "or digits. Copy the key again from Trackly's settings page."
        )
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def build_base_url(host: str | None, port: int | None, conn_id: str) -> str:
    """Build ``scheme://host[:port]`` from the connection's host (scheme optional, https by default)."""
    raw = (host or "").strip() or DEFAULT_BASE_URL
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has an invalid base URL {raw!r}: use e.g. 'https://app.tracklysms.com'."
        )
    hostname = parts.hostname
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise TracklyConfigError(
            f"Connection '{conn_id}' uses plain http:// for {hostname!r}; the API key would travel in "
            "clear text. Use https:// (plain http is allowed only for localhost and loopback addresses)."
        )
    netloc_host = f"[{hostname}]" if ":" in hostname else hostname
    effective_port = port or parts.port
    netloc = f"{netloc_host}:{effective_port}" if effective_port else netloc_host
    path = parts.path.rstrip("/")
    if path.endswith("/api/v2"):
        path = path[: -len("/api/v2")]
    return f"{parts.scheme}://{netloc}{path}"


def _number(extras: Mapping[str, Any], name: str, default: float, conn_id: str) -> float:
    value = extras.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TracklyConfigError(
            f"Connection '{conn_id}' extra '{name}' must be a number, got {value!r}."
        ) from None
    if number <= 0 and name != "backoff_base":
        raise TracklyConfigError(f"Connection '{conn_id}' extra '{name}' must be positive, got {value!r}.")
    return number


def parse_settings(
    conn_id: str,
    *,
    host: str | None,
    port: int | None,
    password: str | None,
    extras: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
) -> TracklySettings:
    """Validate a connection's fields; hook arguments in ``overrides`` win over the extras."""
    merged = {**extras, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    attempts = int(_number(merged, "max_attempts", RetrySettings.max_attempts, conn_id))
    return TracklySettings(
        base_url=build_base_url(host, port, conn_id),
        api_key=validate_api_key(password, conn_id),
        connect_timeout=_number(merged, "connect_timeout", TracklySettings.connect_timeout, conn_id),
        read_timeout=_number(merged, "read_timeout", TracklySettings.read_timeout, conn_id),
        retry=RetrySettings(
            max_attempts=attempts,
            backoff_base=_number(merged, "backoff_base", RetrySettings.backoff_base, conn_id),
            backoff_max=_number(merged, "backoff_max", RetrySettings.backoff_max, conn_id),
            retry_after_max=_number(merged, "retry_after_max", RetrySettings.retry_after_max, conn_id),
        ),
    )
