"""
How the import's PostgreSQL cursors load column types that Python values serve badly (psycopg 3 and 2).

- ``timestamptz``, ``timestamp``, ``date``: as their ISO text (the session is UTC with ``DateStyle``
  ISO: ``source_sessions``). Records need that text anyway, building a zone-aware datetime per value
  then formatting it back costs more than the whole fetch, and ``infinity``, ``-infinity`` and years
  past 9999, which no Python date holds, reach the row builder (which rejects them, row by row)
  instead of failing the whole fetch.
- ``time``, ``timetz``, ``interval``, ``money``: as ``values.OpaqueValue``, which no field accepts.
  psycopg fails the whole fetch on ``time '24:00:00'`` and on intervals past ``timedelta``'s range,
  and reads ``money`` as text (``$12.34``) that an id would take as it is. The value itself is not
  kept: the rejection names the type and the cast to use.
"""

from __future__ import annotations

from typing import Any

from trackly_provider.trackly_api.values import OpaqueValue

TEXT_TYPES = {"timestamptz": 1184, "timestamp": 1114, "date": 1082}
OPAQUE_TYPES = {"time": 1083, "timetz": 1266, "interval": 1186, "money": 790}


def load_types_of_psycopg(cursor: Any) -> Any:
    """``cursor`` (psycopg 3) with the loaders above registered on it alone."""
    from psycopg.adapt import Loader
    from psycopg.types.string import TextLoader

    for type_name in TEXT_TYPES:
        cursor.adapters.register_loader(type_name, TextLoader)
    for type_name in OPAQUE_TYPES:
        opaque = OpaqueValue(f"PostgreSQL {type_name}")

        class OpaqueLoader(Loader):
            def load(self, data: Any, opaque: OpaqueValue = opaque) -> OpaqueValue:
                return opaque

        cursor.adapters.register_loader(type_name, OpaqueLoader)
    return cursor


def load_types_of_psycopg2(cursor: Any) -> Any:
    """As ``load_types_of_psycopg``, for psycopg2 (which reads ``infinity`` as year 9999 or year 1)."""
    import psycopg2.extensions

    as_text = psycopg2.extensions.new_type(tuple(TEXT_TYPES.values()), "TRACKLY_TEXT", lambda value, _: value)
    psycopg2.extensions.register_type(as_text, cursor)
    for type_name, oid in OPAQUE_TYPES.items():
        opaque = OpaqueValue(f"PostgreSQL {type_name}")
        caster = psycopg2.extensions.new_type(
            (oid,),
            f"TRACKLY_{type_name.upper()}",
            lambda value, _, opaque=opaque: None if value is None else opaque,
        )
        psycopg2.extensions.register_type(caster, cursor)
    return cursor
