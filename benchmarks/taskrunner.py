"""
One import through Airflow's own task path: ``airflow dags test`` of a one-task DAG, in a fresh process.

Prints JSON: wall time and the peak resident memory of the ``airflow`` process (and any child it
starts), measured from outside with ``getrusage(RUSAGE_CHILDREN)``, so it covers everything the task
runner adds around ``execute()`` (logging, XCom, supervision) that ``benchmarks.approach`` skips.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.approach import query

DAG_ID = "trackly_bench_taskrunner"
# The operator's closing line: "Imported 1,000,000 rows of clicks in 12.3 s (...): 1,000,000 imported, ..."
IMPORTED_LINE = re.compile(r"Imported [\d,]+ rows? of \w+ in .*?: ([\d,]+) imported")
DAG = """
from airflow.sdk import DAG

from trackly_provider.operators.click_history import ClickHistoryImportOperator

with DAG({dag_id!r}, schedule=None):
    ClickHistoryImportOperator(
        task_id="import_clicks",
        sql={sql!r},
        sql_conn_id="bench_source",
        trackly_conn_id="bench_trackly",
        max_in_flight={in_flight},
    )
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--max-in-flight", type=int, required=True)
    parser.add_argument("--dags-folder", type=Path, required=True)
    args = parser.parse_args()
    args.dags_folder.mkdir(parents=True, exist_ok=True)
    (args.dags_folder / f"{DAG_ID}.py").write_text(
        DAG.format(dag_id=DAG_ID, sql=query(args.table, args.rows), in_flight=args.max_in_flight)
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    started = time.perf_counter()
    done = subprocess.run(
        [airflow, "dags", "test", DAG_ID, "--dagfile-path", str(args.dags_folder / f"{DAG_ID}.py")],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    output = done.stdout + done.stderr
    closing_lines = IMPORTED_LINE.findall(output)
    if done.returncode != 0 or not closing_lines:
        raise SystemExit(f"airflow dags test failed ({done.returncode}):\n{output[-3000:]}")
    imported = int(closing_lines[-1].replace(",", ""))
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"imported": imported, "wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
