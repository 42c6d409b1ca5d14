"""The producer's settings, read once from its INI file into a typed object.

Secrets are never in the file: S3 credentials come from the environment (or the
instance profile) as boto3 reads them, and the Kafka SASL password from the environment
variable that `kafka.sasl_password_env` names. The service's EnvironmentFile (mode 0600)
sets both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from customer_pipeline.producer import sharding
from customer_pipeline.settings import Settings


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str
    endpoint_url: Optional[str]
    region: str
    addressing_style: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


# Codecs both clients carry without extra packages (kafka-python needs python-lz4, zstandard
# or python-snappy for the others, which the wheelhouse does not hold; librdkafka has them all).
COMPRESSIONS = {"kafka-python": ["none", "gzip"], "confluent-kafka": ["none", "gzip", "lz4", "zstd", "snappy"]}
# Chosen by measurement (bench/producer_throughput.py --matrix, docs/benchmarks.md): gzip takes
# kafka-python from 8,900 to 12,700 records/s (its Python sender handles a third of the bytes);
# librdkafka is fastest uncompressed on the sandbox (gzip 45,000, lz4 62,000, none 65,000).
DEFAULT_COMPRESSION = {"kafka-python": "gzip", "confluent-kafka": "none"}
DEFAULT_BATCH_SIZE = 1024 * 1024
DEFAULT_LINGER_MS = 20


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    topic: str
    progress_topic: str
    progress_topic_replication_factor: int
    transactional_id: str
    security_protocol: str
    sasl_mechanism: Optional[str]
    sasl_username: Optional[str]
    sasl_password: Optional[str]
    ssl_cafile: Optional[str]
    # The transactional producer's client library: kafka-python (pure Python, any glibc) or
    # confluent-kafka (librdkafka; much faster; glibc 2.28 or newer).
    client: str = "kafka-python"
    # How the producer batches its sends: compression codec, batch size in bytes, and how
    # long a batch waits to fill (docs/benchmarks.md has the measurements behind the defaults).
    compression: str = DEFAULT_COMPRESSION["kafka-python"]
    batch_size: int = DEFAULT_BATCH_SIZE
    linger_ms: int = DEFAULT_LINGER_MS

    def client_options(self) -> Dict[str, Any]:
        """Connection options shared by kafka-python's producer, consumer and admin client."""
        options: Dict[str, Any] = {
            "bootstrap_servers": [server.strip() for server in self.bootstrap_servers.split(",") if server.strip()],
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        if self.ssl_cafile:
            options["ssl_cafile"] = self.ssl_cafile
        return options


SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def check_kafka_security(settings: Settings, kafka: KafkaSettings) -> None:
    """A SASL protocol without its mechanism, user or password, or a CA file this user cannot
    read, named now: the client would otherwise fail later with a handshake error that names
    no setting (or, with a SASL user missing, connect and fail to authenticate at every retry)."""
    if kafka.security_protocol.startswith("SASL_"):
        if kafka.sasl_mechanism not in SASL_MECHANISMS:
            raise settings.error("kafka", "sasl_mechanism",
                                 f"must be one of {', '.join(SASL_MECHANISMS)} with {kafka.security_protocol},"
                                 f" not {kafka.sasl_mechanism or '(none)'}")
        if not kafka.sasl_username:
            raise settings.error("kafka", "sasl_username", f"is empty: {kafka.security_protocol} needs the SASL user name")
        if not kafka.sasl_password:
            raise settings.error("kafka", "sasl_password_env",
                                 f"is empty: {kafka.security_protocol} needs the environment variable holding the SASL password")
    if kafka.ssl_cafile and not os.access(kafka.ssl_cafile, os.R_OK):
        reason = "does not exist" if not os.path.exists(kafka.ssl_cafile) else "this user cannot read"
        raise settings.error("kafka", "ssl_cafile", f"names {kafka.ssl_cafile}, which {reason}")


@dataclass(frozen=True)
class ProducerSettings:
    s3: S3Settings
    kafka: KafkaSettings
    poll_interval_seconds: float
    transaction_records: int
    transaction_seconds: float
    rate_limit: float
    progress_every_records: int
    progress_every_seconds: float
    max_record_bytes: int
    retry_attempts: int
    retry_max_backoff_seconds: float
    exit_when_idle: bool
    source: str
    # This producer's shard of shard_count: it ingests only the objects `sharding.owner` gives it.
    shard_index: int
    shard_count: int

    @property
    def transactional_id(self) -> str:
        """The Kafka transactional id of this shard (`sharding.transactional_id`)."""
        return sharding.transactional_id(self.kafka.transactional_id, self.shard_index, self.shard_count)


def load(path: Optional[str], overrides: Sequence[str] = ()) -> ProducerSettings:
    """Parse and check every setting; SettingsError names the first wrong one."""
    settings = Settings(path, overrides)
    prefix = settings.string("s3", "prefix", "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # a prefix is a folder: incoming must not also match incoming-old/
    s3 = S3Settings(
        bucket=settings.string("s3", "bucket"),
        prefix=prefix,
        endpoint_url=settings.optional("s3", "endpoint_url"),
        region=settings.string("s3", "region", "us-east-1"),
        addressing_style=settings.choice("s3", "addressing_style", "auto", ["auto", "path", "virtual"]),
    )
    client = settings.choice("kafka", "client", "kafka-python", ["kafka-python", "confluent-kafka"])
    compression = settings.choice("kafka", "compression", DEFAULT_COMPRESSION[client], COMPRESSIONS["confluent-kafka"])
    if compression not in COMPRESSIONS[client]:
        raise settings.error("kafka", "compression", f"{compression} needs client = confluent-kafka "
                             f"(with {client}: {', '.join(COMPRESSIONS[client])})")
    kafka = KafkaSettings(
        bootstrap_servers=settings.string("kafka", "bootstrap_servers"),
        topic=settings.string("kafka", "topic", "customers-raw"),
        progress_topic=settings.string("kafka", "progress_topic", "customers-raw-progress"),
        progress_topic_replication_factor=settings.integer("kafka", "progress_topic_replication_factor", 1, minimum=1),
        transactional_id=settings.string("kafka", "transactional_id", "customer-producer"),
        security_protocol=settings.choice("kafka", "security_protocol", "PLAINTEXT",
                                          ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        sasl_mechanism=settings.optional("kafka", "sasl_mechanism"),
        sasl_username=settings.optional("kafka", "sasl_username"),
        sasl_password=settings.secret("kafka", "sasl_password_env"),
        ssl_cafile=settings.optional("kafka", "ssl_cafile"),
        client=client,
        compression=compression,
        batch_size=settings.integer("kafka", "batch_size", DEFAULT_BATCH_SIZE, minimum=1024),
        linger_ms=settings.integer("kafka", "linger_ms", DEFAULT_LINGER_MS, minimum=0),
    )
    check_kafka_security(settings, kafka)
    shard_count = settings.integer("producer", "shard_count", 1, minimum=1)
    shard_index = settings.integer("producer", "shard_index", 0, minimum=0)
    if shard_index >= shard_count:
        raise settings.error("producer", "shard_index",
                             f"must be less than producer.shard_count ({shard_count}), not {shard_index}")
    return ProducerSettings(
        s3=s3,
        kafka=kafka,
        poll_interval_seconds=settings.number("producer", "poll_interval_seconds", 30.0, minimum=0.1),
        transaction_records=settings.integer("producer", "transaction_records", 5000, minimum=1),
        transaction_seconds=settings.number("producer", "transaction_seconds", 2.0, minimum=0.01),
        rate_limit=settings.number("producer", "rate_limit", 0.0),
        progress_every_records=settings.integer("producer", "progress_every_records", 10000, minimum=1),
        progress_every_seconds=settings.number("producer", "progress_every_seconds", 30.0, minimum=0.1),
        max_record_bytes=settings.integer("producer", "max_record_bytes", 256 * 1024, minimum=1024),
        retry_attempts=settings.integer("producer", "retry_attempts", 8, minimum=1),
        retry_max_backoff_seconds=settings.number("producer", "retry_max_backoff_seconds", 30.0, minimum=0.0),
        exit_when_idle=settings.boolean("producer", "exit_when_idle", False),
        source=settings.source,
        shard_index=shard_index,
        shard_count=shard_count,
    )
