"""The import operators, one per Trackly history endpoint, on one engine (``HistoryImportOperator``)."""

from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.operators.history_import import HistoryImportOperator
from trackly_provider.operators.revenue_history import RevenueHistoryImportOperator
from trackly_provider.operators.send_history import SendHistoryImportOperator

__all__ = [
    "ClickHistoryImportOperator",
    "HistoryImportOperator",
    "RevenueHistoryImportOperator",
    "SendHistoryImportOperator",
]
