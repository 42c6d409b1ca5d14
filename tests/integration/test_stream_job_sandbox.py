"""The Spark job against the sandbox's real Kafka and HDFS, with a local Spark driver.

Known raw messages (the contract's edge cases and 3,000 sample rows) go to a fresh topic, in a
committed transaction, plus an aborted one that must never show up. The job runs on the
controller on one checkpoint: stopped with SIGTERM, killed with -9, then started with
`available_now` until it has caught up. Both datasets must then hold exactly the rows the
reference implementation expects, once each, and both topics every record. A replayed batch
(its commit removed from the checkpoint) must leave the datasets unchanged. The test runs for
both dataset formats, plain Parquet and Delta Lake (the `output_format` fixture): one job's
life per format, since each start of the job costs a JVM and a Spark session.

Needs the Kafka connector jars of the job (see `connector_jars`).
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
# The sandbox's services; overridable to run the same test against another broker/FS.
BOOTSTRAP = os.environ.get("STREAM_JOB_TEST_BOOTSTRAP", "127.0.0.1:9092")
HDFS = os.environ.get("STREAM_JOB_TEST_FS", "hdfs://127.0.0.1:8020")
UTC = dt.timezone.utc
# The jars Spark's Kafka source and sink need beyond what pyspark ships.
CONNECTOR_JARS = ("spark-sql-kafka-0-10_2.12-", "spark-token-provider-kafka-0-10_2.12-", "kafka-clients-", "commons-pool2-")


def connector_jars() -> List[str]:
    """The connector jars: from $STREAM_JOB_KAFKA_JARS_DIR or the controller's Maven cache."""
    folders = [os.environ["STREAM_JOB_KAFKA_JARS_DIR"]] if "STREAM_JOB_KAFKA_JARS_DIR" in os.environ else []
    folders += sorted(glob.glob(str(ROOT / ".cache" / "maven" / "*")))
    for folder in folders:
        jars = [sorted(glob.glob(os.path.join(folder, prefix + "*.jar"))) for prefix in CONNECTOR_JARS]
        if all(jars):
            return [found[-1] for found in jars]
    # deploy.yml (test_deploy.py, which runs first) fetches them into the controller's cache.
    pytest.fail(
        "no Kafka connector jars for Spark in .cache/maven/: run ansible-playbook playbooks/deploy.yml "
        "(role spark_kafka_connector fetches them) or set STREAM_JOB_KAFKA_JARS_DIR"
    )


@pytest.fixture()
def run_id() -> str:
    return uuid.uuid4().hex[:10]



def read_dataset(spark: Any, path: str, output_format: str = "parquet") -> List[Dict[str, Any]]:
    """Every row as its topic JSON (dates and timestamps as the contract writes them)."""
    from pyspark.sql import functions as F

    from customer_pipeline.stream import rules as spark_rules

    frame = spark.read.format(output_format).load(path)
    if output_format != "delta":
        # The partition column is the UTC date of ingested_at, and is not one of the contract's.
        assert frame.where(F.col("ingest_date") != F.to_date("ingested_at")).count() == 0
        frame = frame.drop("ingest_date")
    rows = [json.loads(row[0]) for row in frame.select(spark_rules.to_json_value(frame.columns)).collect()]
    return sorted(rows, key=lambda r: (r["source_uri"], r["source_row"]))


def delete_tree(spark: Any, path: str) -> None:
    jvm_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(path)
    jvm_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(jvm_path, True)


def raw_messages() -> List[Any]:
    from customer_pipeline.contract import rules as contract
    from customer_pipeline.contract.messages import RawMessage

    valid = {
        "customer_id": "0042",
        "first_name": " Ada ",
        "last_name": "Lovelace",
        "email": "Ada@Example.COM",
        "phone": None,
        "address": "1 Main St",
        "city": "Springfield",
        "state": "il",
        "zip_code": "62701",
        "country": "united states",
        "signup_date": "2024-02-29",
    }
    rows: List[Tuple[Dict[str, Any], Dict[str, Any]]] = [
        (valid, {}),
        ({**valid, "customer_id": "9223372036854775807", "email": "\u0130@x.co", "country": " U.S.A. "}, {}),
        ({**valid, "signup_date": "2023-02-29", "zip_code": "1234"}, {}),
        ({**valid, "country": "Canada", "state": None, "zip_code": None}, {}),
        ({**valid, "email": "a@b", "customer_id": "\u0661"}, {}),
        ({column: None for column in contract.KNOWN_COLUMNS}, {"malformed": True, "raw_line": 'x,"y'}),
        ({**valid, "customer_id": "7", "state": "NY", "zip_code": "10001-0001"}, {}),
        ({**valid, "country": "Deutschland", "email": "bad"}, {}),
    ]
    uri = "s3://customers/incoming/sandbox-test.csv"
    ingested = dt.datetime(2024, 5, 6, 7, 8, 9, 12345, tzinfo=UTC)
    return [
        RawMessage(
            values={column: values.get(column) for column in contract.KNOWN_COLUMNS},
            source_uri=uri,
            source_etag='"abc"',
            source_row=row,
            record_id=contract.record_id(uri, '"abc"', row),
            ingested_at=ingested,
            **extra,
        )
        for row, (values, extra) in enumerate(rows, 1)
    ]


@pytest.fixture()
def topics(run_id: str) -> Iterator[Dict[str, str]]:
    from kafka.admin import KafkaAdminClient, NewTopic

    names = {kind: f"stream-job-test-{kind}-{run_id}" for kind in ("raw", "usa", "alerts")}
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1) for name in names.values()])
    try:
        yield names
    finally:
        admin.delete_topics(list(names.values()))
        admin.close()


def publish(topic: str, messages: List[Any], run_id: str) -> None:
    """The committed messages, and an aborted transaction a read_committed job must not see."""
    from kafka import KafkaProducer

    from customer_pipeline.contract.messages import encode_raw_message

    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=f"stream-job-test-{run_id}")
    producer.init_transactions()
    producer.begin_transaction()
    for m in messages:
        producer.send(topic, key=m.key, value=encode_raw_message(m))
    producer.commit_transaction()
    producer.begin_transaction()
    for m in messages[:3]:
        producer.send(topic, key=b"aborted", value=encode_raw_message(m))
    producer.flush()
    producer.abort_transaction()
    producer.close()


@pytest.fixture(params=["parquet", "delta"])
def output_format(request: pytest.FixtureRequest) -> str:
    """Each exactly-once test runs for both dataset formats: plain Parquet and Delta Lake."""
    from delta_lake_jars import delta_lake_jars_if_maven

    if request.param == "delta" and not delta_lake_jars_if_maven():
        pytest.skip("Maven is not on PATH: it resolves Delta Lake's jars as deploy.yml does")
    return str(request.param)


def job_jars(output_format: str) -> List[str]:
    from delta_lake_jars import delta_lake_jars_if_maven

    return connector_jars() + (list(delta_lake_jars_if_maven()) if output_format == "delta" else [])


def write_config(tmp_path: Path, topics: Dict[str, str], base: str, jars: List[str], kafka: str, job: str,
                 output_format: str = "parquet") -> Path:
    config = tmp_path / "stream-job.ini"
    config.write_text(
        f"""\
[kafka]
bootstrap_servers = {BOOTSTRAP}
raw_topic = {topics["raw"]}
usa_topic = {topics["usa"]}
alerts_topic = {topics["alerts"]}
{kafka}

[hdfs]
usa_path = {base}/customers_usa
alerts_path = {base}/customers_alerts
checkpoint_location = {base}/checkpoint
output_format = {output_format}

[job]
app_name = stream-job-test
{job}

[spark_conf]
spark.master = local[2]
spark.jars = {",".join(jars)}
spark.ui.enabled = false
spark.driver.bindAddress = 127.0.0.1
spark.driver.host = 127.0.0.1
spark.sql.shuffle.partitions = 2
""",
        encoding="utf-8",
    )
    return config


def job_command(config_path: Path, *overrides: str) -> List[str]:
    command = [sys.executable, "-m", "customer_pipeline.stream.job", "--config", str(config_path)]
    for override in overrides:
        command += ["--set", override]
    return command


JOB_ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYSPARK_PYTHON=sys.executable)


def run_job(config_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        job_command(config_path, *overrides), capture_output=True, text=True, env=JOB_ENV, timeout=300
    )


def consume(topic: str) -> List[Tuple[bytes, Dict[str, Any]]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=BOOTSTRAP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    received = [(record.key, json.loads(record.value.decode("utf-8"))) for record in consumer]
    consumer.close()
    return received


def sample_messages(rows: int) -> List[Any]:
    """The raw messages the producer makes of the project's sample CSV."""
    import io

    from customer_pipeline.contract.csv_reader import read_records
    from customer_pipeline.contract.messages import RawMessage
    from customer_pipeline.contract.sample_data import generate_bytes

    ingested = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    return [
        RawMessage.from_source_record(
            record, source_uri="s3://customers/incoming/sigterm.csv", source_etag="e1", ingested_at=ingested
        )
        for record in read_records(io.BytesIO(generate_bytes(rows)))
    ]


def batch_ids(log: str) -> List[int]:
    """The ids of the micro-batches a run of the job logged, in order."""
    return [int(line.split(": batch ")[1].split(":")[0]) for line in log.splitlines() if ": batch " in line]


def expected_rows(messages: List[Any]) -> Dict[str, List[Dict[str, Any]]]:
    """The rows of each dataset the reference implementation makes of `messages`."""
    from customer_pipeline.contract.messages import process_raw_message

    outcomes = [process_raw_message(m) for m in messages]
    return {
        route: sorted(
            (o.record.to_json_dict() for o in outcomes if o.route == route and o.record is not None),
            key=lambda r: (r["source_uri"], r["source_row"]),
        )
        for route in ("usa", "alerts")
    }


def test_a_stopped_then_killed_job_lands_exactly_the_expected_rows_once_and_a_replayed_batch_changes_nothing(
    tmp_path: Path, run_id: str, topics: Dict[str, str], spark: Any, output_format: str
) -> None:
    """One job's life on one checkpoint: SIGTERM stops it between batches (exit 0); started
    again, it is killed with -9 (driver and JVM), which lands anywhere, mid-batch included; a
    last start with available_now catches up. Both datasets then hold exactly the rows the
    reference implementation makes of the edge cases and of 3,000 sample rows, with the
    contract's types, once each; both topics every record, keyed by its record id. Last, the
    final batch is replayed as after a kill -9 between its writes and its commit (its commit
    file removed): the sink finds it already written and the datasets do not change."""
    jars = job_jars(output_format)
    edge_cases = raw_messages()
    messages = edge_cases + sample_messages(3000)
    edge = expected_rows(edge_cases)
    assert [len(edge["usa"]), len(edge["alerts"])] == [3, 4]  # and 1 out_of_scope
    expected = expected_rows(messages)
    publish(topics["raw"], messages, run_id)
    base = f"{HDFS}/tmp/stream-job-test-{run_id}"
    # Delta commits take seconds on the sandbox: fewer, larger batches (6 rather than 11),
    # still two per run before the stop and the kill.
    per_trigger = 300 if output_format == "parquet" else 600
    config = write_config(tmp_path, topics, base, jars, f"max_offsets_per_trigger = {per_trigger}",
                          "trigger_interval = 1 second", output_format)
    try:
        for how in ("sigterm", "kill-9"):
            log = tmp_path / ("job-%s.log" % how)
            with open(log, "w", encoding="utf-8") as out, \
                    open(tmp_path / ("spark-%s.log" % how), "w", encoding="utf-8") as err:
                # Its own process group, so kill -9 takes the Python driver and its JVM at once.
                job = subprocess.Popen(job_command(config), stdout=out, stderr=err, env=JOB_ENV,
                                       start_new_session=True)
                deadline = time.monotonic() + 180
                # Two batches logged (their ids go on from the checkpoint's, so count them).
                while log.read_text(encoding="utf-8").count(": batch ") < 2 and job.poll() is None:
                    assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
                    time.sleep(0.2)
                if how == "sigterm":
                    job.send_signal(signal.SIGTERM)
                    assert job.wait(timeout=120) == 0, log.read_text(encoding="utf-8")
                else:
                    time.sleep(1.3)  # into the next batch's writes, or between two batches
                    os.killpg(job.pid, signal.SIGKILL)
                    job.wait(timeout=60)
            text = log.read_text(encoding="utf-8")
            if how == "sigterm":
                assert "stopped on request" in text, text
                # A fresh checkpoint: batches numbered from 0, one after the other.
                assert batch_ids(text) == list(range(len(batch_ids(text)))), text
            # 3,008 offsets at 300 (600) per batch need 11 or 12 (6 or 7); transaction markers
            # and the aborted records take offsets too.
            assert 2 <= text.count(": batch ") < 7, text

        restart = run_job(config, "job.available_now=true")
        assert restart.returncode == 0, restart.stdout[-3000:] + restart.stderr[-3000:]
        assert "caught up" in restart.stdout, restart.stdout

        def types(path: str) -> List[Tuple[str, str]]:
            return [(f.name, f.dataType.simpleString())
                    for f in spark.read.format(output_format).load(path).schema.fields]

        for route, path in (("usa", "customers_usa"), ("alerts", "customers_alerts")):
            # Exactly once: the same list, so no row lost and none twice.
            assert read_dataset(spark, f"{base}/{path}", output_format) == expected[route]
            # At least once on the topics: every record, duplicates allowed, keyed by its id.
            received = consume(topics[route])
            assert {value["record_id"] for _, value in received} == {r["record_id"] for r in expected[route]}
            assert all(key == value["record_id"].encode("ascii") for key, value in received)
        assert types(f"{base}/customers_usa")[:2] == [("customer_id", "bigint"), ("first_name", "string")]
        assert ("signup_date", "date") in types(f"{base}/customers_usa")
        assert ("ingested_at", "timestamp") in types(f"{base}/customers_usa")

        # Replay the last batch as after a kill -9 between its writes and its commit.
        last = batch_ids(restart.stdout)[-1]
        commits = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"{base}/checkpoint/commits/{last}")
        fs = commits.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        assert fs.delete(commits, False)
        replay = run_job(config, "job.available_now=true")
        assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
        assert f"batch {last}:" in replay.stdout and "already held it" in replay.stdout, replay.stdout
        for route, path in (("usa", "customers_usa"), ("alerts", "customers_alerts")):
            assert read_dataset(spark, f"{base}/{path}", output_format) == expected[route]
    finally:
        delete_tree(spark, base)
