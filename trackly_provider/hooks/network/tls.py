"""
Which certificates the hook trusts, and what a certificate failure means.

Trust, the first found wins (the order requests and Airflow's HTTP provider follow, then httpx's):
the connection extra ``verify`` as a path, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``,
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, then certifi's bundle. A bundle replaces certifi's, as in
requests: a corporate bundle must hold every CA the worker needs to reach Trackly.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import certifi

from trackly_provider.exceptions import TracklyConfigError

CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
FIX = (
    "Trust the CA that signed it with the connection extra 'verify' set to the path of its PEM bundle "
    "(or the environment variable REQUESTS_CA_BUNDLE or SSL_CERT_FILE on every worker)"
)


@dataclass(frozen=True)
class TrustSource:
    """Where the trusted CAs come from: ``origin`` names the extra or variable, ``path`` its value."""

    origin: str
    path: str | None  # None: certifi's bundle (origin "certifi") or no verification (origin "off")


def trust_source(verify: bool | str, environ: Mapping[str, str] = os.environ) -> TrustSource:
    """The CAs to trust for a connection whose extra ``verify`` is ``verify`` (see the module's order)."""
    if verify is False:
        return TrustSource("off", None)
    if isinstance(verify, str):
        return TrustSource("extra 'verify'", verify)
    for name in CA_BUNDLE_VARIABLES:
        if environ.get(name, "").strip():
            return TrustSource(name, environ[name].strip())
    return TrustSource("certifi", None)


def ssl_context(
    conn_id: str,
    source: TrustSource,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """
    A client ``SSLContext`` trusting ``source``, with a client certificate if given.

    :raises TracklyConfigError: a bundle, directory or client certificate that is missing or not PEM.
    """
    if source.origin == "off":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        # Only this source: given a file or directory, the default context loads no other CAs (not
        # the system's, not SSL_CERT_FILE's), so the first source found is the only one trusted.
        path = Path(source.path) if source.path else Path(certifi.where())
        try:
            if path.is_dir():
                context = ssl.create_default_context(capath=str(path))
            else:
                context = ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise TracklyConfigError(
                f"Connection '{conn_id}': the CA bundle from {source.origin} ({path}) cannot be read "
                f"({_reason(exc)}). Point it at a readable PEM file or directory of CA certificates."
            ) from None
        # A bundle may hold the issuing intermediate CA alone, as curl and Python 3.13 accept.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if client_cert:
        try:
            context.load_cert_chain(client_cert, client_key, password=_no_passphrase)
        except (OSError, ssl.SSLError, _PassphraseAsked) as exc:
            raise TracklyConfigError(
                f"Connection '{conn_id}': the client certificate in extra 'client_cert' ({client_cert})"
                + (f" with key 'client_key' ({client_key})" if client_key else "")
                + f" cannot be loaded ({_reason(exc)}). Give PEM files; a key with a passphrase is "
                "not supported (decrypt it: openssl pkey -in key.pem -out plain.pem)."
            ) from None
    return context


class _PassphraseAsked(Exception):
    """The client key is encrypted: OpenSSL would otherwise prompt on the worker's terminal."""


def _no_passphrase() -> str:
    raise _PassphraseAsked("the key is encrypted with a passphrase")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _PassphraseAsked):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error behind ``exc`` (an httpx error), if that is its cause."""
    cause = _cause_of_type(exc, ssl.SSLCertVerificationError)
    return cause if isinstance(cause, ssl.SSLCertVerificationError) else None


def tls_reason(exc: BaseException) -> str | None:
    """OpenSSL's reason for a TLS failure behind ``exc`` (``WRONG_VERSION_NUMBER``...), else None."""
    cause = _cause_of_type(exc, ssl.SSLError)
    return (cause.reason or type(cause).__name__) if isinstance(cause, ssl.SSLError) else None


# OpenSSL reasons no retry can change: the port does not speak TLS, or the server refuses our
# client certificate (or its absence). Each with the fix.
_TLS_SETUP_FIXES = {
    "WRONG_VERSION_NUMBER": "the port does not speak TLS (plain http?); for a local sandbox use http://",
    "UNSUPPORTED_PROTOCOL": "the server and this worker share no TLS version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "the server and this worker share no TLS version",
    "CERTIFICATE_REQUIRED": "the server asks for a client certificate: set the extras 'client_cert' and "
    "'client_key'",
    "BAD_CERTIFICATE": "the server refused the client certificate: check the extras 'client_cert' and "
    "'client_key'",
    "CERTIFICATE_UNKNOWN": "the server refused the client certificate: check the extras 'client_cert' and "
    "'client_key'",
    "UNKNOWN_CA": "the server does not trust the CA of the client certificate in extra 'client_cert'",
}


def tls_setup_fix(reason: str) -> str | None:
    """What fixes a TLS failure with OpenSSL ``reason`` that retrying cannot, else None."""
    for name, fix in _TLS_SETUP_FIXES.items():
        if name in reason:
            return fix
    return None


def _cause_of_type(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def certificate_message(
    conn_id: str, url: str, failure: ssl.SSLCertVerificationError, source: TrustSource
) -> str:
    """Why the server's certificate was refused and what fixes it, for a ``TracklyConfigError``."""
    reason = failure.verify_message or failure.reason or "verification failed"
    trusted = (
        "certifi's bundle of public CAs" if source.path is None else f"{source.path} (from {source.origin})"
    )
    return (
        f"Connection '{conn_id}': the TLS certificate of {url} was refused ({reason}, "
        f"CERTIFICATE_VERIFY_FAILED); this worker trusts {trusted}. If the certificate is signed by a "
        f"private or corporate CA (a TLS-inspecting proxy, for instance), {FIX}. If the host name does "
        "not match, fix the Base URL. Not retried: a certificate does not fix itself."
    )
