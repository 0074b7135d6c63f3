"""Turn an Airflow connection's fields into validated Trackly client settings (pure, no I/O)."""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.retry import RetryPolicy
from trackly_provider.trackly_api.redact import server_text

DEFAULT_BASE_URL = "https://app.tracklysms.com"
API_KEY_PATTERN = re.compile(r"^trk_[A-Za-z0-9]{32}$")
EXTRA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,59}")  # shown in a warning only if it is one
CONN_TYPE = "trackly"
# What a path may hold (RFC 3986 section 3.3: unreserved, percent-encoded, sub-delims, ':', '@', '/').
URL_PATH_PATTERN = re.compile(r"^(/([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*$")
MASKED = "***"  # what Airflow's UI and API show (and some Test buttons send) instead of a secret
DEFAULT_PORTS = {"https": 443, "http": 80}  # not written into the base URL
TRUE_TEXTS = ("true", "yes", "on", "1")
FALSE_TEXTS = ("false", "no", "off", "0")
# Every connection extra this provider reads (TracklySettings' fields of the same names).
KNOWN_EXTRAS = (
    "connect_timeout",
    "read_timeout",
    "request_timeout",
    "max_response_bytes",
    "max_attempts",
    "backoff_base",
    "backoff_max",
    "retry_after_max",
    "verify",
    "client_cert",
    "client_key",
    "proxy",
)
# Extras of Airflow's HttpHook that people copy over, and what to use here instead.
HTTP_HOOK_EXTRAS = {
    "proxies": "use 'proxy', one proxy URL such as 'http://proxy.internal:3128'",
    "cert": "use 'client_cert' (and 'client_key' when the key is in its own file)",
    "timeout": "use 'request_timeout' (seconds per attempt), or 'connect_timeout' and 'read_timeout'",
    "verify_ssl": "use 'verify' (true, false or the path of a PEM CA bundle)",
}


@dataclass(frozen=True)
class TracklySettings:
    """Everything the hook needs to talk to Trackly."""

    base_url: str
    api_key: str
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    request_timeout: float = 120.0
    max_response_bytes: int = 1_048_576
    verify: bool | str = True  # True: the usual CAs (network/tls.py); False: none; str: a bundle
    client_cert: str | None = None
    client_key: str | None = None
    proxy: str | None = None  # None: the environment decides (network/proxies.py)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def lineage_namespace(self) -> str:
        return lineage_namespace(self.base_url)

    @property
    def longest_request_seconds(self) -> float:
        """
        The longest one request may take with all its retries, in seconds: every attempt up to its
        deadline (``request_timeout``), and the longest wait between two attempts (``backoff_max``,
        or ``retry_after_max`` for a ``Retry-After``). A source read waiting on one request stalls at
        most this long (defaults: 5 x 120 + 4 x 300 = 1,800 s).
        """
        retry = self.retry
        attempts = max(1, retry.max_attempts)
        longest_wait = max(retry.backoff_max, retry.retry_after_max)
        return attempts * self.request_timeout + (attempts - 1) * longest_wait


def unknown_extras(extras: Mapping[str, Any]) -> list[str]:
    """
    One message per extra this provider does not read (in the extras' order; ``[]`` when all are
    known), for the hook to log as warnings: a misspelt extra would otherwise be silently ignored.
    A close name is suggested (``"extra 'request_timout' is not read by this provider; did you mean
    'request_timeout'?"``); HttpHook's ``proxies``, ``cert``, ``timeout`` and ``verify_ssl`` get
    the extra to use instead. Names only, never values (a value may be a secret).
    """
    messages = []
    for key in extras:
        if key in KNOWN_EXTRAS:
            continue
        name = str(key)
        if not EXTRA_NAME.fullmatch(name) or server_text(name) != name:  # a URL, key, phone: not logged
            messages.append(
                "an extra whose name is not a word (letters, digits, '_', '-', '.') is not read by this "
                "provider; its name is not shown, in case it holds a secret"
            )
            continue
        bare = name.removeprefix(f"extra__{CONN_TYPE}__")
        if bare != name and bare in KNOWN_EXTRAS:
            messages.append(
                f"extra {name!r} is not read by this provider; name it {bare!r}, without the prefix"
            )
            continue
        message = f"extra {name!r} is not read by this provider"
        if name in HTTP_HOOK_EXTRAS:
            message += f" (it is Airflow's HttpHook's): {HTTP_HOOK_EXTRAS[name]}"
        else:
            close = difflib.get_close_matches(name.lower(), KNOWN_EXTRAS, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        messages.append(message)
    return messages


def lineage_namespace(base_url: str) -> str:
    """``trackly://<host[:port]>[/path]``: the OpenLineage namespace of a Trackly's datasets."""
    return "trackly://" + base_url.split("://", 1)[-1].rstrip("/")


def validate_api_key(raw_key: str | None, conn_id: str) -> str:
    """Return the key stripped of surrounding whitespace, or raise naming the connection, never the key."""
    key = (raw_key or "").strip()
    if not key:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has no API key: put the Trackly API key in the connection's "
            "API key field (its password)."
        )
    if key == MASKED:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has the mask {MASKED!r} as its API key, not the key itself: Airflow "
            "3.3.1's Test button sends it when the Base URL or Port is empty. Fill in both (Port: 443 "
            "for https), save, and press Test again; or type the API key again before Test."
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


def build_base_url(host: str | None, port: int | None, conn_id: str, schema: str | None = None) -> str:
    """
    Build ``scheme://host[:port][/path]`` from the connection's host, port and schema.

    The host may be a URL with a scheme (https by default) and a path (Trackly behind a gateway);
    the schema, where a URI connection (``trackly://:KEY@gateway.example/trackly``) puts its path,
    is that path, or the scheme when it is ``http`` or ``https`` (as Airflow's HttpHook reads it).
    A trailing ``/api/v2`` (any case) is dropped, and so is the scheme's default port (443 for
    https, 80 for http), whether it comes from the Base URL or the Port field. Raises
    ``TracklyConfigError`` for what cannot be used, never quoting the host (it may hold a password).
    """
    raw = (host or "").strip() or DEFAULT_BASE_URL
    if any(c.isspace() or not c.isprintable() for c in raw + (schema or "").strip()):
        raise TracklyConfigError(  # urlsplit would drop tabs and newlines without a word
            f"Connection '{conn_id}' has a space, tab, newline or control character inside its Base URL "
            "or schema: remove it."
        )
    schema = (schema or "").strip()
    scheme_from_schema = schema.lower() if schema.lower() in ("http", "https") else None
    if scheme_from_schema and "://" in raw and not raw.lower().startswith(f"{scheme_from_schema}://"):
        raise TracklyConfigError(
            f"Connection '{conn_id}' names two schemes: one in the Base URL (host) and "
            f"'{scheme_from_schema}' in the schema field. Keep one of them."
        )
    if "://" not in raw:
        raw = f"{scheme_from_schema or 'https'}://{raw}"
    try:
        parts = urlsplit(raw)
        host_port = parts.port
    except ValueError:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a Base URL whose port is not a number from 0 to 65535: "
            "use e.g. 'https://app.tracklysms.com' or 'https://gateway.example:8443/trackly'."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has an invalid Base URL (scheme {parts.scheme[:10]!r}): use e.g. "
            "'https://app.tracklysms.com' or 'https://gateway.example/trackly'."
        )
    if parts.username is not None or parts.password is not None:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a user or password in its Base URL (host): remove it. The API "
            "key goes in the API key field (password); a proxy's credentials go in the extra 'proxy'."
        )
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a query string or fragment ('?' or '#') in its Base URL: "
            "Trackly's paths are added after the Base URL, so it cannot hold one. Remove it."
        )
    hostname = parts.hostname
    if parts.scheme == "http" and not _is_loopback(hostname):
        raise TracklyConfigError(
            f"Connection '{conn_id}' uses plain http:// for {hostname!r}; the API key would travel in "
            "clear text. Use https:// (plain http is allowed only for localhost and loopback addresses)."
        )
    if port and host_port and port != host_port:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has port {port} in its Port field but {host_port} in its Base URL: "
            "keep one of them."
        )
    path = _gateway_path(parts.path, "" if scheme_from_schema else schema, conn_id)
    netloc_host = f"[{hostname}]" if ":" in hostname else hostname
    effective_port = port or host_port
    if effective_port == DEFAULT_PORTS[parts.scheme]:
        effective_port = None  # https://host:443 is https://host: one URL, one lineage namespace
    netloc = f"{netloc_host}:{effective_port}" if effective_port else netloc_host
    return f"{parts.scheme}://{netloc}{path}"


def _gateway_path(host_path: str, schema_path: str, conn_id: str) -> str:
    """The path Trackly sits under (``""`` or ``/a/b``), from the host's path or the schema field."""
    host_path = host_path.rstrip("/")
    schema_path = "/" + schema_path.strip("/") if schema_path.strip("/") else ""
    if "//" in host_path or "//" in schema_path:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a Base URL path with an empty segment ('//'), which "
            "servers and proxies read in different ways. Give the gateway's path with single "
            "slashes, e.g. '/trackly'."
        )
    if host_path and schema_path and host_path != schema_path:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a path in its Base URL ({host_path!r}) and another in its "
            f"schema field ({schema_path!r}): keep it in one place (the Base URL, e.g. "
            "'https://gateway.example/trackly')."
        )
    path = host_path or schema_path
    if not URL_PATH_PATTERN.match(path) or any(
        unquote(segment) in (".", "..") for segment in path.split("/")
    ):
        raise TracklyConfigError(
            f"Connection '{conn_id}' has a Base URL path that cannot be used as given: it holds '.' or "
            "'..' segments (also as %2E), a '%' not followed by two hex digits, or characters a URL "
            "path cannot hold (spaces, quotes, '<', '>', '\\', non-ASCII). "
            "Give the gateway's path as it appears in its URLs, percent-encoded, e.g. '/trackly'."
        )
    if path.lower().endswith("/api/v2"):
        path = path[: -len("/api/v2")]
    return path


def _given(extras: Mapping[str, Any], name: str, default: Any) -> Any:
    """
    The extra ``name``, or ``default`` when it is absent, ``null`` or blank text: what an empty field
    of the connection form leaves (Airflow 3.2+ writes ``null``, 3.0 and 3.1 an empty string).
    """
    value = extras.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return value


def _flag_or_path(extras: Mapping[str, Any], name: str, conn_id: str) -> bool | str:
    """The extra ``verify``: a bool (JSON or text) or the path of a CA bundle; empty means true."""
    value = _given(extras, name, True)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lower() in TRUE_TEXTS:
            return True
        if text.lower() in FALSE_TEXTS:
            return False
        return str(Path(text).expanduser())
    raise TracklyConfigError(
        f"Connection '{conn_id}' extra '{name}' must be true, false or the path of a PEM CA bundle, "
        f"got a {type(value).__name__}."
    )


def _optional_text(extras: Mapping[str, Any], name: str, conn_id: str) -> str | None:
    value = extras.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise TracklyConfigError(
            f"Connection '{conn_id}' extra '{name}' must be text, got a {type(value).__name__}."
        )
    return value.strip()


def _finite(extras: Mapping[str, Any], name: str, default: float, conn_id: str) -> float:
    """A finite number, as a JSON number or text (not a bool); absent, null or blank: ``default``."""
    value = _given(extras, name, default)
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise TracklyConfigError(
            f"Connection '{conn_id}' extra '{name}' must be a finite number, got {repr(value)[:40]}."
        )
    return number


def _number(extras: Mapping[str, Any], name: str, default: float, conn_id: str) -> float:
    """A positive finite number of seconds (``backoff_base``: zero or more)."""
    number = _finite(extras, name, default, conn_id)
    shown = repr(_given(extras, name, default))[:40]
    if name == "backoff_base" and number < 0:
        raise TracklyConfigError(
            f"Connection '{conn_id}' extra '{name}' must be zero or more seconds, got {shown}."
        )
    if number <= 0 and name != "backoff_base":
        raise TracklyConfigError(f"Connection '{conn_id}' extra '{name}' must be positive, got {shown}.")
    return number


def _whole_number(extras: Mapping[str, Any], name: str, default: int, conn_id: str) -> int:
    """A whole number of at least 1 (``3``, ``3.0`` or ``"3"``), for counts (attempts, bytes)."""
    number = _finite(extras, name, default, conn_id)
    if number < 1 or not number.is_integer():
        raise TracklyConfigError(
            f"Connection '{conn_id}' extra '{name}' must be a whole number of at least 1, got "
            f"{repr(_given(extras, name, default))[:40]}."
        )
    return int(number)


def parse_settings(
    conn_id: str,
    *,
    host: str | None,
    port: int | None,
    password: str | None,
    extras: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    schema: str | None = None,
) -> TracklySettings:
    """Validate a connection's fields; hook arguments in ``overrides`` win over the extras."""
    merged = {**extras, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    attempts = _whole_number(merged, "max_attempts", RetryPolicy.max_attempts, conn_id)
    client_cert = _optional_text(merged, "client_cert", conn_id)
    client_key = _optional_text(merged, "client_key", conn_id)
    if client_key and not client_cert:
        raise TracklyConfigError(
            f"Connection '{conn_id}' has extra 'client_key' without 'client_cert': give the client "
            "certificate's path in 'client_cert' too."
        )
    return TracklySettings(
        base_url=build_base_url(host, port, conn_id, schema),
        api_key=validate_api_key(password, conn_id),
        connect_timeout=_number(merged, "connect_timeout", TracklySettings.connect_timeout, conn_id),
        read_timeout=_number(merged, "read_timeout", TracklySettings.read_timeout, conn_id),
        request_timeout=_number(merged, "request_timeout", TracklySettings.request_timeout, conn_id),
        max_response_bytes=_whole_number(
            merged, "max_response_bytes", TracklySettings.max_response_bytes, conn_id
        ),
        verify=_flag_or_path(merged, "verify", conn_id),
        client_cert=str(Path(client_cert).expanduser()) if client_cert else None,
        client_key=str(Path(client_key).expanduser()) if client_key else None,
        proxy=_optional_text(merged, "proxy", conn_id),
        retry=RetryPolicy(
            max_attempts=attempts,
            backoff_base=_number(merged, "backoff_base", RetryPolicy.backoff_base, conn_id),
            backoff_max=_number(merged, "backoff_max", RetryPolicy.backoff_max, conn_id),
            retry_after_max=_number(merged, "retry_after_max", RetryPolicy.retry_after_max, conn_id),
        ),
    )
