"""SendHistoryImportOperator: stream a SQL query's rows into Trackly's send-history import."""

from __future__ import annotations

from trackly_provider.operators.history_import import BaseHistoryImportOperator
from trackly_provider.trackly_api.entities import SENDS


class SendHistoryImportOperator(BaseHistoryImportOperator):
    """
    Import the SMS messages sent, from a SQL query into Trackly (``POST /api/v2/history/sends``).

    Columns: ``id`` (the message id), ``to_number`` (E.164, such as ``+12025550123``) and
    ``timestamp`` are required; ``list_id``, ``list_number``, ``message``, ``send_type``,
    ``delivered`` (true/false) and ``length`` (whole number) are optional. Trackly skips a send it
    already stored (by ``id``), so rerunning is safe. Import sends before their clicks and revenue.
    Arguments and XCom summary: see ``BaseHistoryImportOperator``.
    """

    entity = SENDS
