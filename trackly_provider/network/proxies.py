"""
Which forward proxy, if any, the hook uses to reach its one Trackly host.

The connection extra ``proxy`` wins and is used for every request. Otherwise the environment decides,
as for requests and httpx: ``HTTPS_PROXY`` (or ``HTTP_PROXY`` for a plain-http sandbox), then
``ALL_PROXY``, lower-case names first, skipped for hosts listed in ``NO_PROXY``.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from trackly_provider.exceptions import TracklyConfigError

PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ProxyChoice:
    """The proxy URL (credentials included, never to be logged) and where it came from."""

    url: str
    origin: str

    @property
    def shown(self) -> str:
        """The URL without its user and password, for logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def choose_proxy(
    conn_id: str, base_url: str, extra: str | None, environ: Mapping[str, str] = os.environ
) -> ProxyChoice | None:
    """
    The proxy for ``base_url``, or None to connect directly.

    :raises TracklyConfigError: a proxy URL that is not ``http(s)://host[:port]``.
    """
    if extra:
        return _checked(conn_id, ProxyChoice(extra.strip(), "extra 'proxy'"))
    scheme = urlsplit(base_url).scheme
    lowered = {name.lower(): value for name, value in environ.items() if value}
    lowered.update({name: value for name, value in environ.items() if name.islower() and value})
    for name in (f"{scheme}_proxy", "all_proxy"):
        url = lowered.get(name, "").strip()
        if not url:
            continue
        host = urlsplit(base_url).netloc
        no_proxy = lowered.get("no_proxy", "")
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if no_proxy and bypass(host, {"no": no_proxy}):
            return None
        return _checked(conn_id, ProxyChoice(url if "://" in url else f"http://{url}", name.upper()))
    return None


def _checked(conn_id: str, choice: ProxyChoice) -> ProxyChoice:
    try:
        parts = urlsplit(choice.url)
        usable = parts.scheme in PROXY_SCHEMES and bool(parts.hostname) and parts.path in ("", "/")
        usable = usable and (parts.port is None or parts.port > 0)  # .port raises on a bad port
    except ValueError:
        usable = False
    if not usable:
        raise TracklyConfigError(
            f"Connection '{conn_id}': the proxy from {choice.origin} is not a proxy URL this provider "
            "can use: give http://host:port (or https://, with user:password@ before the host if the "
            "proxy needs them)."
        )
    return choice
