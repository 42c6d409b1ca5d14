"""Exactly-once appends of streaming micro-batches to a file dataset (HDFS or local).

Spark replays a micro-batch after a crash with the same batch id and the same input,
so a write keyed by the batch id can be made idempotent. For batch N of a dataset D:

1. if `D/_committed/batch-N` exists, batch N is already in D: skip it;
2. delete any `part-bN-*` (in D or its partition folders) left by an attempt that died
   while moving files;
3. write the rows to `D/_staging/batch-N` (overwrite: a dead attempt's leftovers go),
   partitioned by the UTC date of a timestamp column when the writer is given one
   (`D/_staging/batch-N/ingest_date=2026-12-03/part-...`);
4. rename each part file to `D/[ingest_date=<date>/]part-bN-<rest of its name>` (a
   rename is atomic on HDFS);
5. create the marker `D/_committed/batch-N`, then delete the staging folder.

A `kill -9` at any point leaves either no marker (the replay redoes steps 2-5 and the
dataset ends with the batch's rows once) or a marker (the replay skips). Readers
(`spark.read.parquet(D)`) ignore `_staging` and `_committed`: Spark's file listing skips
names that start with `_` or `.`. A reader that lists D while step 4 runs sees part of
a batch, never a row twice.

Markers of old batches are pruned: Spark replays only batches after the last one its
checkpoint's commit log holds, so markers far behind the current batch are never read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

STAGING_DIR = "_staging"
COMMITTED_DIR = "_committed"
# Markers kept behind the current batch; Spark replays at most the last batch or two.
KEEP_MARKERS = 100
_MARKER = re.compile(r"batch-([0-9]+)")
# The partition column of the plain formats' datasets: the UTC date of `ingested_at`
# (the session's time zone is UTC). Hive-style folder names, so Spark and Hive read it.
PARTITION_COLUMN = "ingest_date"


@dataclass(frozen=True)
class BatchWriteResult:
    batch_id: int
    skipped: bool
    files: int
    # The partition folders (`ingest_date=...`) the batch added files to.
    partitions: Tuple[str, ...] = ()


class BatchDatasetWriter:
    """Appends micro-batches to the dataset at `path` in `output_format`, once each."""

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        output_format: str = "parquet",
        options: Optional[Mapping[str, str]] = None,
        partition_date_of: Optional[str] = None,
    ) -> None:
        self._spark = spark
        self.path = path
        self.output_format = output_format
        # The timestamp column whose UTC date partitions the dataset (None: no partitions).
        self.partition_date_of = partition_date_of
        # Options of the file format (e.g. how the JSON writer formats timestamps).
        self.options = dict(options or {})
        jvm: Any = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        hadoop_conf = spark.sparkContext._jsc.hadoopConfiguration()
        self._root = self._Path(path)
        self._fs = self._root.getFileSystem(hadoop_conf)

    def marker_path(self, batch_id: int) -> Any:
        return self._Path(self._root, f"{COMMITTED_DIR}/batch-{batch_id}")

    def staging_path(self, batch_id: int) -> Any:
        return self._Path(self._root, f"{STAGING_DIR}/batch-{batch_id}")

    def is_committed(self, batch_id: int) -> bool:
        return bool(self._fs.exists(self.marker_path(batch_id)))

    def write(self, rows: DataFrame, batch_id: int, has_rows: bool = True) -> BatchWriteResult:
        """Append `rows` as batch `batch_id` unless it is already in; `has_rows=False`
        (the caller counted none) only records the batch, sparing an empty part file."""
        staging = self.staging_path(batch_id)
        if self.is_committed(batch_id):
            # A crash after the marker may have left the staging folder behind.
            self._fs.delete(staging, True)
            return BatchWriteResult(batch_id, skipped=True, files=0)
        self._delete_moved_parts(batch_id)
        moved: List[str] = []
        if has_rows:
            self.stage(rows, batch_id)
            moved = self.move_staged_parts(batch_id)
        self.commit(batch_id)
        partitions = tuple(sorted({folder for folder in moved if folder}))
        return BatchWriteResult(batch_id, skipped=False, files=len(moved), partitions=partitions)

    def stage(self, rows: DataFrame, batch_id: int) -> None:
        """Step 3."""
        partition_by: List[str] = []
        if self.partition_date_of is not None:
            rows = rows.withColumn(PARTITION_COLUMN, F.to_date(F.col(self.partition_date_of)))
            partition_by = [PARTITION_COLUMN]
        (rows.write.mode("overwrite").format(self.output_format).options(**self.options)
         .partitionBy(*partition_by).save(self.staging_path(batch_id).toString()))

    def move_staged_parts(self, batch_id: int, limit: int = -1) -> List[str]:
        """Step 4: the partition folder ("" for D itself) of each file moved; `limit` >= 0
        stops after that many files (tests simulate a crash)."""
        moved: List[str] = []
        for folder, status in self._staged_parts(batch_id):
            if 0 <= limit <= len(moved):
                break
            parent = self._Path(self._root, folder) if folder else self._root
            if folder:
                self._fs.mkdirs(parent)
            name = status.getPath().getName()
            target = self._Path(parent, f"part-b{batch_id}-{name[len('part-'):]}")
            rename(self._fs, status.getPath(), target)
            moved.append(folder)
        return moved

    def _staged_parts(self, batch_id: int) -> List[Tuple[str, Any]]:
        """(partition folder or "", status) of each part file of the staged batch."""
        found: List[Tuple[str, Any]] = []
        for status in list_folder(self._fs, self.staging_path(batch_id)):
            name = status.getPath().getName()
            if status.isDirectory() and f"{PARTITION_COLUMN}=" in name:
                found += [(name, part) for part in part_files(self._fs, status.getPath())]
            elif is_part_file(status):
                found.append(("", status))
        return found

    def commit(self, batch_id: int) -> None:
        """Step 5: the marker makes the batch final; then tidy up."""
        self._fs.create(self.marker_path(batch_id), True).close()
        self._fs.delete(self.staging_path(batch_id), True)
        self._prune_markers(batch_id)

    def _delete_moved_parts(self, batch_id: int) -> None:
        for pattern in (f"part-b{batch_id}-*", f"{PARTITION_COLUMN}=*/part-b{batch_id}-*"):
            for status in self._fs.globStatus(self._Path(self._root, pattern)) or []:
                self._fs.delete(status.getPath(), False)

    def _prune_markers(self, batch_id: int) -> None:
        for status in list_folder(self._fs, self._Path(self._root, COMMITTED_DIR)):
            match = _MARKER.fullmatch(status.getPath().getName())
            if match and int(match.group(1)) < batch_id - KEEP_MARKERS:
                self._fs.delete(status.getPath(), False)



# Hadoop file system helpers, shared with `stream.partition_compaction`.


def list_folder(fs: Any, folder: Any) -> List[Any]:
    """The folder's entries sorted by name; [] when it does not exist."""
    if not fs.exists(folder):
        return []
    return sorted(fs.listStatus(folder), key=lambda status: status.getPath().getName())


def is_part_file(status: Any) -> bool:
    """A data file (not _SUCCESS, nor the local file system's .crc files)."""
    return bool(status.isFile()) and str(status.getPath().getName()).startswith("part-")


def part_files(fs: Any, folder: Any) -> List[Any]:
    return [status for status in list_folder(fs, folder) if is_part_file(status)]


def rename(fs: Any, source: Any, target: Any) -> None:
    """A rename that fails loudly: Hadoop's returns False rather than raising."""
    if not fs.rename(source, target):
        raise OSError(f"could not rename {source.toString()} to {target.toString()}")
