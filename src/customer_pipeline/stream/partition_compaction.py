"""Compaction of a plain dataset's closed date partitions, by a directory swap.

Every micro-batch adds a file or two per dataset to the partition of its rows' ingestion
date (`stream.batch_commit`): at a 10 s trigger a day's partition ends with thousands of
small files. Once the day is over (`CLOSED_AFTER` past its end, UTC) nothing but late
rows is written to it, and its files are merged into files of about `target_bytes`:

1. list the partition's part files (nothing else writes to it meanwhile: compaction runs
   in the job's batch thread, between two batches' writes);
2. write their rows to `D/_compact/ingest_date=X` and check its row count;
3. rename `D/ingest_date=X` to `D/_replaced/ingest_date=X`;
4. rename `D/_compact/ingest_date=X` to `D/ingest_date=X`;
5. delete `D/_replaced/ingest_date=X` (and the two working folders).

Readers skip `_`-prefixed folders, so a reader never sees a row twice. The window that
plain folders cannot close: a reader that lists D between steps 3 and 4 (two NameNode
renames, milliseconds apart) misses that day's rows, and a query that listed the old
files before step 3 and opens them after it fails (file not found) and must be rerun.

A crash between steps 3 and 4 leaves the day in `_replaced` and its compacted copy in
`_compact`: `recover()`, run before the job writes anything, finishes the swap (or puts
the old folder back if the copy is incomplete). A crash before step 3 leaves only a
partial `_compact` copy, which `recover()` deletes.
"""

from __future__ import annotations

import datetime
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional

from pyspark.sql import SparkSession

from customer_pipeline.stream.batch_commit import PARTITION_COLUMN, list_folder, part_files, rename

LOG = logging.getLogger("customer_pipeline.stream.partition_compaction")
COMPACT_DIR = "_compact"
REPLACED_DIR = "_replaced"
# How long after its day's end (UTC) a partition counts as closed: rows of a day reach
# the job seconds after midnight at the latest while it keeps up.
CLOSED_AFTER = datetime.timedelta(hours=1)
_PREFIX = f"{PARTITION_COLUMN}="


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass(frozen=True)
class Compaction:
    partition: str
    files_before: int
    files_after: int
    rows: int


class PartitionCompactor:
    """Compacts the closed date partitions of the plain dataset at `path`."""

    def __init__(
        self,
        spark: SparkSession,
        path: str,
        output_format: str,
        min_files: int,
        target_bytes: int,
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._spark = spark
        self.path = path
        self.output_format = output_format
        self.min_files = min_files
        self.target_bytes = target_bytes
        self._clock = clock
        jvm: Any = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._root = self._Path(path)
        self._fs = self._root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        # The last day every closed partition was looked at (None: not since the start).
        self._scanned_day: Optional[datetime.date] = None

    def recover(self) -> List[str]:
        """Finish or undo the swaps a crash interrupted; what was done, one line each."""
        done: List[str] = []
        for replaced in list_folder(self._fs, self._Path(self._root, REPLACED_DIR)):
            name = replaced.getPath().getName()
            live, copy = self._Path(self._root, name), self._Path(self._root, f"{COMPACT_DIR}/{name}")
            if self._fs.exists(live):  # step 4 happened: only step 5 is left
                self._fs.delete(replaced.getPath(), True)
            elif self._fs.exists(self._Path(copy, "_SUCCESS")):
                rename(self._fs, copy, live)
                self._fs.delete(replaced.getPath(), True)
                done.append(f"{self.path}/{name}: finished a compaction a stop interrupted")
            else:  # cannot happen by the steps' order; never leave the day out
                rename(self._fs, replaced.getPath(), live)
                done.append(f"{self.path}/{name}: put back after an incomplete compaction")
        # Copies whose swap never started (a crash during step 2).
        self._fs.delete(self._Path(self._root, COMPACT_DIR), True)
        return done

    def run(self, written: Iterable[str] = ()) -> List[Compaction]:
        """Compact what is due: every closed partition on the first call and when the day
        changes; otherwise only closed partitions this batch wrote late rows to."""
        today = self._clock().date()
        if self._scanned_day != today:
            candidates = [status.getPath().getName() for status in list_folder(self._fs, self._root)
                          if status.isDirectory() and status.getPath().getName().startswith(_PREFIX)]
            self._scanned_day = today
        else:
            candidates = list(written)
        return [done for name in sorted(set(candidates)) if self.is_closed(name)
                for done in [self.compact_if_due(name)] if done is not None]

    def is_closed(self, name: str) -> bool:
        try:
            day = datetime.date.fromisoformat(name[len(_PREFIX):])
        except ValueError:
            return False  # Hive's __HIVE_DEFAULT_PARTITION__ (rows without a time): left alone
        day_end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(),
                                            datetime.timezone.utc)
        return self._clock() >= day_end + CLOSED_AFTER

    def compact_if_due(self, name: str) -> Optional[Compaction]:
        partition = self._Path(self._root, name)
        parts = self._parts(partition)
        if len(parts) < self.min_files:
            return None
        copy = self._Path(self._root, f"{COMPACT_DIR}/{name}")
        try:
            rows = self.copy(parts, copy)
            if self._names(self._parts(partition)) != self._names(parts):
                raise RuntimeError("the partition changed while it was copied")
        except Exception as error:  # noqa: BLE001 - nothing is swapped yet: the day stays as it was
            self._fs.delete(copy.getParent(), True)
            LOG.warning("compaction of %s/%s left for later: %s", self.path, name, str(error).splitlines()[0])
            return None
        replaced = self._Path(self._root, f"{REPLACED_DIR}/{name}")
        self._fs.mkdirs(replaced.getParent())
        rename(self._fs, partition, replaced)
        rename(self._fs, copy, partition)
        # Step 5, with the two working folders: nothing else is in them.
        for working in (REPLACED_DIR, COMPACT_DIR):
            self._fs.delete(self._Path(self._root, working), True)
        return Compaction(name, len(parts), len(self._parts(partition)), rows)

    def copy(self, parts: List[Any], copy: Any) -> int:
        """Steps 1-2: the rows of `parts` into files of about target_bytes at `copy`."""
        files = max(1, math.ceil(sum(int(status.getLen()) for status in parts) / self.target_bytes))
        paths = [status.getPath().toString() for status in parts]
        rows = self._read(paths).count()
        write_format = "text" if self.output_format == "json" else self.output_format
        self._read(paths).coalesce(files).write.mode("overwrite").format(write_format).save(copy.toString())
        copied = self._read([status.getPath().toString() for status in self._parts(copy)]).count()
        if copied != rows:
            raise RuntimeError(f"the copy holds {copied} rows of {rows}")
        return rows

    def _read(self, paths: List[str]) -> Any:
        # JSON files are merged as lines of text: nothing parsed, every byte kept.
        if self.output_format == "json":
            return self._spark.read.text(paths)
        return self._spark.read.format(self.output_format).load(paths)

    def _parts(self, folder: Any) -> List[Any]:
        return part_files(self._fs, folder)

    @staticmethod
    def _names(statuses: List[Any]) -> List[str]:
        return [str(status.getPath().getName()) for status in statuses]
