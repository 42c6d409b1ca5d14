"""The Delta Lake output format on a local Spark with Delta's jars (no services).

The jars are the ones the spark_delta_lake role installs (its defaults), resolved by the
collection's maven_artifacts module with Maven's checksums enforced, into the controller's
cache as deploy.yml does. Needs Maven (`mvn`), Maven Central (or its mirror) and Java 17;
without them the module is skipped with the reason printed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Iterator, List

import pytest

pytest.importorskip("pyspark")
pytest.importorskip("ansible.module_utils.basic")
if shutil.which("java") is None:  # pragma: no cover - depends on the machine
    pytest.skip("local Spark needs Java", allow_module_level=True)

from delta_lake_jars import delta_lake_jars, maven_command  # noqa: E402
from pyspark import SparkContext  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from customer_pipeline.stream import delta_commit  # noqa: E402
from customer_pipeline.stream import job as stream_job  # noqa: E402
from customer_pipeline.stream.batch_commit import BatchDatasetWriter  # noqa: E402
from customer_pipeline.stream.config import StreamConfig  # noqa: E402
from customer_pipeline.verify.written import dataset_counts  # noqa: E402

pytestmark = pytest.mark.spark

MIN_FILES = 4


@pytest.fixture(scope="module")
def delta_jars() -> List[str]:
    maven = maven_command()
    if maven is None:
        pytest.skip("Maven (%s) is not on PATH: it resolves Delta Lake's jars as deploy.yml does"
                    % os.environ.get("MAVEN", "mvn"))
    return delta_lake_jars(maven)


@pytest.fixture(scope="module")
def spark(delta_jars: List[str]) -> Iterator[SparkSession]:
    if SparkContext._gateway is not None:  # pragma: no cover - depends on the test order
        pytest.skip("a JVM without Delta Lake's jars already runs in this process: run this module on its own")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    config = StreamConfig(bootstrap_servers="unused:9092", output_format="delta", compact_min_files=MIN_FILES)
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("test_delta_commit")
        .config("spark.jars", ",".join(delta_jars))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
    )
    # The job's own session settings for the delta format (extension, catalog, auto compaction).
    for name, value in stream_job.table_format_conf(config).items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # The next module's session starts a JVM of its own, without these jars and settings.
    SparkContext._gateway = None
    SparkContext._jvm = None


def _rows(spark: SparkSession, first: int, count: int, files: int = 3) -> DataFrame:
    return spark.createDataFrame([(i, f"row-{i}") for i in range(first, first + count)],
                                 "id INT, name STRING").repartition(files)


def _ids(spark: SparkSession, path: str) -> List[int]:
    return sorted(row.id for row in spark.read.format("delta").load(path).collect())


def _detail(spark: SparkSession, path: str) -> Any:
    return spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()


def test_a_replayed_batch_lands_once(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "usa")
    writer = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1")
    first = writer.write(_rows(spark, 0, 6), 7)
    # The replay after a kill -9: a new driver, the same query id (its checkpoint), the same batch.
    second = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1").write(_rows(spark, 0, 6), 7)
    writer.write(_rows(spark, 100, 2, files=1), 8)
    assert (first.skipped, second.skipped) == (False, True)
    assert (first.files, second.files) == (3, 0)
    assert _ids(spark, path) == [0, 1, 2, 3, 4, 5, 100, 101]
    # Two writes, the replay none (auto compaction may add a commit of its own).
    operations = [row["operation"] for row in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    assert operations.count("WRITE") == 2, operations


def test_batch_ids_of_a_new_query_are_not_taken_for_replays(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "alerts")
    delta_commit.DeltaBatchWriter(spark, path, app_id="query-1").write(_rows(spark, 0, 2), 0)
    # A new checkpoint (a new query id) starts its batch ids at 0 again.
    again = delta_commit.DeltaBatchWriter(spark, path, app_id="query-2").write(_rows(spark, 10, 2), 0)
    assert again.skipped is False
    assert _ids(spark, path) == [0, 1, 10, 11]


def test_a_batch_without_rows_writes_no_commit(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "usa")
    writer = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1")
    writer.write(_rows(spark, 0, 2), 1)
    before = writer.version()
    result = writer.write(_rows(spark, 0, 0), 2, has_rows=False)
    assert (result.skipped, result.files) == (False, 0)
    assert writer.version() == before
    with pytest.raises(RuntimeError, match="app_id is not set"):
        delta_commit.DeltaBatchWriter(spark, path).write(_rows(spark, 0, 1), 3)


def test_auto_compaction_keeps_the_tables_files_few_and_every_row_once(spark: SparkSession, tmp_path: Path) -> None:
    """12 batches of 3 files each: without compaction the table would hold 36 files."""
    path = str(tmp_path / "usa")
    writer = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1")
    most = 0
    for batch_id in range(12):
        result = writer.write(_rows(spark, batch_id * 10, 10), batch_id)
        assert result.skipped is False
        most = max(most, _detail(spark, path)["numFiles"])
    # Compaction starts once MIN_FILES small files are there, so the table never holds many more.
    assert most <= MIN_FILES + 3, most
    assert _ids(spark, path) == list(range(120))
    operations = [row["operation"] for row in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    assert operations.count("WRITE") == 12 and operations.count("OPTIMIZE") >= 3, operations


def test_two_hundred_batches_keep_the_tables_files_few_and_every_row_once(spark: SparkSession, tmp_path: Path) -> None:
    """200 batches of 2 files each, with the job's default threshold (50 files): without
    compaction the table would hold 400 files. Long: a Delta commit takes about a second
    on a local Spark, so this runs in `make test-long` (README, Tests), which `make test` runs
    beside the unit tests, not in `make test-unit`."""
    if not os.environ.get("LONG_TESTS"):
        pytest.skip("200 Delta commits take about 200 s here: make test-long runs them (LONG_TESTS=1; make test does)")
    path = str(tmp_path / "usa")
    writer = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1")
    default = StreamConfig(bootstrap_servers="unused:9092").compact_min_files
    spark.conf.set("spark.databricks.delta.autoCompact.minNumFiles", str(default))
    try:
        most = 0
        for batch_id in range(200):
            rows = _rows(spark, batch_id * 5, 5, files=2).select(
                "id", "name", F.lit(f"s3://customers/{batch_id // 50}.csv").alias("source_uri"),
                F.concat(F.lit("r"), F.col("id")).alias("record_id"))
            assert writer.write(rows, batch_id).skipped is False
            if batch_id % 10 == 9:
                most = max(most, _detail(spark, path)["numFiles"])
    finally:
        spark.conf.set("spark.databricks.delta.autoCompact.minNumFiles", str(MIN_FILES))
    # Compaction starts once `default` small files are there, so the table never holds many more.
    assert most <= default + 2, most
    assert _ids(spark, path) == list(range(1000))
    # verify.yml's own count of the table (verify/written.py): every object exact, no duplicate.
    assert dataset_counts(spark, path, "delta") == {
        f"s3://customers/{n}.csv": {"rows": 250, "duplicates": 0, "earlier_rows": 0, "earlier_duplicates": 0}
        for n in range(4)}
    operations = [row["operation"] for row in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    assert operations.count("WRITE") == 200 and operations.count("OPTIMIZE") >= 7, operations


def test_vacuum_deletes_the_files_compaction_replaced(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "alerts")
    writer = delta_commit.DeltaBatchWriter(spark, path, app_id="query-1")
    for batch_id in range(8):
        writer.write(_rows(spark, batch_id * 10, 10), batch_id)

    def on_disk() -> int:
        return len(list((tmp_path / "alerts").glob("*.parquet")))

    active = _detail(spark, path)["numFiles"]
    assert on_disk() > active  # the small files compaction merged are still there
    # The job's setting below Delta's default switches Delta's retention check off, as here.
    assert delta_commit.compaction_conf(4, 1 << 20, 0)["spark.databricks.delta.retentionDurationCheck.enabled"] == "false"
    assert delta_commit.compaction_conf(4, 1 << 20)["spark.databricks.delta.retentionDurationCheck.enabled"] == "true"
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        writer.vacuum(0)
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")
    assert on_disk() == active
    assert _ids(spark, path) == list(range(80))
    # A table not made yet has nothing to vacuum.
    delta_commit.DeltaBatchWriter(spark, str(tmp_path / "none"), app_id="q").vacuum(168)


def test_a_folder_of_the_other_format_is_refused_with_the_way_out(spark: SparkSession, tmp_path: Path) -> None:
    usa, alerts = tmp_path / "usa", tmp_path / "alerts"
    BatchDatasetWriter(spark, str(usa)).write(_rows(spark, 0, 2), 0)
    assert delta_commit.dataset_layout(spark, str(usa)) == "flat"
    assert delta_commit.dataset_layout(spark, str(alerts)) is None
    delta = StreamConfig(bootstrap_servers="b:9092", usa_path=str(usa), alerts_path=str(alerts), output_format="delta")
    assert stream_job.check_dataset_layouts(spark, delta) == (
        f"[hdfs] output_format = delta, but usa_path {usa} holds plain files (output_format parquet or json): "
        "run reset.yml to start the datasets over in the new format (it deletes them), "
        "or set the format they were written in")
    delta_commit.DeltaBatchWriter(spark, str(alerts), app_id="q").write(_rows(spark, 0, 2), 0)
    assert delta_commit.dataset_layout(spark, str(alerts)) == "delta"
    parquet = StreamConfig(bootstrap_servers="b:9092", usa_path=str(tmp_path / "new"), alerts_path=str(alerts))
    assert "alerts_path %s holds a Delta table: run reset.yml" % alerts in stream_job.check_dataset_layouts(
        spark, parquet)
    # Plain files at the folder's top level: written before the date partitions.
    flat = StreamConfig(bootstrap_servers="b:9092", usa_path=str(usa), alerts_path=str(tmp_path / "new"))
    assert stream_job.check_dataset_layouts(spark, flat) == (
        f"usa_path {usa} holds part files at its top level, the layout before the datasets were partitioned "
        "by ingest_date: run reset.yml to start them over (it deletes them; move them aside first to keep "
        "them)")
    # Each format on its own folders is fine, and so are folders not made yet.
    assert stream_job.check_dataset_layouts(spark, StreamConfig(
        bootstrap_servers="b:9092", usa_path=str(tmp_path / "a"), alerts_path=str(alerts), output_format="delta")) is None
