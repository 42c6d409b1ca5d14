"""verify/written.py's count per object and version on a real (local) Spark: the rows of an
overwritten key's earlier versions are counted apart from those of its current version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Tuple

from customer_pipeline.contract.rules import record_id
from customer_pipeline.verify.written import dataset_counts, read_versions

OLD, NEW = "s3://customers/incoming/k.csv", "s3://customers/incoming/other.csv"
# A key with non-ASCII characters, a space, a quote and a backslash: the id's JSON text must be
# the producer's, byte for byte.
ODD = 's3://customers/incoming/ünïcode "q" \\ key.csv'


def write(spark: Any, path: Path, rows: List[Tuple[str, str, int]]) -> str:
    frame = spark.createDataFrame(
        [(uri, row, record_id(uri, etag, row)) for uri, etag, row in rows],
        "source_uri string, source_row int, record_id string")
    frame.write.parquet(str(path))
    return str(path)


def test_rows_of_earlier_versions_are_counted_apart(spark: Any, tmp_path: Path) -> None:
    rows = ([(OLD, '"v1"', row) for row in range(1, 41)]          # the first version, 40 rows
            + [(OLD, '"v2"', row) for row in range(1, 11)]        # the current one, 10 rows
            + [(OLD, '"v2"', 3)]                                  # one of them twice
            + [(NEW, "n1", row) for row in range(1, 6)]
            + [(ODD, '"o1"', row) for row in (1, 2)]
            + [("s3://customers/unknown.csv", "u", 1)])
    path = write(spark, tmp_path / "usa", rows)
    versions = {OLD: '"v2"', NEW: '"n1"', ODD: "o1"}
    assert dataset_counts(spark, path, "parquet", versions) == {
        OLD: {"rows": 11, "duplicates": 1, "earlier_rows": 40, "earlier_duplicates": 0},
        NEW: {"rows": 5, "duplicates": 0, "earlier_rows": 0, "earlier_duplicates": 0},
        ODD: {"rows": 2, "duplicates": 0, "earlier_rows": 0, "earlier_duplicates": 0},
        # An object the producer does not know: all current (reconcile names it unexpected).
        "s3://customers/unknown.csv": {"rows": 1, "duplicates": 0, "earlier_rows": 0, "earlier_duplicates": 0},
    }
    # Without the versions (an older verify.yml), every row counts as current.
    assert dataset_counts(spark, path, "parquet")[OLD] == {
        "rows": 51, "duplicates": 1, "earlier_rows": 0, "earlier_duplicates": 0}


def test_the_versions_come_from_verify_sources_expected_output(tmp_path: Path) -> None:
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({"objects": [
        {"uri": OLD, "etag": '"v2"', "state": "done"}, {"uri": NEW, "etag": "", "state": "reading"}]}))
    assert read_versions(str(expected)) == {OLD: '"v2"'}
    assert read_versions(None) == {}
