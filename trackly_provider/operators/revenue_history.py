"""RevenueHistoryImportOperator: stream a SQL query's rows into Trackly's revenue-history import."""

from __future__ import annotations

from trackly_provider.operators.history_import import BaseHistoryImportOperator
from trackly_provider.trackly_api.entities import REVENUE


class RevenueHistoryImportOperator(BaseHistoryImportOperator):
    """
    Import revenue records from a SQL query into Trackly (``POST /api/v2/history/revenue``), once.

    Columns: ``message_id``, ``offer_id`` and ``revenue`` (a number >= 0) are required; ``payout``
    (>= 0), ``attribution_type`` and ``timestamp`` are optional. Trackly stores revenue every time
    it receives it, so this operator always keeps a ledger (``ledger_table``, by default
    ``trackly_import_ledger`` on the source's connection; ``ledger_conn_id`` for another): a rerun
    leaves out what Trackly confirmed, a request without an answer is never sent again, and its
    records fail the task until you say what Trackly did with them (``on_unknown_outcome``).
    Import sends first: revenue for an unknown message is rejected. Arguments and XCom summary:
    see ``BaseHistoryImportOperator``.
    """

    entity = REVENUE
