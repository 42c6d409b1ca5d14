"""What the chaos faults and make soak read from the node (tests/chaos/sandbox_faults.py): where the
producer is, from its journal (service.py's lines, with the level name journalctl -o cat shows
before them), and each unit's main process and restart count."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "bench")]

from sandbox_faults import FaultFailed, UnitSample, object_being_read, parse_unit_samples  # noqa: E402

URI = "s3://customers/incoming/a key with spaces ü.csv"


@pytest.mark.parametrize("line, expected", [
    ("INFO published 40000 records in all, 1980 records/s; now at row 20001 of %s" % URI, (URI, "row 20001")),
    ("INFO ingesting %s (3565138 bytes)" % URI, (URI, "its start")),
    ("INFO resuming %s after row 120 (120 records already published)" % URI, (URI, "row 120")),
    ("ingesting %s (12 bytes)" % URI, (URI, "its start")),
    ("INFO finished %s: 30000 records published, last row 30000" % URI, None),
])
def test_the_object_being_read_or_none_between_objects(line, expected):
    assert object_being_read(line) == expected


def test_no_progress_line_is_a_failed_fault_not_a_guess():
    with pytest.raises(FaultFailed, match="no object being read"):
        object_being_read("")


def test_unit_samples_read_running_and_restarting_units_and_ignore_noise():
    output = ("customer-producer 4211 python3 77824 0\n"
              "customer-stream 0 - - 3\n"  # between two restarts: no main process
              "Warning: some unrelated line\n")
    samples = parse_unit_samples(output, ["customer-producer", "customer-stream", "kafka"])
    assert samples == {
        "customer-producer": UnitSample(4211, "python3", 77824, 0),
        "customer-stream": UnitSample(None, "", None, 3),
        "kafka": UnitSample(None, "", None, None),  # no line at all: unknown, not zero
    }


def test_three_node_faults_take_the_workers_in_turn_and_spare_the_only_controller():
    from cluster3_faults import FAULTS, WORKERS, in_turn

    hit = []
    fault = in_turn(WORKERS, lambda node: hit.append(node) or "")
    notes = [fault() for _ in range(3)]
    assert hit == ["csp-node2", "csp-node3", "csp-node2"]
    assert notes == ["csp-node2", "csp-node3", "csp-node2"]
    # csp-node1 holds the sandbox's only KRaft controller, NameNode and ResourceManager.
    assert "csp-node1" not in WORKERS
    assert set(FAULTS) == {"kill -9 yarn application master", "one kafka broker of three down",
                           "kill -9 producer", "hdfs datanode restart"}
