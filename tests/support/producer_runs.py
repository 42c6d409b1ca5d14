"""What the unit tests that run the real `Producer.run` over a fake S3 and a fake Kafka share:
its settings and a handler that keeps its log records."""

from __future__ import annotations

import logging
from typing import List

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
