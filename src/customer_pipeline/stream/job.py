"""The Spark Structured Streaming job: `customers-raw` -> HDFS datasets + Kafka topics.

    python -m customer_pipeline.stream.job --config FILE [--set section.key=value ...]
    spark-submit --jars KAFKA_JARS --py-files customer_pipeline.zip run_stream_job.py --config FILE [--set ...]

One query, one Kafka read, one checkpoint. Each micro-batch is classified with the
contract's rules (`stream.rules`, native Spark SQL) and then, in `foreachBatch`:

1. the usa and alerts rows are appended to their datasets exactly once, by batch id
   (`stream.batch_commit`), so a replay after a crash of the driver never duplicates a row;
   plain datasets are partitioned by ingestion date and their closed days compacted
   (`stream.partition_compaction`), Delta tables compact themselves (`stream.delta_commit`);
2. the same rows go to `customers-usa` / `customers-alerts` as JSON keyed by
   `record_id` (at least once: a replayed batch sends its messages again);
3. one line is logged: batch id, rows in, rows per class, duration and each step's.

out_of_scope rows are only counted. Messages that cannot be read as raw messages (not
JSON, no record_id, ...) cannot be routed: they are counted as `unreadable` and logged
with their Kafka offsets, and the job goes on rather than stopping on a poison message.

SIGTERM stops the query once the running micro-batch is done, and the job exits 0.
Exit codes: 0 stopped or caught up (available_now), 1 the query failed, 2 bad settings.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import re
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException, StreamingQueryException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from customer_pipeline.contract import rules as contract
from customer_pipeline.contract.messages import RAW_MESSAGE_SCHEMA_DDL
from customer_pipeline.journal import log_to_journal
from customer_pipeline.settings import EXIT_BAD_SETTINGS
from customer_pipeline.stream import delta_commit
from customer_pipeline.stream import rules as spark_rules
from customer_pipeline.stream.batch_commit import PARTITION_COLUMN, BatchDatasetWriter, BatchWriteResult
from customer_pipeline.stream.config import ConfigError, StreamConfig, load_config
from customer_pipeline.stream.partition_compaction import PartitionCompactor
from customer_pipeline.stream.setting_checks import setting_behind, unwritable_path

LOG = logging.getLogger("customer_pipeline.stream.job")
DatasetWriter = Union[BatchDatasetWriter, delta_commit.DeltaBatchWriter]
ROUTE_UNREADABLE = "unreadable"
# Offsets of unreadable messages logged per batch, enough to find them with a consumer.
MAX_UNREADABLE_LOGGED = 5
# How long a SIGTERM waits for the running micro-batch before stopping it anyway
# (the batch is then replayed at the next start: the writes are idempotent).
STOP_GRACE_SECONDS = 300.0
# How long a micro-batch waits for start() to hand over the query's id (it returns at once).
QUERY_ID_WAIT_SECONDS = 120.0
JOB_SQL_CONF = {
    # Parquet's standard microsecond timestamps rather than Spark's legacy INT96, so
    # other readers (Hive, pandas, Trino) see `ingested_at` as it is.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Dates as the contract's calendar has them (proleptic Gregorian, as Python's): a valid
    # signup_date before 1582-10-15 (`0001-01-01`) otherwise fails the whole Parquet write
    # (WRITE_ANCIENT_DATETIME), and the job with it, on every restart (the hostile corpus
    # found it). Spark 3+, Trino and pyarrow read such dates as written; readers on the
    # hybrid Julian calendar (Spark 2, older Hive) see them shifted by a few days.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # Each micro-batch is cached once and read by its four outputs, then dropped: building
    # a compressed cache cost more than the rest of the caching (200,000 rows: 9.3 s
    # against 6.1 s uncompressed, measured on the sandbox), and the cache lives seconds.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


def build_session(config: StreamConfig) -> SparkSession:
    builder = SparkSession.builder.appName(config.app_name)
    for name, value in {**table_format_conf(config), **dict(config.spark_conf)}.items():
        builder = builder.config(name, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(config.log_level)
    # Set after the session exists so that spark-defaults.conf cannot switch them off.
    for name, value in {**spark_rules.REQUIRED_SQL_CONF, **JOB_SQL_CONF}.items():
        spark.conf.set(name, value)
    return spark


def table_format_conf(config: StreamConfig) -> Dict[str, str]:
    """Session settings the output format needs: Delta's extension, catalog and auto
    compaction (static ones, so given to the builder before the session exists)."""
    if config.output_format != "delta":
        return {}
    return {**delta_commit.SESSION_CONF,
            **delta_commit.compaction_conf(config.compact_min_files, config.compact_target_bytes,
                                           config.vacuum_retention_hours)}


def check_dataset_layouts(spark: SparkSession, config: StreamConfig) -> Optional[str]:
    """Why the datasets cannot be written in `output_format` (a folder holding the other
    format's files, or plain files without date partitions), or None. Switching formats
    or layouts starts the datasets over: reset.yml."""
    delta = config.output_format == "delta"
    for setting, path in (("usa_path", config.usa_path), ("alerts_path", config.alerts_path)):
        layout = delta_commit.dataset_layout(spark, path)
        if delta and layout in ("files", "flat"):
            held = "plain files (output_format parquet or json)"
        elif not delta and layout == "delta":
            held = "a Delta table"
        elif not delta and layout == "flat":
            return (f"{setting} {path} holds part files at its top level, the layout before the datasets "
                    f"were partitioned by {PARTITION_COLUMN}: run reset.yml to start them over (it deletes "
                    "them; move them aside first to keep them)")
        else:
            continue
        return (f"[hdfs] output_format = {config.output_format}, but {setting} {path} holds {held}: "
                "run reset.yml to start the datasets over in the new format (it deletes them), "
                "or set the format they were written in")
    return None


def parse_raw(messages: DataFrame) -> DataFrame:
    """Kafka records -> the raw message's fields as top-level columns (+ partition, offset)."""
    # An explicit schema: nothing is inferred, and a field of another type reads as null.
    parsed = F.from_json(F.col("value").cast("string"), RAW_MESSAGE_SCHEMA_DDL)
    return messages.select(parsed.alias("message"), "partition", "offset").select(
        "message.*", "partition", "offset"
    )


def classify(raw: DataFrame, target_country: str = contract.DEFAULT_TARGET_COUNTRY) -> DataFrame:
    """Adds `route` and `reasons`; a message lacking what every output needs is unreadable.

    Also adds the working columns the rules and the outputs read (each field's present
    value, whether the country is the target), one projection each, so that each is
    computed once per row."""
    cleaned = raw.select("*", *spark_rules.clean_columns())
    targeted = cleaned.select("*", spark_rules.target_column(target_country))
    rules = spark_rules.classify_columns()
    readable = (
        F.col("record_id").isNotNull()
        & F.col("source_uri").isNotNull()
        & F.col("source_row").isNotNull()
        & spark_rules.ingested_at_value().isNotNull()
    )
    route = F.when(readable, rules[spark_rules.ROUTE_COLUMN]).otherwise(F.lit(ROUTE_UNREADABLE))
    return targeted.withColumn(spark_rules.REASONS_COLUMN, rules[spark_rules.REASONS_COLUMN]).withColumn(
        spark_rules.ROUTE_COLUMN, route
    )


def usa_rows(classified: DataFrame, target_country: str = contract.DEFAULT_TARGET_COUNTRY) -> DataFrame:
    return classified.where(F.col(spark_rules.ROUTE_COLUMN) == contract.ROUTE_USA).select(
        *spark_rules.usa_columns(target_country)
    )


def alert_rows(classified: DataFrame) -> DataFrame:
    return classified.where(F.col(spark_rules.ROUTE_COLUMN) == contract.ROUTE_ALERTS).select(
        *spark_rules.alert_columns()
    )


def topic_messages(rows: DataFrame, topic: str) -> DataFrame:
    """key = record_id, value = the row as the contract's JSON, for Spark's Kafka sink."""
    return rows.select(
        F.col("record_id").alias("key"),
        spark_rules.to_json_value(rows.columns).alias("value"),
        F.lit(topic).alias("topic"),
    )


class StepTimer:
    """Time spent in each named step of a micro-batch, in the order they ran (logged in ms)."""

    def __init__(self) -> None:
        self.steps: Dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.monotonic() - started

    def summary(self) -> str:
        """E.g. `count 420, usa 1310, alerts 980, topics 650 ms`."""
        return ", ".join(f"{name} {round(seconds * 1000)}" for name, seconds in self.steps.items()) + " ms"


class BatchProcessor:
    """The `foreachBatch` function: writes one micro-batch everywhere, logs one line."""

    def __init__(self, spark: SparkSession, config: StreamConfig, stop: Optional[GracefulStop] = None) -> None:
        self.config = config
        self.stop = stop
        # JSON datasets format dates and timestamps as the topics do (Spark's default
        # keeps milliseconds only and the session's time zone).
        options = spark_rules.TO_JSON_OPTIONS if config.output_format == "json" else {}
        # Files per batch and dataset: one per core. The batch is read in more tasks than
        # there are cores (min_partitions), which would otherwise mean as many small files.
        self.files_per_batch = max(spark.sparkContext.defaultParallelism, 1)
        self.usa_writer: DatasetWriter
        self.alerts_writer: DatasetWriter
        # Plain datasets: partitioned by the rows' ingestion date, closed days compacted.
        self.compactors: Dict[str, PartitionCompactor] = {}
        if config.output_format == "delta":
            self.usa_writer = delta_commit.DeltaBatchWriter(spark, config.usa_path)
            self.alerts_writer = delta_commit.DeltaBatchWriter(spark, config.alerts_path)
        else:
            self.usa_writer, self.alerts_writer = (
                BatchDatasetWriter(spark, path, config.output_format, options, partition_date_of="ingested_at")
                for path in (config.usa_path, config.alerts_path))
            self.compactors = {
                name: PartitionCompactor(spark, path, config.output_format, config.compact_min_files,
                                         config.compact_target_bytes)
                for name, path in (("usa", config.usa_path), ("alerts", config.alerts_path))}
        self._query_id = threading.Event()
        # Delta tables are vacuumed every vacuum_every_minutes, counted from the job's start
        # (not at once: a VACUUM takes seconds, and a restart needs none).
        self._vacuumed_at = time.monotonic()

    def recover(self) -> None:
        """Before the first write: finish or undo a compaction a stop interrupted."""
        for compactor in self.compactors.values():
            for line in compactor.recover():
                LOG.info("%s", line)

    def query_started(self, query_id: str) -> None:
        """The query's id (kept in its checkpoint) names the Delta writes: set before any write."""
        for writer in (self.usa_writer, self.alerts_writer):
            if isinstance(writer, delta_commit.DeltaBatchWriter):
                writer.app_id = query_id
        self._query_id.set()

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        if self.stop is not None:
            self.stop.batch_starting()
        try:
            self.process(batch, batch_id)
        finally:
            if self.stop is not None:
                self.stop.batch_finished()

    def process(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        # The first batch can start before start() has returned the query to run().
        if not self._query_id.wait(QUERY_ID_WAIT_SECONDS):
            raise RuntimeError("the streaming query's id did not arrive: nothing written for this batch")
        # The time of each step, logged with the batch: where a batch's time goes.
        steps = StepTimer()
        # Read from Kafka once, however many outputs use the rows.
        batch.persist()
        try:
            with steps("count"):
                counts = self.count_routes(batch)
            usa = usa_rows(batch, self.config.target_country).coalesce(self.files_per_batch)
            alerts = alert_rows(batch).coalesce(self.files_per_batch)
            usa_result, alerts_result = self.write_datasets(usa, alerts, batch_id, counts, steps)
            if counts[contract.ROUTE_USA] or counts[contract.ROUTE_ALERTS]:
                messages = topic_messages(usa, self.config.usa_topic).unionByName(
                    topic_messages(alerts, self.config.alerts_topic)
                )
                with steps("topics"):
                    messages.write.format("kafka").options(**self.config.kafka_sink_options()).save()
            if counts[ROUTE_UNREADABLE]:
                self.log_unreadable(batch, batch_id, counts[ROUTE_UNREADABLE])
            if self.compactors:
                with steps("compact"):
                    self.compact({"usa": usa_result, "alerts": alerts_result})
            if self.vacuum_due():
                with steps("vacuum"):
                    self.vacuum()
        finally:
            batch.unpersist()
        replayed = [name for name, result in (("usa", usa_result), ("alerts", alerts_result)) if result.skipped]
        LOG.info(
            "batch %d: %d rows in, usa %d, alerts %d, out_of_scope %d, unreadable %d, %d ms (%s)%s",
            batch_id,
            sum(counts.values()),
            counts[contract.ROUTE_USA],
            counts[contract.ROUTE_ALERTS],
            counts[contract.ROUTE_OUT_OF_SCOPE],
            counts[ROUTE_UNREADABLE],
            round((time.monotonic() - started) * 1000),
            steps.summary(),
            f" (replayed: {' and '.join(replayed)} dataset(s) already held it, topics resent)" if replayed else "",
        )

    def write_datasets(self, usa: DataFrame, alerts: DataFrame, batch_id: int, counts: Dict[str, int],
                       steps: StepTimer) -> Tuple[BatchWriteResult, BatchWriteResult]:
        """Both datasets' exactly-once writes. Delta's are run at once, from two threads:
        most of a Delta commit is waiting on the log (listing, reading, an atomic create),
        not computing, so the second overlaps the first (two writes of a small batch took
        7.2 s in a row on the sandbox)."""

        def write_usa() -> BatchWriteResult:
            with steps("usa"):
                return self.usa_writer.write(usa, batch_id, has_rows=counts[contract.ROUTE_USA] > 0)

        def write_alerts() -> BatchWriteResult:
            with steps("alerts"):
                return self.alerts_writer.write(alerts, batch_id, has_rows=counts[contract.ROUTE_ALERTS] > 0)

        if self.config.output_format != "delta":
            return write_usa(), write_alerts()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="delta-write") as pool:
            usa_future, alerts_future = pool.submit(write_usa), pool.submit(write_alerts)
            return usa_future.result(), alerts_future.result()

    def compact(self, results: Dict[str, BatchWriteResult]) -> None:
        for name, compactor in self.compactors.items():
            for done in compactor.run(results[name].partitions):
                LOG.info("compacted %s/%s: %d files -> %d, %d rows", compactor.path, done.partition,
                         done.files_before, done.files_after, done.rows)

    def vacuum_due(self) -> bool:
        if self.config.output_format != "delta" or self.config.vacuum_every_minutes == 0:
            return False
        return time.monotonic() - self._vacuumed_at >= self.config.vacuum_every_minutes * 60

    def vacuum(self) -> None:
        for writer in (self.usa_writer, self.alerts_writer):
            if isinstance(writer, delta_commit.DeltaBatchWriter):
                writer.vacuum(self.config.vacuum_retention_hours)
        self._vacuumed_at = time.monotonic()

    @staticmethod
    def count_routes(batch: DataFrame) -> Dict[str, int]:
        counts = {route: 0 for route in (*contract.ROUTES, ROUTE_UNREADABLE)}
        for row in batch.groupBy(spark_rules.ROUTE_COLUMN).count().collect():
            counts[row[0]] = int(row[1])
        return counts

    @staticmethod
    def log_unreadable(batch: DataFrame, batch_id: int, count: int) -> None:
        where = batch.where(F.col(spark_rules.ROUTE_COLUMN) == ROUTE_UNREADABLE)
        sample = where.select("partition", "offset").orderBy("partition", "offset").limit(MAX_UNREADABLE_LOGGED)
        offsets = ", ".join(f"{row[0]}:{row[1]}" for row in sample.collect())
        LOG.warning(
            "batch %d: skipped %d unreadable raw message(s) (not a raw message of the producer); "
            "partition:offset of the first: %s",
            batch_id,
            count,
            offsets,
        )


def start_query(spark: SparkSession, config: StreamConfig, stop: Optional[GracefulStop] = None) -> Any:
    cores = spark.sparkContext.defaultParallelism
    messages = (
        spark.readStream.format("kafka")
        .options(**config.kafka_source_options())
        .option("minPartitions", str(config.source_min_partitions(cores)))
        .load()
    )
    classified = classify(parse_raw(messages), config.target_country)
    processor = BatchProcessor(spark, config, stop)
    processor.recover()
    writer = (
        classified.writeStream.queryName(config.app_name)
        .option("checkpointLocation", config.checkpoint_location)
        .foreachBatch(processor)
    )
    if config.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=config.trigger_interval)
    query = writer.start()
    processor.query_started(str(query.id))
    return query


class StopRequested(RuntimeError):
    """Raised by a micro-batch that starts after a stop was decided: it writes nothing,
    and Spark redoes it (same batch id, same offsets) at the next start."""


class GracefulStop:
    """Stops the query between two micro-batches, never in the middle of one.

    SIGTERM/SIGINT only set a flag. The main thread then calls `request()`: if no batch
    is running, the query stops at once; otherwise the running batch, once its writes are
    done, has the query stopped from another thread before it returns, so Spark starts no
    further batch. (Stopping from the main thread after the batch returned would race
    with the next trigger, which starts at once while there is a backlog.)
    """

    def __init__(self) -> None:
        self.signalled = threading.Event()
        self.query: Any = None
        self._lock = threading.Lock()
        self._busy = False
        self._stopping = False

    @property
    def stopping(self) -> bool:
        return self._stopping

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signalled.set()

    def request(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            idle = not self._busy
        if idle:
            self.stop_query()

    def batch_starting(self) -> None:
        with self._lock:
            if self._stopping:
                raise StopRequested("the job is stopping: this micro-batch is left for the next start")
            self._busy = True

    def batch_finished(self) -> None:
        with self._lock:
            self._busy = False
            stopping = self._stopping
        if stopping:
            # stop() waits for the query's thread, which is the one running this batch:
            # call it from another thread and let this batch return.
            threading.Thread(target=self.stop_query, name="stop-query", daemon=True).start()

    def stop_query(self) -> None:
        if self.query is not None:
            self.query.stop()


def run(spark: SparkSession, config: StreamConfig, stop: GracefulStop) -> int:
    try:
        mismatch = check_dataset_layouts(spark, config)
        unwritable = unwritable_path(spark, config) if mismatch is None else None
    except Py4JJavaError as error:
        # E.g. the NameNode is down: systemd starts the job again (exit 1).
        LOG.error("cannot look into the datasets' folders: %s", root_cause(error))
        return 1
    if mismatch is not None:
        LOG.error("%s", mismatch)
        return EXIT_BAD_SETTINGS
    if unwritable is not None:
        # Exit 1, not 2: a permission fixed on HDFS needs no deploy, the next restart finds it.
        LOG.error("%s", unwritable)
        return 1
    try:
        query = start_query(spark, config, stop)
    except (PySparkException, Py4JJavaError) as error:
        # E.g. the Kafka connector jars are missing, or the checkpoint is unreadable.
        LOG.error("cannot start the streaming query: %s", with_setting(root_cause(error), str(error), config))
        return 1
    stop.query = query
    LOG.info(
        "started: reading %s from %s (read_committed), writing %s to %s and %s, checkpoint %s",
        config.raw_topic,
        config.bootstrap_servers,
        config.output_format,
        config.usa_path,
        config.alerts_path,
        config.checkpoint_location,
    )
    deadline: Optional[float] = None
    try:
        while query.isActive:
            if stop.signalled.is_set() and deadline is None:
                LOG.info("stop requested: finishing the running micro-batch")
                deadline = time.monotonic() + STOP_GRACE_SECONDS
                stop.request()
            elif deadline is not None and time.monotonic() > deadline:
                LOG.warning("the running micro-batch did not finish in %d s: stopping it", STOP_GRACE_SECONDS)
                stop.stop_query()
            query.awaitTermination(1)
        query.awaitTermination()  # raises if the query ended by failing
    except StreamingQueryException as failure:
        if stop.stopping and StopRequested.__name__ in str(failure):
            LOG.info("stopped on request; the micro-batch that had just started is redone at the next start")
            return 0
        # One line for journald; Spark has logged the stack trace at ERROR already.
        LOG.error("the streaming query failed, the next start resumes from its checkpoint: %s",
                  with_setting(root_cause(failure), str(failure), config))
        return 1
    if stop.stopping:
        LOG.info("stopped on request after the running micro-batch")
    else:
        LOG.info("caught up with %s: every available message is processed", config.raw_topic)
    return 0


# "Caused by: " in a Java trace; ": " where py4j puts the Java exception under its own line.
_EXCEPTION_LINE = re.compile(r"^(?:Caused by: |: )?([\w.$]+(?:Exception|Error): .*)$")


def with_setting(cause: str, failure: str, config: StreamConfig) -> str:
    """The root cause, and the setting the whole failure points at if it points at one."""
    setting = setting_behind(failure, config)
    return f"{cause}; {setting}" if setting else cause


def root_cause(failure: BaseException) -> str:
    """The innermost `SomeException: message` line of a (Java and Python) trace, so the
    log line says what went wrong rather than `Query terminated with exception`."""
    lines = [line.strip() for line in str(failure).splitlines()]
    causes = [match.group(1) for match in map(_EXCEPTION_LINE.match, lines) if match]
    return causes[-1] if causes else next((line for line in lines if line), type(failure).__name__)


def configure_logging() -> None:
    log_to_journal(LOG)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m customer_pipeline.stream.job",
        description="Stream customers-raw into the USA and alerts datasets and topics.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="INI file of the job's settings")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting of the file (never a secret: use ${ENV_VAR} in the file)",
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    configure_logging()
    try:
        config = load_config(args.config, args.set)
    except ConfigError as error:
        print(f"stream_job: error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    stop = GracefulStop()
    stop.install_signal_handlers()
    spark = build_session(config)
    try:
        return run(spark, config, stop)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
