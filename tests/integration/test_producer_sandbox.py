"""The producer against the sandbox's real S3 (SeaweedFS) and real Kafka broker.

The tests of what it publishes, of kill -9 and of SIGTERM run once per client library of the
transactional producer (kafka.client: kafka-python and confluent-kafka): the exactly-once
design must hold with either."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import ROOT

pytestmark = pytest.mark.sandbox

BOOTSTRAP = "127.0.0.1:9092"
HEADER = "customer_id,first_name,last_name,email,phone,address,city,state,zip_code,country,signup_date\n"


@pytest.fixture()
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(params=["kafka-python", "confluent-kafka"])
def client(request) -> str:
    return request.param


@pytest.fixture()
def topic(run_id):
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    name = "raw-%s" % run_id
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    yield name
    admin.delete_topics([t for t in (name, "progress-%s" % run_id) if t in admin.list_topics()])
    admin.close()


def write_settings(tmp_path: Path, run_id: str, topic: str, client: str = "kafka-python", **producer: str) -> Path:
    path = tmp_path / "producer.ini"
    lines = [
        "[s3]", "endpoint_url = http://127.0.0.1:8333", "bucket = customers", "prefix = test-%s/" % run_id,
        "addressing_style = path",
        "[kafka]", "bootstrap_servers = %s" % BOOTSTRAP, "topic = %s" % topic,
        "progress_topic = progress-%s" % run_id, "transactional_id = producer-%s" % run_id, "client = %s" % client,
        "[producer]", "poll_interval_seconds = 1",
    ] + ["%s = %s" % item for item in producer.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def producer_env(s3_settings: Dict[str, str]) -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"),
                AWS_ACCESS_KEY_ID=s3_settings["aws_access_key_id"],
                AWS_SECRET_ACCESS_KEY=s3_settings["aws_secret_access_key"])


def run_producer(settings: Path, s3_settings, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings),
                           "--set", "producer.exit_when_idle=true"],
                          env=producer_env(s3_settings), capture_output=True, text=True, timeout=timeout)


def read_committed(topic: str) -> List[dict]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                             isolation_level="read_committed", enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    messages = []
    for record in consumer:
        value = json.loads(record.value)
        assert record.key.decode() == value["record_id"]
        messages.append(value)
    consumer.close()
    return messages


def test_publishes_the_exact_messages_and_skips_bad_objects(tmp_path, run_id, topic, client, s3, s3_settings):
    from customer_pipeline.contract.rules import record_id

    prefix = "test-%s/" % run_id
    good = ("\ufeff" + HEADER +
            '1,Ann,Lee,ann@example.com,,"1 Main St, Apt 2",Austin,TX,73301,USA,2024-02-29\r\n'
            "\n"
            '2,"Bob ""B""",Ray,bob@example,555,,Paris,,,France,2024-01-01\r\n'
            "3,too,few,fields\r\n")
    etag = s3.put_object(Bucket="customers", Key=prefix + "a.csv", Body=good.encode())["ETag"]
    s3.put_object(Bucket="customers", Key=prefix + "b-empty.csv", Body=b"")
    s3.put_object(Bucket="customers", Key=prefix + "c-rejected.csv", Body=b"customer_id,first_name\n1,x\n")
    s3.put_object(Bucket="customers", Key=prefix + "ignored.txt", Body=good.encode())

    result = run_producer(write_settings(tmp_path, run_id, topic, client), s3_settings)
    assert result.returncode == 0, result.stdout + result.stderr
    log = result.stdout
    assert "skipping s3://customers/%sb-empty.csv: it is empty (no header)" % prefix in log
    assert ("rejecting s3://customers/%sc-rejected.csv: its header lacks the required column(s) "
            "last_name, email, country, signup_date; nothing of it is published" % prefix) in log

    messages = sorted(read_committed(topic), key=lambda message: message["source_row"])
    uri = "s3://customers/%sa.csv" % prefix
    assert [m["source_row"] for m in messages] == [1, 2, 3]
    assert {m["source_uri"] for m in messages} == {uri}
    assert {m["source_etag"] for m in messages} == {etag}
    assert [m["record_id"] for m in messages] == [record_id(uri, etag, row) for row in (1, 2, 3)]
    first, second, third = messages
    assert (first["customer_id"], first["address"], first["phone"], first["signup_date"]) == \
        ("1", "1 Main St, Apt 2", "", "2024-02-29")
    assert first["malformed"] is False and first["raw_line"] is None
    assert (second["first_name"], second["email"], second["country"]) == ('Bob "B"', "bob@example", "France")
    assert third["malformed"] is True and third["raw_line"] == "3,too,few,fields"
    assert third["customer_id"] is None
    for message in messages:
        assert message["ingested_at"].endswith("Z")

    # A second run finds everything finished and publishes nothing more.
    again = run_producer(write_settings(tmp_path, run_id, topic, client), s3_settings)
    assert again.returncode == 0, again.stdout
    assert len(read_committed(topic)) == 3


def test_kill_9_mid_object_leaves_no_gap_and_no_duplicate(tmp_path, run_id, topic, client, s3, s3_settings):
    rows = 20_000
    body = HEADER + "".join("%d,F%d,L%d,c%d@example.com,,,,CA,90210,USA,2024-01-01\n" % (i, i, i, i)
                            for i in range(1, rows + 1))
    s3.put_object(Bucket="customers", Key="test-%s/big.csv" % run_id, Body=body.encode())
    settings = write_settings(tmp_path, run_id, topic, client, transaction_records="700", rate_limit="4000",
                              progress_every_records="1000")
    process = subprocess.Popen([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings)],
                               env=producer_env(s3_settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    # Kill it once it has committed a few transactions, in the middle of the object.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "published 3000 records" in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    committed = len(read_committed(topic))
    assert 0 < committed < rows, committed

    result = run_producer(settings, s3_settings, timeout=300)
    assert result.returncode == 0, result.stdout
    assert "resuming s3://customers/test-%s/big.csv after row %d" % (run_id, committed) in result.stdout
    published = [message["source_row"] for message in read_committed(topic)]
    assert len(published) == rows
    assert sorted(published) == list(range(1, rows + 1))


def test_sigterm_commits_the_open_transaction_and_exits_0(tmp_path, run_id, topic, client, s3, s3_settings):
    rows = 5_000
    body = HEADER + "".join("%d,F,L,c%d@example.com,,,,CA,90210,USA,2024-01-01\n" % (i, i) for i in range(1, rows + 1))
    s3.put_object(Bucket="customers", Key="test-%s/slow.csv" % run_id, Body=body.encode())
    settings = write_settings(tmp_path, run_id, topic, client, rate_limit="1000", transaction_records="100000",
                              transaction_seconds="60")
    process = subprocess.Popen([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings)],
                               env=producer_env(s3_settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    for line in process.stdout:
        if "ingesting" in line:
            break
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    stopped_at = len(read_committed(topic))
    assert 0 < stopped_at < rows
    assert "stopping at row %d" % stopped_at in out


def test_unreachable_kafka_gives_one_clear_error_and_exit_1(tmp_path, run_id, s3_settings):
    # One attempt: each waits kafka-python's 30 s bootstrap timeout; retries are unit-tested.
    settings = write_settings(tmp_path, run_id, "nowhere", retry_attempts="1")
    result = subprocess.run([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings),
                             "--set", "kafka.bootstrap_servers=127.0.0.1:1"],
                            env=producer_env(s3_settings), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "connecting to Kafka at 127.0.0.1:1 failed after 1 attempt(s)" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_bucket_gives_one_clear_error_and_exit_1(tmp_path, run_id, topic, s3_settings):
    settings = write_settings(tmp_path, run_id, topic)
    result = subprocess.run([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings),
                             "--set", "s3.bucket=no-such-bucket-%s" % run_id],
                            env=producer_env(s3_settings), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "listing s3://no-such-bucket-%s/" % run_id in errors[0], result.stdout
    assert "NoSuchBucket" in errors[0] or "does not exist" in errors[0]
