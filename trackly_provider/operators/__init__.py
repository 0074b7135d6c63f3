"""The import operators, one per Trackly import endpoint, on one base class (``BaseHistoryImportOperator``).

``HistoryImportOperator`` is the base class's earlier name, kept for DAGs that import or subclass it.
"""

from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.operators.contact_import import ContactImportOperator
from trackly_provider.operators.history_import import BaseHistoryImportOperator, HistoryImportOperator
from trackly_provider.operators.revenue_history import RevenueHistoryImportOperator
from trackly_provider.operators.send_history import SendHistoryImportOperator

__all__ = [
    "BaseHistoryImportOperator",
    "ClickHistoryImportOperator",
    "ContactImportOperator",
    "HistoryImportOperator",
    "RevenueHistoryImportOperator",
    "SendHistoryImportOperator",
]
