"""The benchmarks run, on 10,000 rows, so that they cannot rot (make bench runs them at full size).

Figures are not asserted (they depend on the machine): only that each bench completes,
that every producer published the whole object and that the table has its ratios.
"""

from __future__ import annotations

import re
import sys

import pytest

from conftest import ROOT, run

pytestmark = pytest.mark.sandbox


def test_the_producer_throughput_bench_runs_on_10000_rows():
    result = run([sys.executable, str(ROOT / "bench" / "producer_throughput.py"), "--rows", "10000"], timeout=600)
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [re.sub(r" \(.*", "", line.split("|")[1].strip()) for line in table] == [
        "Kafka's ProducerPerformance", "the producer, kafka-python", "the producer, confluent-kafka"], result.stdout
    ratios = [float(line.split("|")[5]) for line in table]
    assert ratios[0] == 1.0 and all(ratio > 0 for ratio in ratios), result.stdout


def test_the_producer_encode_bench_runs_on_10000_rows():
    result = run([sys.executable, str(ROOT / "bench" / "producer_encode.py"), "--rows", "10000"], timeout=300)
    table = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    shares = [float(line.split("|")[3]) for line in table]
    assert len(shares) == 3 and shares[0] == 1.0 and all(share > 0 for share in shares), result.stdout
