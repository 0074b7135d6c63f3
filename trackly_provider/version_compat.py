"""
Names that moved between Airflow 3 releases, imported from one place.

Airflow 3.0 and 3.1 keep the task exceptions in ``airflow.exceptions`` (later releases in
``airflow.sdk.exceptions``); 3.0 has no ``airflow.sdk.BaseHook``; ``CronDataIntervalTimetable``
joined ``airflow.sdk`` after 3.1. The three exceptions always come from one module, the one the
task runner of the installed release catches, so ``AirflowFailException`` still skips retries.
``AIRFLOW_V_3_1_PLUS``: the installed Airflow is 3.1 or later (as Airflow's own providers name it).
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
    )
except ImportError:  # Airflow 3.0, 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined,assignment,unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
    )

try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined,assignment,unused-ignore]

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0, 3.1
    from airflow.timetables.interval import (  # type: ignore[no-redef,attr-defined,assignment,unused-ignore]
        CronDataIntervalTimetable,
    )

from airflow import __version__ as _AIRFLOW_VERSION
from packaging.version import Version

# Airflow 3.0 cannot render a mapped task group's argument in a map_index_template: the try fails.
AIRFLOW_V_3_1_PLUS = Version(Version(_AIRFLOW_VERSION).base_version) >= Version("3.1.0")

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "BaseHook",
    "CronDataIntervalTimetable",
]
