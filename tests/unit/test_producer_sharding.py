"""Producers that scale out: the owner of an object, the shard settings, and resharding.

The service runs its real code (`Producer.run`) against two fakes: an S3 client serving
CSV objects from memory, and a Kafka broker that models transactions. What a producer
sends inside a transaction becomes visible only when it commits; an aborted transaction,
or one left open by a producer killed with -9 (which the broker aborts after the
transaction timeout), leaves nothing. A producer starting reads the committed progress
back, as `progress.load` does from the compacted topic.
"""

from __future__ import annotations

import collections
import hashlib
import io
import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from customer_pipeline.contract.messages import decode_raw_message
from customer_pipeline.producer import config as producer_config
from customer_pipeline.producer import sharding
from customer_pipeline.producer.config import ProducerSettings
from customer_pipeline.producer.progress import DONE, READING, ObjectProgress
from customer_pipeline.producer.service import Producer
from customer_pipeline.settings import SettingsError

BUCKET = "customers"
PREFIX = "incoming/"
RAW_TOPIC = "customers-raw"
PROGRESS_TOPIC = "customers-raw-progress"
HEADER = "customer_id,first_name,last_name,email,country,signup_date,state,zip_code"
ROWS_PER_OBJECT = 7


# -- the owner of an object ---------------------------------------------------------------------
def test_owner_is_sha256_of_the_key_modulo_the_count():
    key = "incoming/customers-2024-01.csv"
    expected = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    for count in (1, 2, 3, 7):
        assert sharding.owner(key, count) == expected % count
    assert sharding.owner(key, 1) == 0


def test_owner_is_the_same_in_every_process():
    """Python's hash() of a str changes with PYTHONHASHSEED; the owner must not."""
    keys = [f"incoming/part-{number:03d}.csv" for number in range(20)]
    here = [sharding.owner(key, 3) for key in keys]
    program = ("import sys; from customer_pipeline.producer.sharding import owner; "
               "print(','.join(str(owner(key, 3)) for key in sys.argv[1:]))")
    source_root = str(Path(sharding.__file__).resolve().parents[2])
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", program, *keys], capture_output=True, text=True,
                                check=True, env={"PYTHONHASHSEED": seed, "PYTHONPATH": source_root})
        assert [int(shard) for shard in result.stdout.strip().split(",")] == here


def test_owner_spreads_keys_evenly():
    counts = collections.Counter(sharding.owner(f"incoming/2024/day-{number:05d}.csv", 4)
                                 for number in range(10_000))
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(2_300 <= counts[shard] <= 2_700 for shard in range(4)), counts


def test_every_key_has_exactly_one_owner():
    keys = [f"k{number}.csv" for number in range(200)]
    for count in (1, 2, 5):
        owned = [sharding.select(keys, str, index, count)[0] for index in range(count)]
        assert sorted(key for shard in owned for key in shard) == sorted(keys)
        assert sharding.select(keys, str, 0, count)[1] == 200


def test_owner_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="at least 1, not 0"):
        sharding.owner("a.csv", 0)


def test_transactional_id_keeps_the_plain_id_for_one_producer():
    assert sharding.transactional_id("customer-producer", 0, 1) == "customer-producer"
    assert sharding.transactional_id("customer-producer", 0, 2) == "customer-producer-0-of-2"
    assert sharding.transactional_id("customer-producer", 2, 3) == "customer-producer-2-of-3"


# -- settings -----------------------------------------------------------------------------------
BASE = ["s3.bucket=customers", "kafka.bootstrap_servers=k:9092"]


def test_shard_settings_default_to_one_producer():
    settings = producer_config.load(None, BASE)
    assert (settings.shard_index, settings.shard_count) == (0, 1)
    assert settings.transactional_id == "customer-producer"


def test_shard_settings_name_the_transactional_id():
    settings = producer_config.load(None, BASE + ["producer.shard_index=2", "producer.shard_count=3",
                                                  "kafka.transactional_id=ingest"])
    assert (settings.shard_index, settings.shard_count) == (2, 3)
    assert settings.kafka.transactional_id == "ingest"
    assert settings.transactional_id == "ingest-2-of-3"


@pytest.mark.parametrize("overrides, message", [
    (["producer.shard_index=3", "producer.shard_count=3"],
     "setting producer.shard_index in (no settings file) must be less than producer.shard_count (3), not 3"),
    (["producer.shard_index=1"],
     "setting producer.shard_index in (no settings file) must be less than producer.shard_count (1), not 1"),
    (["producer.shard_index=-1", "producer.shard_count=2"],
     "setting producer.shard_index in (no settings file) must be at least 0, not -1"),
    (["producer.shard_count=0"], "setting producer.shard_count in (no settings file) must be at least 1, not 0"),
    (["producer.shard_count=two"],
     "setting producer.shard_count in (no settings file) must be a whole number, not 'two'"),
])
def test_a_wrong_shard_setting_is_named(overrides, message):
    with pytest.raises(SettingsError) as error:
        producer_config.load(None, BASE + overrides)
    assert str(error.value) == message


# -- fakes --------------------------------------------------------------------------------------
class FakeS3:
    """The calls of s3_source on an in-memory bucket: a listing page, and objects by key and ETag."""

    def __init__(self, objects: Dict[str, bytes]) -> None:
        self.objects = objects
        self.opened: List[str] = []

    @staticmethod
    def etag(data: bytes) -> str:
        return '"%s"' % hashlib.md5(data).hexdigest()  # noqa: S324 - what S3 reports, not security

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[Dict[str, Any]]:  # noqa: N803 - boto3's names
        assert Bucket == BUCKET
        yield {"Contents": [{"Key": key, "ETag": self.etag(data), "Size": len(data)}
                            for key, data in self.objects.items() if key.startswith(Prefix)]}

    def get_object(self, Bucket: str, Key: str, IfMatch: str) -> Dict[str, Any]:  # noqa: N803
        assert IfMatch == self.etag(self.objects[Key])
        self.opened.append(Key)
        return {"Body": io.BytesIO(self.objects[Key])}


class Killed(BaseException):
    """kill -9: the producer dies where it stands; no handler of the service runs."""


class FakeBroker:
    """Committed records per topic; what an open transaction sent is only in the producer's hands."""

    def __init__(self) -> None:
        self.committed: Dict[str, List[Tuple[bytes, bytes]]] = collections.defaultdict(list)
        self.aborted_records = 0
        self.transactional_ids: List[str] = []

    def progress(self) -> Dict[str, ObjectProgress]:
        """What `progress.load` reads: the latest committed progress record per object URI."""
        return {key.decode("utf-8"): ObjectProgress.decode(value) for key, value in self.committed[PROGRESS_TOPIC]}

    def published(self) -> List[Tuple[str, int]]:
        """(source_uri, source_row) of every committed message of customers-raw."""
        messages = [decode_raw_message(value) for _key, value in self.committed[RAW_TOPIC]]
        return [(message.source_uri, message.source_row) for message in messages]


class FakeKafka:
    """A transactional producer of the broker; it may be stopped (SIGTERM) or killed after N rows."""

    def __init__(self, broker: FakeBroker, transactional_id: str, stop: threading.Event,
                 stop_after_rows: Optional[int] = None, kill_after_rows: Optional[int] = None) -> None:
        broker.transactional_ids.append(transactional_id)
        self.broker = broker
        self.stop = stop
        self.stop_after_rows = stop_after_rows
        self.kill_after_rows = kill_after_rows
        self.rows = 0
        self.open: Optional[List[Tuple[str, bytes, bytes]]] = None

    def begin_transaction(self) -> None:
        assert self.open is None, "a transaction is already open"
        self.open = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        assert self.open is not None, "send outside a transaction"
        if topic == RAW_TOPIC:
            if self.kill_after_rows is not None and self.rows == self.kill_after_rows:
                self.die()
            self.rows += 1
            if self.rows == self.stop_after_rows:
                self.stop.set()  # SIGTERM: the service commits what it sent, then exits
        self.open.append((topic, key, value))

    def commit_transaction(self) -> None:
        assert self.open is not None
        for topic, key, value in self.open:
            self.broker.committed[topic].append((key, value))
        self.open = None

    def abort_transaction(self) -> None:
        assert self.open is not None
        self.broker.aborted_records += len(self.open)
        self.open = None

    def die(self) -> None:
        # The broker aborts the open transaction after the transaction timeout.
        self.broker.aborted_records += len(self.open or [])
        self.open = None
        raise Killed()


def csv_object(number: int, rows: int = ROWS_PER_OBJECT) -> bytes:
    lines = [HEADER] + [f"{number * 100 + row},Ann,Lee,ann{number}.{row}@example.com,USA,2024-01-0{1 + row % 9},"
                        f"NY,1000{row % 10}" for row in range(1, rows + 1)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def settings_for(index: int, count: int, **extra: str) -> ProducerSettings:
    overrides = {
        "s3.bucket": BUCKET, "s3.prefix": PREFIX, "kafka.bootstrap_servers": "k:9092",
        "kafka.topic": RAW_TOPIC, "kafka.progress_topic": PROGRESS_TOPIC,
        "producer.shard_index": str(index), "producer.shard_count": str(count),
        "producer.transaction_records": "3", "producer.transaction_seconds": "3600",
        "producer.exit_when_idle": "true", "producer.retry_attempts": "1",
        **extra,
    }
    return producer_config.load(None, [f"{key}={value}" for key, value in overrides.items()])


def run_producer(broker: FakeBroker, s3: FakeS3, index: int, count: int, stop_after_rows: Optional[int] = None,
                 kill_after_rows: Optional[int] = None, state: Optional[Dict[str, ObjectProgress]] = None) -> str:
    """Start one producer as main() does (its own transactional id, the committed progress) and run it.

    `state` replaces the progress read at start (a producer that started earlier). Returns how
    it ended: "idle" (every object it owns is ingested), "stopped" or "killed".
    """
    settings = settings_for(index, count)
    stop = threading.Event()
    kafka = FakeKafka(broker, settings.transactional_id, stop, stop_after_rows, kill_after_rows)
    producer = Producer(settings, s3, kafka, broker.progress() if state is None else dict(state), stop)
    try:
        assert producer.run() == 0
    except Killed:
        return "killed"
    finally:
        if kafka.open is not None:  # main() aborts what a stopped producer left open
            producer.abort()
    return "stopped" if stop.is_set() else "idle"


def keys_owned(keys: Sequence[str], index: int, count: int) -> List[str]:
    return [key for key in keys if sharding.owns(key, index, count)]


# -- the service --------------------------------------------------------------------------------
def test_the_service_ingests_only_the_objects_it_owns(caplog):
    objects = {f"{PREFIX}part-{number:02d}.csv": csv_object(number) for number in range(10)}
    objects["other/part-99.csv"] = csv_object(99)
    s3 = FakeS3(objects)
    broker = FakeBroker()
    mine = keys_owned(sorted(key for key in objects if key.startswith(PREFIX)), 1, 3)
    assert 0 < len(mine) < 10

    with caplog.at_level(logging.INFO, logger="customer_pipeline.producer"):
        assert run_producer(broker, s3, index=1, count=3) == "idle"

    assert s3.opened == mine
    assert broker.transactional_ids == ["customer-producer-1-of-3"]
    expected = [(f"s3://{BUCKET}/{key}", row) for key in mine for row in range(1, ROWS_PER_OBJECT + 1)]
    assert broker.published() == expected
    assert sorted(broker.progress()) == [f"s3://{BUCKET}/{key}" for key in mine]
    assert {item.state for item in broker.progress().values()} == {DONE}
    owned_lines = [record.getMessage() for record in caplog.records if " owns " in record.getMessage()]
    assert owned_lines == [f"shard 1 of 3 owns {len(mine)} of the 10 object(s) under s3://{BUCKET}/{PREFIX}"]


def test_together_the_shards_ingest_every_object_once():
    objects = {f"{PREFIX}part-{number:02d}.csv": csv_object(number) for number in range(12)}
    s3 = FakeS3(objects)
    broker = FakeBroker()
    for index in range(3):
        assert run_producer(broker, s3, index=index, count=3) == "idle"
    assert sorted(s3.opened) == sorted(objects)
    assert len(broker.published()) == 12 * ROWS_PER_OBJECT
    assert set(broker.published()) == {(f"s3://{BUCKET}/{key}", row)
                                       for key in objects for row in range(1, ROWS_PER_OBJECT + 1)}


# -- resharding: 1 -> 2 -> 1 producers, stopped and killed in the middle of objects -------------------
def reading(broker: FakeBroker) -> Dict[str, ObjectProgress]:
    return {uri: item for uri, item in broker.progress().items() if item.state == READING}


def test_resharding_one_two_one_publishes_every_row_exactly_once():
    keys = [f"{PREFIX}day-{number:02d}.csv" for number in range(12)]
    s3 = FakeS3({key: csv_object(number) for number, key in enumerate(keys)})
    broker = FakeBroker()
    every_row = {(f"s3://{BUCKET}/{key}", row) for key in keys for row in range(1, ROWS_PER_OBJECT + 1)}

    # One producer: stopped (SIGTERM) in its third object, after its 17th row; it commits row 17.
    assert run_producer(broker, s3, index=0, count=1, stop_after_rows=2 * ROWS_PER_OBJECT + 3) == "stopped"
    (half_read,) = reading(broker)
    assert reading(broker)[half_read].last_row == 3
    assert len(broker.published()) == 17

    # Two producers, started once the first has stopped. sha256 gives the half-read object
    # day-02 to shard 0 of 2: another transactional id, which resumes it after row 3. Shard 0
    # then finishes day-07 and is killed with -9 in day-09, two rows into an open transaction
    # (its rows 4 and 5); shard 1 finishes day-03 and is stopped with SIGTERM after row 2 of day-04.
    assert half_read == f"s3://{BUCKET}/{PREFIX}day-02.csv"
    assert keys_owned(keys, 0, 2) == [f"{PREFIX}day-{number:02d}.csv" for number in (0, 1, 2, 7, 9, 11)]
    assert run_producer(broker, s3, index=0, count=2, kill_after_rows=4 + ROWS_PER_OBJECT + 5) == "killed"
    assert run_producer(broker, s3, index=1, count=2, stop_after_rows=ROWS_PER_OBJECT + 2) == "stopped"
    assert broker.transactional_ids == ["customer-producer", "customer-producer-0-of-2", "customer-producer-1-of-2"]
    assert broker.progress()[half_read].state == DONE
    assert broker.aborted_records == 2  # rows 4 and 5 of day-09: never published
    assert {uri: item.last_row for uri, item in reading(broker).items()} == {
        f"s3://{BUCKET}/{PREFIX}day-09.csv": 3, f"s3://{BUCKET}/{PREFIX}day-04.csv": 2}
    assert len(broker.published()) == 17 + (4 + ROWS_PER_OBJECT + 3) + (ROWS_PER_OBJECT + 2)

    # One producer again, once both of two have stopped: it owns every object and resumes
    # each half-read one at the row its owner of two committed last.
    assert run_producer(broker, s3, index=0, count=1) == "idle"
    published = broker.published()
    assert len(published) == 12 * ROWS_PER_OBJECT
    assert collections.Counter(published).most_common(1)[0][1] == 1
    assert set(published) == every_row
    assert {item.state for item in broker.progress().values()} == {DONE}
    assert {item.records for item in broker.progress().values()} == {ROWS_PER_OBJECT}


def test_an_old_producer_still_running_would_publish_twice():
    """Why the role stops every producer of the old assignment first: ids of two assignments do not fence."""
    keys = [f"{PREFIX}day-{number:02d}.csv" for number in range(4)]
    s3 = FakeS3({key: csv_object(number) for number, key in enumerate(keys)})
    broker = FakeBroker()
    assert run_producer(broker, s3, index=0, count=1, stop_after_rows=3) == "stopped"
    (half_read,) = reading(broker)
    owner = sharding.owner(half_read[len(f"s3://{BUCKET}/"):], 2)
    # Both read the same committed progress: the old producer "still running" and its new owner.
    started_with = broker.progress()
    for index, count in ((0, 1), (owner, 2)):
        assert run_producer(broker, s3, index, count, state=started_with) == "idle"
    assert collections.Counter(broker.published())[(half_read, 4)] == 2
