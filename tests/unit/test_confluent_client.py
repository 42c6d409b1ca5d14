"""The confluent-kafka adapter: the calls the service makes, over a stand-in for librdkafka's Producer.

The stand-in records what the adapter asks of confluent_kafka.Producer (produce, poll, the
transactional calls) and fails the way librdkafka does: BufferError from produce when its
queue is full, a delivery report with an error, KafkaException from a transactional call.
The real client against a real broker runs in tests/integration (test_producer_clients.py).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import pytest
from confluent_kafka import KafkaError, KafkaException

from customer_pipeline.producer.confluent_client import (
    ConfluentKafkaError,
    ConfluentTransactionalProducer,
    client_config,
)
from customer_pipeline.producer.service import kafka_failure


class FakeLibrdkafka:
    def __init__(self, queue_room: int = 10**9) -> None:
        self.calls: List[Tuple[Any, ...]] = []
        self.queue_room = queue_room
        self.pending: List[Any] = []
        self.fail_delivery: Optional[KafkaError] = None
        self.fail_call: Optional[str] = None

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        if self.queue_room == 0:
            raise BufferError("Local: Queue full")
        self.queue_room -= 1
        self.calls.append(("produce", topic, key, value))
        self.pending.append(on_delivery)

    def poll(self, timeout: float) -> int:
        self.calls.append(("poll", timeout))
        served = len(self.pending)
        for report in self.pending:
            report(self.fail_delivery, None)
        self.pending.clear()
        self.queue_room += served
        return served

    def _transactional(self, name: str, *args: Any) -> None:
        self.calls.append((name,) + args)
        if self.fail_call == name:
            raise KafkaException(KafkaError(KafkaError.UNKNOWN_PRODUCER_ID, "no record of the producer"))
        if name == "commit_transaction":
            self.poll(0)

    def init_transactions(self, timeout: float) -> None:
        self._transactional("init_transactions", timeout)

    def begin_transaction(self) -> None:
        self._transactional("begin_transaction")

    def commit_transaction(self, timeout: float) -> None:
        self._transactional("commit_transaction", timeout)

    def abort_transaction(self, timeout: float) -> None:
        self._transactional("abort_transaction", timeout)

    def flush(self, timeout: float) -> int:
        self.calls.append(("flush", timeout))
        return 0


def names(fake: FakeLibrdkafka) -> List[str]:
    return [call[0] for call in fake.calls if call[0] != "poll"]


def test_a_transaction_produces_each_row_and_commits():
    fake = FakeLibrdkafka()
    producer = ConfluentTransactionalProducer({}, producer=fake)
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("customers-raw", key=b"k1", value=b"v1")
    producer.send("customers-raw-progress", key=b"s3://b/o", value=b"{}")
    producer.commit_transaction()
    producer.close()
    assert names(fake) == ["init_transactions", "begin_transaction", "produce", "produce", "commit_transaction",
                           "flush"]
    assert [call[1:] for call in fake.calls if call[0] == "produce"] == [
        ("customers-raw", b"k1", b"v1"), ("customers-raw-progress", b"s3://b/o", b"{}")]


def test_a_full_queue_is_served_until_the_row_fits():
    fake = FakeLibrdkafka(queue_room=0)
    producer = ConfluentTransactionalProducer({}, producer=fake)
    fake.pending.append(lambda error, message: None)  # one report outstanding: serving it frees room
    producer.send("customers-raw", key=b"k", value=b"v")
    assert ("produce", "customers-raw", b"k", b"v") in fake.calls
    assert fake.calls[0] == ("poll", 0.05)


def test_a_failed_delivery_fails_the_commit_so_the_progress_never_commits_without_its_rows():
    fake = FakeLibrdkafka()
    producer = ConfluentTransactionalProducer({}, producer=fake)
    producer.begin_transaction()
    fake.fail_delivery = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    with pytest.raises(ConfluentKafkaError, match="MSG_SIZE_TOO_LARGE"):
        producer.send("customers-raw", key=b"k", value=b"v")


def test_a_broker_error_is_named_as_kafka_python_names_it_and_gets_the_same_hint():
    fake = FakeLibrdkafka()
    fake.fail_call = "commit_transaction"
    producer = ConfluentTransactionalProducer({}, producer=fake)
    producer.begin_transaction()
    with pytest.raises(ConfluentKafkaError) as raised:
        producer.commit_transaction()
    line = kafka_failure("committing to", raised.value, "broker:6667")
    assert line.startswith("committing to Kafka at broker:6667 failed: [UNKNOWN_PRODUCER_ID] UnknownProducerIdError")
    assert "idle longer than their transactional.id.expiration.ms" in line
    assert line.endswith("the restarted producer resumes after the last committed row")


def test_the_configuration_follows_the_connection_settings():
    options = {"bootstrap_servers": ["a:9092", "b:9092"], "security_protocol": "SASL_SSL",
               "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "producer",
               "sasl_plain_password": "secret", "ssl_cafile": "/etc/ca.pem"}
    config = client_config(options, "customer-producer-0-of-2")
    assert config["bootstrap.servers"] == "a:9092,b:9092"
    assert config["transactional.id"] == "customer-producer-0-of-2"
    assert (config["security.protocol"], config["sasl.mechanism"], config["sasl.username"],
            config["sasl.password"], config["ssl.ca.location"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "producer", "secret", "/etc/ca.pem")
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    # librdkafka accepts every key (an unknown one would fail Producer()).
    from confluent_kafka import Producer

    Producer(dict(config, **{"security.protocol": "PLAINTEXT"}, **{"sasl.mechanism": "PLAIN"}))
