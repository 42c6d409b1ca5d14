"""The pipeline against a real Kafka 1.1.1 broker, HDP 3.1's Kafka (make test-compat).

A session fixture runs ZooKeeper 3.4.10 and a Kafka 1.1.1 broker (Scala 2.11) as two plain
Java processes on 127.0.0.31, ZooKeeper on :2181 and the broker on HDP's :6667, with their
data in a temporary folder. The jars come from Maven Central through the project's own
`maven_artifacts` module into `.cache/maven/kafka-1.1.1` (Maven checks every jar against the
repository's checksums; the module writes SHA256SUMS, checked again here before each run), so
they are downloaded once and Maven is not run again while the set is there.

- The `kafka_topic` module on 1.1.1: the `kafka_topics` role creates the pipeline's four
  topics (CreateTopics) and changes nothing on a second run; a changed config goes through the
  legacy AlterConfigs (1.1 has no IncrementalAlterConfigs) and keeps the other overrides; more
  partitions go through CreatePartitions; --check reports and changes nothing.
- The producer's transactions on 1.1.1: an object's rows published exactly once with the
  progress record in the same transactions, read back read_committed.
- UnknownProducerId before KIP-360 (Kafka 2.5), provoked for real: the broker runs with a
  short `transactional.id.expiration.ms`, a producer stays idle longer than that, the broker
  restarts (it then drops the expired producers' state as it loads its snapshots), and the
  producer's next write is refused with UNKNOWN_PRODUCER_ID. kafka-python 3.0.12 makes that
  fatal for a transactional producer: the project's producer exits 1 with one ERROR line,
  and the restarted producer resumes after the last committed row: each row once, read_committed.
"""

from __future__ import annotations

import collections
import ctypes
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

pytestmark = pytest.mark.kafka_legacy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's ansible, also when pytest runs as .venv/bin/python -m pytest
KAFKA_VERSION = "1.1.1"
# Kafka's pom leaves out the log4j binding, so it is listed with log4j itself: 17 jars, 26 MB.
KAFKA_ARTIFACTS = [
    "org.apache.kafka:kafka_2.11:%s" % KAFKA_VERSION,
    "org.apache.kafka:kafka-clients:%s" % KAFKA_VERSION,
    "org.slf4j:slf4j-log4j12:1.7.25",
    "log4j:log4j:1.2.17",
]
# The artifact_cache role's place for a jar set (sandbox/roles/kafka names its set kafka-<version>).
JARS = ROOT / ".cache" / "maven" / ("kafka-%s" % KAFKA_VERSION)
ADDRESS = "127.0.0.31"
ZOOKEEPER_PORT = 2181
BROKER_PORT = 6667
BOOTSTRAP = "%s:%d" % (ADDRESS, BROKER_PORT)
# A producer idle longer than this loses its state on each partition when the broker reloads
# it (a restart); 7 days by default. Short here so that a test can wait it out.
PRODUCER_EXPIRATION_S = 5
PRODUCER_SCRIPT = Path(__file__).resolve().parent / "producer_on_moto.py"
BUCKET = "customers"
PREFIX = "incoming/"


# -- the broker ----------------------------------------------------------------------------

def die_with_parent() -> None:
    """In the JVM's child process: SIGKILL when the test process dies, so no broker outlives it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def answers(port: int) -> bool:
    try:
        with socket.create_connection((ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False


def verified_jars() -> Path:
    """The jar set of Kafka 1.1.1 in .cache, resolved by Maven once, checked against SHA256SUMS."""
    from ansible_collections.customer_streaming.pipeline.plugins.modules import maven_artifacts

    # A Maven repository of its own: `make test` runs these tests while the sandbox's build
    # resolves other jars, and two Maven processes may not write one local repository at once.
    maven_artifacts.ensure_artifacts(str(JARS), KAFKA_ARTIFACTS, local_repo=str(JARS.parent / "m2-kafka-1.1.1"))
    sums = (JARS / "SHA256SUMS").read_text().split("\n")
    listed = {}
    for line in filter(None, sums):
        digest, name = line.split(None, 1)
        listed[name.lstrip("*")] = digest
    jars = sorted(path.name for path in JARS.glob("*.jar"))
    assert sorted(listed) == jars, "SHA256SUMS of %s does not list exactly its jars" % JARS
    for name in jars:
        digest = hashlib.sha256((JARS / name).read_bytes()).hexdigest()
        assert digest == listed[name], "%s/%s does not match SHA256SUMS: delete %s to fetch it again" % (
            JARS, name, JARS)
    return JARS


class LegacyKafka:
    """ZooKeeper 3.4 and one Kafka 1.1.1 broker as Java processes; the broker can be restarted."""

    def __init__(self, jars: Path, workdir: Path) -> None:
        self.jars = jars
        self.workdir = workdir
        self.zookeeper: Optional[subprocess.Popen] = None
        self.broker: Optional[subprocess.Popen] = None
        self.broker_log = workdir / "broker.log"
        (workdir / "log4j.properties").write_text(
            "log4j.rootLogger=INFO, file\n"
            "log4j.appender.file=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.request.logger=WARN\n")
        (workdir / "zookeeper.properties").write_text(
            "dataDir=%s\nclientPort=%d\nclientPortAddress=%s\ntickTime=2000\nmaxClientCnxns=0\n"
            % (workdir / "zookeeper", ZOOKEEPER_PORT, ADDRESS))
        settings = {
            # broker.id left out: generation gives 1001 (a configured 1001 is refused, above
            # reserved.broker.max.id), kept in meta.properties across restarts.
            "listeners": "PLAINTEXT://%s" % BOOTSTRAP,
            "advertised.listeners": "PLAINTEXT://%s" % BOOTSTRAP,
            "zookeeper.connect": "%s:%d" % (ADDRESS, ZOOKEEPER_PORT),
            "zookeeper.connection.timeout.ms": 30000,
            "log.dirs": workdir / "kafka",
            "num.partitions": 1,
            "auto.create.topics.enable": "false",
            # One broker: the internal topics with one replica (a few partitions, to start fast).
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 3,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 3,
            "group.initial.rebalance.delay.ms": 0,
            "transactional.id.expiration.ms": PRODUCER_EXPIRATION_S * 1000,
            # The coordinator forgets expired transactional ids only at this interval (1 hour, the
            # default): the tests see the partitions' producer state expire, not the coordinator's.
            "transaction.remove.expired.transaction.cleanup.interval.ms": 3600000,
            "num.network.threads": 2,
            "num.io.threads": 2,
            "background.threads": 2,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        }
        (workdir / "server.properties").write_text("".join("%s=%s\n" % item for item in settings.items()))

    def java(self, heap: str, main: List[str], log: Path) -> subprocess.Popen:
        java = shutil.which("java")
        assert java is not None
        command = [java, heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                   "-Dlog4j.configuration=file:%s" % (self.workdir / "log4j.properties"),
                   "-cp", "%s/*" % self.jars] + main
        with open(log, "ab") as output:
            return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.workdir, preexec_fn=die_with_parent)

    def start(self) -> None:
        for port in (ZOOKEEPER_PORT, BROKER_PORT):
            if answers(port):
                pytest.fail("%s:%d is already in use: a ZooKeeper or broker of an earlier run? "
                            "(ss -ltnp 'sport = :%d' names its process)" % (ADDRESS, port, port))
        self.zookeeper = self.java("-Xmx64m", ["org.apache.zookeeper.server.ZooKeeperServerMain",
                                               str(self.workdir / "zookeeper.properties")],
                                   self.workdir / "zookeeper.log")
        self.wait_until(lambda: answers(ZOOKEEPER_PORT), self.zookeeper, self.workdir / "zookeeper.log",
                        "ZooKeeper to listen on %s:%d" % (ADDRESS, ZOOKEEPER_PORT))
        self.start_broker()

    def start_broker(self) -> None:
        offset = self.broker_log.stat().st_size if self.broker_log.exists() else 0
        self.broker = self.java("-Xmx320m", ["kafka.Kafka", str(self.workdir / "server.properties")],
                                self.broker_log)
        self.wait_until(lambda: "started (kafka.server.KafkaServer)" in self.log(offset), self.broker,
                        self.broker_log, "the Kafka 1.1.1 broker to start")
        self.wait_until(self.admin_answers, self.broker, self.broker_log, "the broker to answer at %s" % BOOTSTRAP)

    def stop_broker(self) -> None:
        """A clean shutdown (SIGTERM), which writes each partition's producer-state snapshot."""
        if self.broker is not None and self.broker.poll() is None:
            self.broker.terminate()
            try:
                self.broker.wait(60)
            except subprocess.TimeoutExpired:
                self.broker.kill()
                self.broker.wait()
        self.broker = None

    def restart_broker(self) -> None:
        self.stop_broker()
        self.start_broker()

    def stop(self) -> None:
        self.stop_broker()
        if self.zookeeper is not None and self.zookeeper.poll() is None:
            self.zookeeper.terminate()
            try:
                self.zookeeper.wait(30)
            except subprocess.TimeoutExpired:
                self.zookeeper.kill()
                self.zookeeper.wait()

    def log(self, offset: int = 0) -> str:
        with open(self.broker_log, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", "replace")

    @staticmethod
    def admin_answers() -> bool:
        from kafka.admin import KafkaAdminClient

        try:
            admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000,
                                     bootstrap_timeout_ms=5000)
        except Exception:  # noqa: BLE001 - not yet
            return False
        try:
            admin.list_topics()
            return True
        except Exception:  # noqa: BLE001 - not yet
            return False
        finally:
            admin.close()

    @staticmethod
    def wait_until(condition, process: subprocess.Popen, log: Path, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if process.poll() is not None:
                pytest.fail("waiting for %s: the process exited with %d:\n%s"
                            % (what, process.returncode, log.read_text(errors="replace")[-4000:]))
            if time.monotonic() > deadline:
                pytest.fail("waited %d s for %s:\n%s" % (timeout, what, log.read_text(errors="replace")[-4000:]))
            time.sleep(0.3)


@pytest.fixture(scope="session")
def kafka11(tmp_path_factory) -> Iterator[LegacyKafka]:
    if shutil.which("java") is None:
        pytest.skip("Java is not installed: the Kafka 1.1.1 broker of these tests needs a JRE "
                    "(make controller-deps installs openjdk-17-jre-headless)")
    cluster = LegacyKafka(verified_jars(), tmp_path_factory.mktemp("kafka-1.1.1"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def admin(kafka11):
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=30000)
    yield client
    client.close()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


# -- reading the broker back ---------------------------------------------------------------

def topic_partitions(admin, name: str) -> Dict[str, Any]:
    (topic,) = admin.describe_topics([name])
    assert topic["error_code"] == 0, topic
    return {"partitions": len(topic["partitions"]),
            "replicas": sorted({len(partition["replica_nodes"]) for partition in topic["partitions"]})}


def topic_configs(admin, name: str) -> Dict[str, Dict[str, Any]]:
    from kafka.admin import ConfigResource, ConfigResourceType

    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    return described["topic"][name]


def overrides(admin, name: str) -> Dict[str, str]:
    """The topic's own configs (DYNAMIC_TOPIC_CONFIG), the ones legacy AlterConfigs replaces whole."""
    return {key: entry["value"] for key, entry in topic_configs(admin, name).items()
            if entry.get("config_source") == "DYNAMIC_TOPIC_CONFIG"}


def read_topic(topic: str, isolation_level: str = "read_committed") -> List[Any]:
    """Every record of the topic up to its end (the last stable offset under read_committed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation_level, group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: List[Any] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(partition) < end[partition] for partition in partitions):
            assert time.monotonic() < deadline, "reading %s took over 120 s" % topic
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def high_watermark_total(topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, number) for number in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def progress_of(topic: str) -> Dict[str, Any]:
    """The producer's committed progress per object, read by the producer's own reader."""
    from customer_pipeline.producer import progress

    return progress.load({"bootstrap_servers": [BOOTSTRAP]}, topic, timeout_seconds=120)


def expected_record_ids(key: str, body: bytes) -> List[str]:
    """The record ids of an object's rows, from the reference reader (moto's ETag is the MD5)."""
    from customer_pipeline.contract.csv_reader import open_csv_object
    from customer_pipeline.contract.rules import record_id

    etag = '"%s"' % hashlib.md5(body).hexdigest()  # noqa: S324 - S3's ETag, not security
    return [record_id(uri(key), etag, record.source_row) for record in open_csv_object(io.BytesIO(body))]


def count_keys(records: List[Any]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for record in records:
        value = json.loads(record.value)
        assert record.key.decode() == value["record_id"]
        counts[value["record_id"]] += 1
    return counts


# -- the kafka_topic module on 1.1.1 -------------------------------------------------------

RESULT_LINE = re.compile(r"^localhost \| (?P<status>[A-Z]+)!? => ", re.MULTILINE)


def ansible_env() -> Dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_CALLBACK_RESULT_FORMAT="json")


def kafka_topic(args: Dict[str, Any], check: bool = False, expect_failure: bool = False) -> Dict[str, Any]:
    """`ansible localhost -m customer_streaming.pipeline.kafka_topic -a <json>`, as a user runs it."""
    args = dict({"bootstrap_servers": BOOTSTRAP}, **args)
    command = [str(BIN / "ansible"), "localhost", "-m", "customer_streaming.pipeline.kafka_topic",
               "-a", json.dumps(args)] + (["--check"] if check else [])
    result = subprocess.run(command, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=180)
    match = list(RESULT_LINE.finditer(result.stdout))
    assert match, "no result line:\n%s\n%s" % (result.stdout[-3000:], result.stderr[-3000:])
    parsed, _ = json.JSONDecoder().raw_decode(result.stdout[match[-1].end():])
    failed = result.returncode != 0 or match[-1].group("status") == "FAILED"
    assert failed == expect_failure, result.stdout[-3000:] + result.stderr[-3000:]
    return parsed


def play_recap(output: str) -> Dict[str, int]:
    recap = output[output.index("PLAY RECAP"):]
    line = next(line for line in recap.splitlines() if line.startswith("localhost"))
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


def test_kafka_topics_role_creates_the_pipelines_topics_then_changes_nothing(kafka11, admin, tmp_path):
    """deploy.yml's kafka_topics role, as an HDP one-broker inventory sets it, against 1.1.1."""
    (tmp_path / "topics.yml").write_text(
        "- name: The pipeline's topics on Kafka 1.1.1\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  roles:\n"
        "    - role: kafka_topics\n")
    command = [str(BIN / "ansible-playbook"), str(tmp_path / "topics.yml"),
               "-e", "cluster_kafka_bootstrap_servers=%s" % BOOTSTRAP,
               "-e", "kafka_topics_replication_factor=1", "-e", "kafka_topics_min_insync_replicas=1"]
    first = subprocess.run(command, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert play_recap(first.stdout)["changed"] == 1, first.stdout[-4000:]

    week = "604800000"
    for name in ("customers-raw", "customers-usa", "customers-alerts"):
        assert topic_partitions(admin, name) == {"partitions": 3, "replicas": [1]}
        assert overrides(admin, name) == {"retention.ms": week, "cleanup.policy": "delete",
                                          "min.insync.replicas": "1"}
    assert topic_partitions(admin, "customers-raw-progress") == {"partitions": 1, "replicas": [1]}
    assert overrides(admin, "customers-raw-progress") == {"cleanup.policy": "compact", "min.insync.replicas": "1"}

    second = subprocess.run(command, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-4000:]
    assert play_recap(second.stdout)["changed"] == 0, second.stdout[-4000:]


def test_a_changed_config_goes_through_legacy_alter_configs_and_keeps_other_overrides(admin, run_id):
    from kafka.admin import ConfigResource, ConfigResourceType

    name = "legacy-configs-%s" % run_id
    managed = {"retention.ms": 604800000, "cleanup.policy": "delete", "min.insync.replicas": 1}
    created = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1, "config": managed})
    assert created["changed"] is True
    # An override the module is not told about, set by another client. On 1.1 that client, too,
    # must send every override with it (legacy AlterConfigs replaces the whole set).
    others = {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "1",
              "segment.ms": "3600000"}
    assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, others)]) == {"topic": {name: "OK"}}

    changed = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1,
                           "config": dict(managed, **{"retention.ms": 86400000})})
    assert changed["changed"] is True
    assert changed["config_api"] == "legacy"  # 1.1 has no IncrementalAlterConfigs
    assert changed["changes"] == ["config retention.ms of %s: 604800000 -> 86400000" % name]
    assert overrides(admin, name) == {"retention.ms": "86400000", "cleanup.policy": "delete",
                                      "min.insync.replicas": "1", "segment.ms": "3600000"}

    again = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1,
                         "config": dict(managed, **{"retention.ms": "86400000"})})
    assert again["changed"] is False and again["changes"] == []


def test_more_partitions_go_through_create_partitions_and_fewer_are_refused(admin, run_id):
    name = "partitions-%s" % run_id
    kafka_topic({"name": name, "partitions": 3, "replication_factor": 1})
    raised = kafka_topic({"name": name, "partitions": 4, "replication_factor": 1})
    assert raised["changed"] is True
    assert raised["changes"] == ["partitions of %s: 3 -> 4" % name]
    assert topic_partitions(admin, name) == {"partitions": 4, "replicas": [1]}

    refused = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1}, expect_failure=True)
    assert refused["msg"] == ("topic %s has 4 partitions and Kafka cannot remove partitions: "
                              "refusing to lower them to 3" % name)
    assert topic_partitions(admin, name) == {"partitions": 4, "replicas": [1]}


def test_check_mode_reports_the_changes_and_makes_none(admin, run_id):
    missing = "check-missing-%s" % run_id
    would_create = kafka_topic({"name": missing, "partitions": 3, "replication_factor": 1}, check=True)
    assert would_create["changed"] is True
    assert would_create["changes"][0].startswith("create topic %s with 3 partitions" % missing)
    assert missing not in admin.list_topics()

    name = "check-%s" % run_id
    kafka_topic({"name": name, "partitions": 3, "replication_factor": 1,
                 "config": {"retention.ms": 604800000, "cleanup.policy": "delete"}})
    would_alter = kafka_topic({"name": name, "partitions": 5, "replication_factor": 1,
                               "config": {"retention.ms": 86400000, "cleanup.policy": "delete"}}, check=True)
    assert would_alter["changed"] is True
    assert would_alter["config_api"] == "legacy"
    assert would_alter["changes"] == ["partitions of %s: 3 -> 5" % name,
                                      "config retention.ms of %s: 604800000 -> 86400000" % name]
    assert topic_partitions(admin, name)["partitions"] == 3
    assert overrides(admin, name) == {"retention.ms": "604800000", "cleanup.policy": "delete"}


# -- the producer's transactions on 1.1.1 --------------------------------------------------

class ProducerProcess:
    """`python -m customer_pipeline.producer` (its main) with S3 from moto; its output kept line by line."""

    def __init__(self, objects: Path, settings: Path, *overrides: str) -> None:
        command = [sys.executable, str(PRODUCER_SCRIPT), str(objects), BUCKET, PREFIX, "--",
                   "--config", str(settings)]
        for override in overrides:
            command += ["--set", override]
        path = [str(ROOT / "src")] + [item for item in os.environ.get("PYTHONPATH", "").split(os.pathsep) if item]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, preexec_fn=die_with_parent)
        self.lines: List[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()

    @property
    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """The first line holding `text`; fails with the output when the process ends without it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next((line for line in self.lines if text in line), None)
                if found is not None:
                    return found
                if self.process.poll() is not None and not self.reader.is_alive():
                    pytest.fail("the producer exited with %s before logging %r:\n%s"
                                % (self.process.returncode, text, "\n".join(self.lines)[-4000:]))
                if time.monotonic() > deadline:
                    pytest.fail("no %r from the producer in %d s:\n%s" % (text, timeout, "\n".join(self.lines)[-4000:]))
                self.changed.wait(0.5)

    def exit_code(self, timeout: float = 180) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail("the producer did not exit in %d s:\n%s" % (timeout, self.output[-4000:]))
        self.reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def pipeline(admin, run_id, tmp_path):
    """A raw topic (3 partitions), a folder of S3 objects and the producer's settings for one test."""
    from kafka.admin import NewTopic

    raw, progress = "raw-%s" % run_id, "progress-%s" % run_id
    admin.create_topics([NewTopic(raw, num_partitions=3, replication_factor=1)])
    objects = tmp_path / "objects"
    objects.mkdir()
    settings = tmp_path / "producer.ini"
    settings.write_text("\n".join([
        "[s3]", "bucket = %s" % BUCKET, "prefix = %s" % PREFIX,
        "[kafka]", "bootstrap_servers = %s" % BOOTSTRAP, "topic = %s" % raw, "progress_topic = %s" % progress,
        "transactional_id = producer-%s" % run_id,
        "[producer]", "poll_interval_seconds = 1", "retry_attempts = 3",
    ]) + "\n")
    started: List[ProducerProcess] = []

    def producer(*overrides: str) -> ProducerProcess:
        started.append(ProducerProcess(objects, settings, *overrides))
        return started[-1]

    yield {"raw": raw, "progress": progress, "objects": objects, "producer": producer}
    for process in started:
        process.kill()


def put_object(objects: Path, key: str, body: bytes) -> None:
    """A new S3 object: the file appears whole (the producer's wrapper uploads new files)."""
    partial = objects / (".%s.partial" % key)
    partial.write_bytes(body)
    partial.rename(objects / key)


def sample_object(rows: int, seed: int) -> bytes:
    from customer_pipeline.contract.sample_data import generate_bytes

    return generate_bytes(rows, seed=seed)


def uri(key: str) -> str:
    return "s3://%s/%s%s" % (BUCKET, PREFIX, key)


def test_the_producer_publishes_an_object_once_in_transactions_with_its_progress(pipeline):
    body = sample_object(3000, seed=101)
    put_object(pipeline["objects"], "customers.csv", body)
    producer = pipeline["producer"]("producer.exit_when_idle=true", "producer.transaction_records=500")
    assert producer.exit_code() == 0, producer.output[-4000:]
    expected = expected_record_ids("customers.csv", body)
    assert "finished %s: %d records published" % (uri("customers.csv"), len(expected)) in producer.output

    counts = count_keys(read_topic(pipeline["raw"]))
    assert set(counts) == set(expected) and len(expected) == len(set(expected))
    assert set(counts.values()) == {1}
    # Nothing aborted; at least six transactions of up to 500 rows, each with a commit marker
    # on each of the three partitions (a marker takes an offset).
    assert len(read_topic(pipeline["raw"], "read_uncommitted")) == len(expected)
    assert high_watermark_total(pipeline["raw"]) - len(expected) >= 6 * 3

    (state,) = progress_of(pipeline["progress"]).items()
    assert state[0] == uri("customers.csv")
    assert (state[1].state, state[1].records, state[1].etag) == ("done", len(expected),
                                                                '"%s"' % hashlib.md5(body).hexdigest())


# -- UnknownProducerId before KIP-360 --------------------------------------------------------

def wait_out_producer_expiration(since: float) -> None:
    """Until every producer idle since `since` (monotonic) has outlived transactional.id.expiration.ms."""
    time.sleep(max(0.0, since + PRODUCER_EXPIRATION_S + 2 - time.monotonic()))


def test_unknown_producer_id_after_an_idle_spell_is_fatal_and_the_restarted_producer_resumes_exactly(
        kafka11, admin, pipeline, run_id):
    """HDP's case: no new object for longer than transactional.id.expiration.ms (7 days there), a
    broker restart, then a new object. The broker has forgotten the idle producer."""
    import kafka.errors as kafka_errors
    from kafka import KafkaProducer
    from kafka.admin import NewTopic

    first, second = sample_object(2000, seed=102), sample_object(3000, seed=103)
    put_object(pipeline["objects"], "a.csv", first)
    running = pipeline["producer"]("producer.transaction_records=500")
    running.wait_for("finished %s" % uri("a.csv"))

    # kafka-python's own transactional producer beside it, to show the error at the client.
    probe_topic = "probe-%s" % run_id
    admin.create_topics([NewTopic(probe_topic, num_partitions=1, replication_factor=1)])
    probe = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id="probe-%s" % run_id)
    try:
        probe.init_transactions()
        probe.begin_transaction()
        probe.send(probe_topic, key=b"before", value=b"1")
        probe.commit_transaction()
        idle_since = time.monotonic()

        wait_out_producer_expiration(idle_since)
        log_from = len(kafka11.log())
        kafka11.restart_broker()

        probe.begin_transaction()
        probe.send(probe_topic, key=b"after", value=b"2")
        with pytest.raises(kafka_errors.UnknownProducerIdError):
            probe.commit_transaction()
        # Fatal, not abortable: kafka-python cannot even abort the transaction (no KIP-360 bump before 2.5).
        with pytest.raises(kafka_errors.KafkaError, match="error state: .*UnknownProducerIdError"):
            probe.abort_transaction()
    finally:
        probe.close(timeout=5)
    assert "UnknownProducerIdException: Found no record of producerId=" in kafka11.log(log_from)

    # The pipeline's producer, idle since a.csv, gets a new object: it exits 1 with one line.
    put_object(pipeline["objects"], "b.csv", second)
    assert running.exit_code() == 1, running.output[-4000:]
    errors = [line for line in running.lines if line.startswith("ERROR")]
    assert len(errors) == 1, running.output[-4000:]
    # Whichever call meets the refusal first: a later send, or the commit.
    assert re.match(r"ERROR (publishing to|committing to) Kafka at %s failed: \[Error 59\] UnknownProducerIdError "
                    r"\(the brokers no longer know this producer" % re.escape(BOOTSTRAP), errors[0]), errors[0]
    assert errors[0].endswith("exiting, the restarted producer resumes after the last committed row")
    assert "Traceback" not in running.output

    # systemd restarts it: it fences the old one (aborting its open transaction) and goes on.
    restarted = pipeline["producer"]("producer.exit_when_idle=true", "producer.transaction_records=500")
    assert restarted.exit_code() == 0, restarted.output[-4000:]
    assert "progress: 1 object(s) known, 1 finished" in restarted.output
    assert "ingesting %s" % uri("a.csv") not in restarted.output
    assert "finished %s: 3000 records published" % uri("b.csv") in restarted.output

    expected = expected_record_ids("a.csv", first) + expected_record_ids("b.csv", second)
    counts = count_keys(read_topic(pipeline["raw"]))
    assert set(counts) == set(expected) and len(expected) == len(set(expected))
    assert set(counts.values()) == {1}, collections.Counter(counts.values())
    progress = progress_of(pipeline["progress"])
    assert {key: (item.state, item.records) for key, item in progress.items()} == {
        uri("a.csv"): ("done", 2000), uri("b.csv"): ("done", 3000)}


def test_unknown_producer_id_mid_object_is_fatal_and_the_restarted_producer_resumes_after_the_committed_row(
        kafka11, pipeline):
    """The same refusal in the middle of an object: the progress topic's partition is written once
    per transaction, so it idles longer than the expiration while a long transaction fills the
    raw topic (whose open transaction keeps its producer state). The broker restarts in between:
    the commit is refused, and the rows of that transaction, already in the log, are aborted."""
    body = sample_object(4000, seed=104)
    put_object(pipeline["objects"], "c.csv", body)
    # 2,000 rows a transaction at 125 rows/s: each transaction takes 16 s, well over the
    # expiration (5 s) plus the moment the broker stops serving requests (under a second).
    settings = ("producer.exit_when_idle=true", "producer.rate_limit=125", "producer.transaction_records=2000",
                "producer.transaction_seconds=3600", "producer.progress_every_records=2000")
    running = pipeline["producer"](*settings)
    running.wait_for("published 2000 records in all")
    deadline = time.monotonic() + 60
    while progress_of(pipeline["progress"]).get(uri("c.csv")) is None:
        assert time.monotonic() < deadline, running.output[-4000:]
        time.sleep(0.2)
    committed_at = time.monotonic()
    assert progress_of(pipeline["progress"])[uri("c.csv")].last_row == 2000

    wait_out_producer_expiration(committed_at)
    kafka11.restart_broker()
    assert running.exit_code() == 1, running.output[-4000:]
    errors = [line for line in running.lines if line.startswith("ERROR")]
    assert len(errors) == 1, running.output[-4000:]
    # The refusal depends on how long the restart takes: a broker back within the transaction's
    # timeout has forgotten the producer (UnknownProducerId); one that took longer (a slow CI day)
    # has its coordinator abort the transaction on its timeout first, bumping the epoch, so the
    # producer is fenced. Either way it exits 1 with one line and the restart resumes (below).
    assert re.match(r"ERROR (publishing to|committing to) Kafka at %s failed: \[Error (59\] UnknownProducerIdError"
                    r"|90\] ProducerFencedError) " % re.escape(BOOTSTRAP), errors[0]), errors[0]
    assert errors[0].endswith("exiting, the restarted producer resumes after the last committed row"), errors[0]
    assert "Traceback" not in running.output

    restarted = pipeline["producer"](*settings)
    assert restarted.exit_code() == 0, restarted.output[-4000:]
    assert "resuming %s after row 2000 (2000 records already published)" % uri("c.csv") in restarted.output
    assert "finished %s: 4000 records published, last row 4000" % uri("c.csv") in restarted.output

    expected = expected_record_ids("c.csv", body)
    counts = count_keys(read_topic(pipeline["raw"]))
    assert set(counts) == set(expected) and len(expected) == len(set(expected)) == 4000
    assert set(counts.values()) == {1}, collections.Counter(counts.values())
    # The refused transaction's rows are in the log, aborted: read_uncommitted sees them twice.
    everything = count_keys(read_topic(pipeline["raw"], "read_uncommitted"))
    assert sum(everything.values()) > len(expected)
    assert progress_of(pipeline["progress"])[uri("c.csv")].state == "done"
