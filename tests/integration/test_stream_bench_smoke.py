"""The benches that need the deployed pipeline run small, so that they cannot rot (make bench runs them in full).

bench/stream_job.py and bench/end_to_end.py on 10,000 rows (they run the deployed unit's own
spark-submit line; test_deploy.py's second run goes through bench/deploy_time.py); so they live apart from
test_bench_smoke.py and run after test_deploy.py (file order). Figures are not asserted:
only that each bench read every row (it stops otherwise), that its table has its ratio, and
that the services it stopped for its runs are active again.
"""

from __future__ import annotations

import re
import sys

import pytest

from conftest import ROOT, bench_table, node_stdout, run

pytestmark = pytest.mark.sandbox


def test_the_stream_job_bench_runs_on_10000_rows():
    before = node_stdout("systemctl is-active customer-producer customer-stream || true").split()
    result = run([sys.executable, str(ROOT / "bench" / "stream_job.py"), "--rows", "10000"], timeout=900)
    rows = {cells[0]: cells[1:] for cells in bench_table(result.stdout)}
    ceiling = next(cells for name, cells in rows.items() if name.startswith("plain batch job"))
    job = next(cells for name, cells in rows.items() if name.startswith("the streaming job"))
    assert ceiling[2] == "1.00" and float(job[2]) > 0, result.stdout
    assert re.search(r"fixed cost of a micro-batch .*\| [\d.]+ \|", result.stdout), result.stdout
    # Every step of the job's batches is accounted for.
    assert {"count", "usa", "alerts", "topics"} <= set(rows), result.stdout
    assert node_stdout("systemctl is-active customer-producer customer-stream || true").split() == before


def test_the_end_to_end_bench_runs_on_10000_rows():
    result = run([sys.executable, str(ROOT / "bench" / "end_to_end.py"), "--rows", "10000"], timeout=900)
    rows = bench_table(result.stdout)[1:]
    assert len(rows) == 1 and rows[0][0] == "10000", result.stdout
    seconds, p50, p95 = (float(rows[0][index].rstrip(" s")) for index in (1, 6, 7))
    # Every row was found in a micro-batch that ended after it was read, and none after the last.
    assert 0 < p50 <= p95 <= seconds, result.stdout
    assert rows[0][9] == "1.00", result.stdout

