"""What the unit tests that run the real `Producer.run` over a fake S3 and a fake Kafka share:
its settings, a handler that keeps its log records, and the fake transactional Kafka."""

from __future__ import annotations

import collections
import logging
from typing import Callable, Dict, List, Optional, Tuple

from customer_pipeline.producer import config as producer_config
from customer_pipeline.producer.config import ProducerSettings


class Collect(logging.Handler):
    """Keeps every record of INFO and above."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def fake_run_settings(bucket: str, prefix: str, raw_topic: str, progress_topic: str) -> ProducerSettings:
    """A producer that ingests s3://bucket/prefix once and exits (exit_when_idle), one attempt
    per call; every setting that shapes records keeps its default (max_record_bytes above all)."""
    return producer_config.load(None, [
        f"s3.bucket={bucket}", f"s3.prefix={prefix}", "kafka.bootstrap_servers=k:9092",
        f"kafka.topic={raw_topic}", f"kafka.progress_topic={progress_topic}",
        "producer.exit_when_idle=true", "producer.retry_attempts=1",
    ])


class FakeKafka:
    """A transactional producer whose committed records are kept per topic, with how long each
    transaction stayed open on `clock` (a test's model of time; none: 0)."""

    def __init__(self, clock: Optional[Callable[[], float]] = None) -> None:
        self.clock = clock or (lambda: 0.0)
        self.committed: Dict[str, List[Tuple[bytes, bytes]]] = collections.defaultdict(list)
        self.open: Optional[List[Tuple[str, bytes, bytes]]] = None
        self.began_at = 0.0
        self.open_seconds: List[float] = []

    def begin_transaction(self) -> None:
        assert self.open is None
        self.open, self.began_at = [], self.clock()

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        assert self.open is not None, "send outside a transaction"
        self.open.append((topic, key, value))

    def commit_transaction(self) -> None:
        assert self.open is not None
        for topic, key, value in self.open:
            self.committed[topic].append((key, value))
        self.open = None
        self.open_seconds.append(self.clock() - self.began_at)

    def abort_transaction(self) -> None:
        raise AssertionError("nothing in these tests should make the producer abort")
