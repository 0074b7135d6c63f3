"""Run one import in a fresh process and print its XCom and peak RSS (used by the memory test)."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from tests.helpers import AirflowRunner

RESULT_PREFIX = "memory-probe-result: "  # Airflow's log lines (OpenLineage's too) share stdout

if __name__ == "__main__":
    dags_dir, sql = Path(sys.argv[1]), sys.argv[2]
    result = AirflowRunner(dags_dir).run_operator(sql=sql)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_PREFIX + json.dumps({"state": result.state, "xcom": result.xcom, "peak_mib": peak_mib}))
