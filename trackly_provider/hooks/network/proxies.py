"""
Which forward proxy, if any, the hook uses to reach its one Trackly host.

The connection extra ``proxy`` wins and is used for every request. Otherwise the environment decides,
as for requests and httpx: ``HTTPS_PROXY`` (or ``HTTP_PROXY`` for a plain-http sandbox), then
``ALL_PROXY``, lower-case names first, skipped for hosts listed in ``NO_PROXY`` (read as curl and
requests read it: see ``bypasses_proxy``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from trackly_provider.exceptions import TracklyConfigError

PROXY_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}


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
        if bypasses_proxy(base_url, lowered.get("no_proxy", "")):
            return None
        return _checked(conn_id, ProxyChoice(url if "://" in url else f"http://{url}", name.upper()))
    return None


def bypasses_proxy(base_url: str, no_proxy: str) -> bool:
    """
    Whether ``NO_PROXY`` (its value ``no_proxy``) sends requests to ``base_url`` around the proxy.

    Read as curl and requests read it, case-insensitively: entries are separated by commas and/or
    spaces; ``*`` bypasses every host; a leading ``.`` or ``*.`` and a trailing ``.`` are ignored,
    so ``example.com`` matches ``example.com`` and its subdomains (``api.example.com``) but never
    ``badexample.com``; an IP address (IPv6 with or without brackets: ``::1``, ``[::1]``) matches
    that address; a CIDR block (``10.0.0.0/8``, ``fd00::/8``) matches the IP addresses inside it;
    ``host:port`` matches only that port, the base URL's port being its scheme's default (443 for
    https, 80 for http) when it names none.
    """
    parts = urlsplit(base_url)
    host = (parts.hostname or "").rstrip(".").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    address = _ip_address(host)
    for entry in re.split(r"[,\s]+", no_proxy.lower()):
        if entry == "*":
            return True
        name, entry_port = _entry_host_and_port(entry)
        if not name or (entry_port is not None and entry_port != port):
            continue
        if "/" in name:
            if address is not None and _in_network(address, name):
                return True
        elif address is not None or _ip_address(name) is not None:
            if address is not None and address == _ip_address(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _entry_host_and_port(entry: str) -> tuple[str, int | None]:
    """
    ``(host, port)`` of one lower-cased NO_PROXY entry: ``[::1]:8080`` -> ``("::1", 8080)``,
    ``*.a.b.`` -> ``("a.b", None)``; ``("", None)`` for an entry whose port is not a number.
    """
    port: int | None = None
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        inside, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return inside, port
    if entry.count(":") == 1:  # host:port; more than one ':' is a bare IPv6 address
        name, _, text = entry.partition(":")
        if not text.isdigit():
            return "", None  # not a port: an entry that matches nothing
        entry, port = name, int(text)
    entry = entry.removeprefix("*.").lstrip(".").rstrip(".")
    return entry, port


def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _in_network(address: ipaddress.IPv4Address | ipaddress.IPv6Address, cidr: str) -> bool:
    try:
        return address in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


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
