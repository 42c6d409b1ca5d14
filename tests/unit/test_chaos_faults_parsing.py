"""Where the producer is, as the chaos faults read it from its journal (tests/chaos/sandbox_faults.py):
the lines are service.py's, with the level name journalctl -o cat shows before them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests" / "chaos"), str(ROOT / "bench")]

from sandbox_faults import FaultFailed, object_being_read  # noqa: E402

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
