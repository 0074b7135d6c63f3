"""
Stand-ins for personal record keys (a contact's phone number) in errors, rejects and the ledger.

A reference is ``c_`` and 16 hexadecimal digits: the first 64 bits of HMAC-SHA256 (RFC 2104)
keyed with the connection's API key, of the contact's phone number as sent (E.164). A plain hash
would not do: there are few enough phone numbers to hash them all, so anyone could reverse it.
Keyed with a secret only the account's owners hold, the reference cannot be reversed by the
readers of a log, an XCom or a rejects table; someone with the key finds a number's reference
with ``TracklyHook.contact_reference``. The same number gives the same reference in every run
while the key stays the same; a new key gives new references.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from trackly_provider.trackly_api.entities import Entity

REFERENCE_PREFIX = "c_"
REFERENCE_HEX_DIGITS = 16


def personal_reference(value: str, secret: str) -> str:
    """``c_`` and 16 hex digits: the keyed hash of ``value`` (a phone number) with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), value.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return REFERENCE_PREFIX + digest.hexdigest()[:REFERENCE_HEX_DIGITS]


def record_key(entity: Entity, secret: str | None) -> Callable[[Mapping[str, Any]], str | None]:
    """
    What names a record in errors, rejects and the ledger: its ``key_field`` text, or for an entity
    whose key is personal (``key_is_personal``) that text's ``personal_reference`` (None without a
    ``secret``); None when the record has no key (yet).
    """
    name = entity.key_field
    if not entity.key_is_personal:

        def key(record: Mapping[str, Any]) -> str | None:
            value = record.get(name)
            return value if isinstance(value, str) else None

        return key

    def reference(record: Mapping[str, Any]) -> str | None:
        value = record.get(name)
        return personal_reference(value, secret) if isinstance(value, str) and secret else None

    return reference
