"""The job's committed offsets as verify.yml's lag and make soak read them from a checkpoint's
offsets/<batch> file (customer_pipeline.verify.source.committed_offsets)."""

from __future__ import annotations

import json

from customer_pipeline.verify.source import committed_offsets

# Spark 3.5's layout: the version, the batch's metadata, then one line per source.
OFFSETS_FILE = "\n".join([
    "v1",
    json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": 1765000000000,
                "conf": {"spark.sql.shuffle.partitions": "4"}}),
    json.dumps({"customers-raw": {"2": 1200, "0": 1000, "1": 1100}}),
])


def test_the_sources_line_gives_each_partitions_next_offset() -> None:
    assert committed_offsets(OFFSETS_FILE, "customers-raw") == {0: 1000, 1: 1100, 2: 1200}


def test_a_trailing_blank_line_and_another_topic_read_as_expected() -> None:
    assert committed_offsets(OFFSETS_FILE + "\n\n", "customers-raw") == {0: 1000, 1: 1100, 2: 1200}
    assert committed_offsets(OFFSETS_FILE, "customers-other") == {}


def test_no_checkpoint_yet_is_no_offsets() -> None:
    assert committed_offsets(None, "customers-raw") == {}
    assert committed_offsets("", "customers-raw") == {}
