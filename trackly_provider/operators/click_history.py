"""ClickHistoryImportOperator: stream a SQL query's rows into Trackly's click-history import."""

from __future__ import annotations

from trackly_provider.operators.history_import import BaseHistoryImportOperator
from trackly_provider.trackly_api.entities import CLICKS


class ClickHistoryImportOperator(BaseHistoryImportOperator):
    """
    Import historical SMS clicks from a SQL query into Trackly (``POST /api/v2/history/clicks``).

    Columns: ``message_id``, ``offer_id``, ``phone_number`` and ``timestamp`` are required,
    ``send_timestamp`` is optional. Trackly skips a click it already stored (by ``message_id``), so
    rerunning an import is safe; a ``ledger_table`` lets a rerun skip what was confirmed without
    sending it. Each click's message must exist in Trackly: import sends first
    (``SendHistoryImportOperator``). Arguments and XCom summary: see ``BaseHistoryImportOperator``.
    """

    entity = CLICKS
