"""Plain datasets: date partitions and the compaction of closed days, on a local Spark.

The writer puts each batch's rows in the partition of their ingestion date (UTC); the
compactor merges a closed day's files by a directory swap. These tests check the row
sets exactly (every row once) and count the files, through every crash point of the swap.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Callable, List

import pytest

pytest.importorskip("pyspark")

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from customer_pipeline.stream.batch_commit import BatchDatasetWriter  # noqa: E402
from customer_pipeline.stream.partition_compaction import PartitionCompactor  # noqa: E402
from customer_pipeline.verify.written import dataset_counts  # noqa: E402

pytestmark = pytest.mark.spark
UTC = dt.timezone.utc
DAY = dt.date(2026, 11, 20)
TARGET = 128 << 20


def noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), UTC)


def rows_on(spark: SparkSession, first: int, count: int, day: dt.date, at: dt.time = dt.time(9)) -> DataFrame:
    """`count` rows read at `at` on `day`, in two Spark partitions (two files a batch), from
    the object `s3://customers/<day>.csv` (what verify.yml counts by)."""
    ingested = dt.datetime.combine(day, at, UTC)
    return spark.range(first, first + count, numPartitions=2).select(
        F.col("id").cast("int").alias("id"), F.concat(F.lit("row-"), F.col("id")).alias("name"),
        F.lit(f"s3://customers/{day}.csv").alias("source_uri"), F.concat(F.lit("r"), F.col("id")).alias("record_id"),
        F.lit(ingested).alias("ingested_at"))


def ids(spark: SparkSession, path: str, output_format: str = "parquet") -> List[int]:
    return sorted(row.id for row in spark.read.format(output_format).load(path).collect())


def part_files(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("part-"))


def fixed(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


def writer_for(spark: SparkSession, path: Path, output_format: str = "parquet") -> BatchDatasetWriter:
    return BatchDatasetWriter(spark, str(path), output_format, partition_date_of="ingested_at")


def test_each_row_lands_in_the_partition_of_its_utc_ingestion_date(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "usa"
    writer = writer_for(spark, path)
    batch = rows_on(spark, 0, 3, DAY, dt.time(23, 59, 59, 999999)).unionByName(rows_on(spark, 3, 2, DAY + dt.timedelta(1)))
    result = writer.write(batch, 0)
    assert result.partitions == ("ingest_date=2026-11-20", "ingest_date=2026-11-21")
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith((".", "_"))) == list(result.partitions)
    assert all(name.startswith("part-b0-") for name in part_files(path / "ingest_date=2026-11-20"))
    read = spark.read.parquet(str(path))
    assert {(row.id, str(row.ingest_date)) for row in read.collect()} == {
        (0, "2026-11-20"), (1, "2026-11-20"), (2, "2026-11-20"), (3, "2026-11-21"), (4, "2026-11-21")}
    # The files hold the rows' own columns; the date is the folder's.
    file = next((path / "ingest_date=2026-11-21").glob("part-*.parquet"))
    assert spark.read.parquet(str(file)).columns == ["id", "name", "source_uri", "record_id", "ingested_at"]
    assert writer.write(batch, 0).skipped is True
    assert ids(spark, str(path)) == [0, 1, 2, 3, 4]


def test_a_crash_while_moving_into_partitions_then_a_replay_lands_once(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "alerts"
    writer = writer_for(spark, path, "json")
    writer.write(rows_on(spark, 0, 2, DAY), 0)
    batch = rows_on(spark, 10, 4, DAY).unionByName(rows_on(spark, 20, 4, DAY + dt.timedelta(1)))
    writer.stage(batch, 1)
    assert len(writer.move_staged_parts(1, limit=1)) == 1  # killed after one file
    assert 2 < len(ids(spark, str(path), "json")) < 10
    assert writer_for(spark, path, "json").write(batch, 1).skipped is False
    assert ids(spark, str(path), "json") == [0, 1, 10, 11, 12, 13, 20, 21, 22, 23]


def test_two_hundred_batches_keep_the_file_count_bounded_and_every_row_once(spark: SparkSession, tmp_path: Path) -> None:
    """200 batches over five days, time passing as they go: each day is compacted to one
    file once closed, the open day holds only its own batches' files."""
    path = tmp_path / "usa"
    writer = writer_for(spark, path)
    now = [noon(DAY)]
    compactor = PartitionCompactor(spark, str(path), "parquet", min_files=20, target_bytes=TARGET,
                                   clock=lambda: now[0])
    compactions = []
    for batch_id in range(200):
        day = DAY + dt.timedelta(days=batch_id // 40)
        now[0] = noon(day)
        result = writer.write(rows_on(spark, batch_id * 5, 5, day), batch_id)
        compactions += compactor.run(result.partitions)
    closed = [f"ingest_date={DAY + dt.timedelta(days=n)}" for n in range(4)]
    assert [done.partition for done in compactions] == closed
    assert all(done.files_before == 80 and done.files_after == 1 and done.rows == 200 for done in compactions)
    assert [len(part_files(path / name)) for name in closed] == [1, 1, 1, 1]
    assert len(part_files(path / "ingest_date=2026-11-24")) == 80  # today: open, 40 batches x 2 files
    assert ids(spark, str(path)) == list(range(1000))
    assert not (path / "_compact").exists() and not (path / "_replaced").exists()
    # verify.yml's own count of the dataset (verify/written.py): every object exact, no duplicate.
    assert dataset_counts(spark, str(path), "parquet") == {
        f"s3://customers/{DAY + dt.timedelta(days=n)}.csv": {"rows": 200, "duplicates": 0, "earlier_rows": 0,
                                                           "earlier_duplicates": 0} for n in range(5)}


def test_only_closed_days_with_enough_files_are_compacted(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "usa"
    writer = writer_for(spark, path)
    for batch_id, day in enumerate([DAY] * 3 + [DAY + dt.timedelta(1)] * 3):
        writer.write(rows_on(spark, batch_id * 10, 10, day), batch_id)
    # 00:59 on the next day: the day before is not closed yet (late rows may still come).
    early = PartitionCompactor(spark, str(path), "parquet", 6, TARGET,
                               clock=fixed(dt.datetime.combine(DAY + dt.timedelta(1), dt.time(0, 59), UTC)))
    assert early.run() == []
    # Later: the first day is closed and compacted, the second (today) is not.
    compactor = PartitionCompactor(spark, str(path), "parquet", 6, TARGET, clock=fixed(noon(DAY + dt.timedelta(1))))
    assert [(done.partition, done.files_before, done.files_after) for done in compactor.run()] == [
        ("ingest_date=2026-11-20", 6, 1)]
    # Late rows for the closed day: a few files wait for the next compaction (min 6).
    result = writer.write(rows_on(spark, 500, 4, DAY), 10)
    assert compactor.run(result.partitions) == []
    assert len(part_files(path / "ingest_date=2026-11-20")) == 3
    assert ids(spark, str(path)) == sorted([*range(60), 500, 501, 502, 503])
    # Rows without an ingestion time are in Hive's default partition, never compacted.
    assert not compactor.is_closed("ingest_date=__HIVE_DEFAULT_PARTITION__")


def test_json_days_are_merged_line_by_line(spark: SparkSession, tmp_path: Path) -> None:
    path = tmp_path / "alerts"
    writer = writer_for(spark, path, "json")
    for batch_id in range(4):
        writer.write(rows_on(spark, batch_id * 3, 3, DAY), batch_id)
    folder = path / "ingest_date=2026-11-20"
    before = sorted(line for name in part_files(folder) for line in (folder / name).read_text().splitlines())
    done = PartitionCompactor(spark, str(path), "json", 4, TARGET, clock=fixed(noon(DAY + dt.timedelta(2)))).run()
    assert [(d.files_before, d.files_after, d.rows) for d in done] == [(8, 1, 12)]
    after = sorted(line for name in part_files(folder) for line in (folder / name).read_text().splitlines())
    assert after == before  # every line as the job wrote it
    assert ids(spark, str(path), "json") == list(range(12))


@pytest.mark.parametrize("crash", ["during the copy", "between the renames", "before deleting the old folder"])
def test_a_crash_at_any_step_of_the_swap_loses_and_doubles_nothing(spark: SparkSession, tmp_path: Path,
                                                                   crash: str) -> None:
    path = tmp_path / "usa"
    writer = writer_for(spark, path)
    for batch_id in range(3):
        writer.write(rows_on(spark, batch_id * 10, 10, DAY), batch_id)
    writer.write(rows_on(spark, 100, 2, DAY + dt.timedelta(1)), 3)  # today's
    everything = [*range(30), 100, 101]
    compactor = PartitionCompactor(spark, str(path), "parquet", 2, TARGET, clock=fixed(noon(DAY + dt.timedelta(1))))
    name = "ingest_date=2026-11-20"
    live, copy, replaced = path / name, path / "_compact" / name, path / "_replaced" / name
    parts: Any = compactor._parts(compactor._Path(str(live)))
    if crash == "during the copy":
        compactor.copy(parts, compactor._Path(str(copy)))
        (copy / "_SUCCESS").unlink()  # the copy's job never finished
    else:
        compactor.copy(parts, compactor._Path(str(copy)))
        replaced.parent.mkdir()
        live.rename(replaced)
        if crash == "before deleting the old folder":
            copy.rename(live)
    # Until the job starts again a reader may miss the day, never sees a row twice.
    assert ids(spark, str(path)) == ([100, 101] if crash == "between the renames" else everything)
    lines = PartitionCompactor(spark, str(path), "parquet", 2, TARGET, clock=compactor._clock).recover()
    assert lines == ([f"{path}/{name}: finished a compaction a stop interrupted"] if crash == "between the renames" else [])
    assert ids(spark, str(path)) == everything
    assert not copy.exists() and not replaced.exists()
    # After a copy that never finished, the day is still the batches' files: compacted next.
    assert len(part_files(live)) == (6 if crash == "during the copy" else 1)


def test_an_incomplete_copy_is_never_swapped_in(spark: SparkSession, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "usa"
    writer = writer_for(spark, path)
    for batch_id in range(3):
        writer.write(rows_on(spark, batch_id * 10, 10, DAY), batch_id)
    compactor = PartitionCompactor(spark, str(path), "parquet", 2, TARGET, clock=fixed(noon(DAY + dt.timedelta(1))))
    real_read = compactor._read
    calls = []

    def short_copy(paths: List[str]) -> Any:
        calls.append(paths)
        frame = real_read(paths)
        return frame.limit(29) if len(calls) == 3 else frame  # the copy read back misses a row

    monkeypatch.setattr(compactor, "_read", short_copy)
    assert compactor.run() == []
    assert len(part_files(path / "ingest_date=2026-11-20")) == 6
    assert ids(spark, str(path)) == list(range(30))
    assert not (path / "_compact").exists()
