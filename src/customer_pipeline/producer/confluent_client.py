"""The transactional producer on confluent-kafka (librdkafka), with kafka-python's methods.

The service drives a producer through five calls: init_transactions, begin_transaction,
send(topic, key=, value=), commit_transaction, abort_transaction (and close). kafka-python's
KafkaProducer has them; this class gives confluent-kafka's Producer the same ones, so the
exactly-once design (rows and the object's progress record in one transaction, the
transactional id per shard) is the same code for both clients.

librdkafka is the fast one (about five times kafka-python's rate on the sandbox's broker, see
docs/benchmarks.md): it batches and compresses in C threads, while the Python side only hands
it bytes. Its wheel is manylinux_2_28 (glibc 2.28 and newer), so CentOS 7 nodes keep
kafka-python. confluent-kafka is imported only when this client is chosen.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from customer_pipeline.producer.config import DEFAULT_BATCH_SIZE, DEFAULT_COMPRESSION, DEFAULT_LINGER_MS

# librdkafka's settings for the production design: idempotent, acks from every in-sync
# replica; compression, batch size and linger come from the [kafka] settings.
PRODUCER_DEFAULTS: Dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "message.max.bytes": 2 * 1024 * 1024,
}
# Seconds a transactional call may wait for the coordinator before it raises.
CALL_TIMEOUT = 60.0


class ConfluentKafkaError(Exception):
    """A librdkafka error, named as kafka-python names the same broker error where it has one
    (so the service's hints about UnknownProducerId and fencing apply to both clients)."""

    NAMES = {
        "UNKNOWN_PRODUCER_ID": "UnknownProducerIdError",
        "INVALID_PRODUCER_EPOCH": "InvalidProducerEpochError",
        "PRODUCER_FENCED": "ProducerFencedError",
        "_FENCED": "ProducerFencedError",
    }

    def __init__(self, error: Any) -> None:
        name = error.name() if hasattr(error, "name") else str(error)
        text = error.str() if hasattr(error, "str") else str(error)
        super().__init__(f"[{name}] {self.NAMES.get(name, name)}: {text}")
        self.name = name


def client_config(
    options: Dict[str, Any],
    transactional_id: str,
    compression: str = DEFAULT_COMPRESSION["confluent-kafka"],
    batch_size: int = DEFAULT_BATCH_SIZE,
    linger_ms: int = DEFAULT_LINGER_MS,
) -> Dict[str, Any]:
    """librdkafka's configuration from the kafka-python options of KafkaSettings.client_options
    and the [kafka] batching settings."""
    config: Dict[str, Any] = dict(PRODUCER_DEFAULTS)
    config.update({"compression.type": compression, "batch.size": batch_size, "linger.ms": linger_ms})
    config["bootstrap.servers"] = ",".join(options["bootstrap_servers"])
    config["security.protocol"] = options.get("security_protocol", "PLAINTEXT")
    config["transactional.id"] = transactional_id
    if options.get("sasl_mechanism"):
        config["sasl.mechanism"] = options["sasl_mechanism"]
        config["sasl.username"] = options.get("sasl_plain_username") or ""
        config["sasl.password"] = options.get("sasl_plain_password") or ""
    if options.get("ssl_cafile"):
        config["ssl.ca.location"] = options["ssl_cafile"]
    return config


class ConfluentTransactionalProducer:
    """confluent_kafka.Producer behind the calls the service makes on kafka-python's producer."""

    def __init__(self, config: Dict[str, Any], producer: Optional[Any] = None) -> None:
        if producer is None:
            from confluent_kafka import Producer

            producer = Producer(config)
        self._producer = producer
        # The first delivery failure of the open transaction: raised by the next send or by
        # the commit, so a row that did not make it never commits with its object's progress.
        self._failed: Optional[ConfluentKafkaError] = None

    def _call(self, method: str, *args: Any) -> Any:
        from confluent_kafka import KafkaException

        try:
            return getattr(self._producer, method)(*args)
        except KafkaException as error:
            raise ConfluentKafkaError(error.args[0]) from None

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None and self._failed is None:
            self._failed = ConfluentKafkaError(error)

    def _raise_failure(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def init_transactions(self) -> None:
        self._call("init_transactions", CALL_TIMEOUT)

    def begin_transaction(self) -> None:
        self._failed = None
        self._call("begin_transaction")

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._delivered)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self._producer.poll(0)
        self._raise_failure()

    def commit_transaction(self) -> None:
        # commit_transaction flushes first; delivery reports are served during it.
        self._call("commit_transaction", CALL_TIMEOUT)
        self._raise_failure()

    def abort_transaction(self) -> None:
        self._failed = None
        self._call("abort_transaction", CALL_TIMEOUT)

    def close(self, timeout: float = 10) -> None:
        self._producer.flush(timeout)
