"""The producer service: every CSV object under s3://bucket/prefix/ into `customers-raw`.

    python -m customer_pipeline.producer --config /etc/customer-pipeline/producer.ini

Exactly once into Kafka: rows are published in Kafka transactions, and each transaction
also carries the object's progress record (see `progress`). A restart (or a `kill -9`)
aborts the open transaction (`init_transactions` fences the old instance), reads the
committed progress back, and goes on after the last committed row.

Scaling out: with `shard_count` producers, each ingests only the objects of its own
`shard_index` and has its own transactional id (see `sharding`, which also says why every
producer of an old assignment must stop before a producer of a new one starts).

Exit codes: 0 after SIGTERM/SIGINT (the open transaction is committed first; while it waits
on S3 or on a broker with nothing open, at once) or, with
`exit_when_idle`, when every object is ingested; 1 when S3 or Kafka keep failing after
the retries, or at once when the transactional producer fails (a send, a commit): kafka-python
has already retried what it could, and on brokers before Kafka 2.5 (no KIP-360) errors such
as UnknownProducerId leave it unusable, so the service exits and its restart fences it and
resumes after the last committed row; 2 for a wrong setting.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

from customer_pipeline.contract.csv_reader import CsvObjectError, EmptyObjectError, MissingColumnsError, open_csv_object
from customer_pipeline.contract.messages import RawMessageEncoder
from customer_pipeline.producer import progress as progress_topic
from customer_pipeline.producer import sharding
from customer_pipeline.producer.config import ProducerSettings, load
from customer_pipeline.producer.progress import DONE, EMPTY, READING, REJECTED, ObjectProgress
from customer_pipeline.producer.s3_source import (
    ObjectChangedError,
    SourceObject,
    is_fatal,
    list_csv_objects,
    make_client,
    open_object,
    setting_to_check,
)
from customer_pipeline.settings import EXIT_BAD_SETTINGS, SettingsError

LOG = logging.getLogger("customer_pipeline.producer")
T = TypeVar("T")


class FatalError(Exception):
    """S3 or Kafka kept failing: the message says what, and the service exits 1."""


@dataclass
class OpenBatch:
    """The object being published: its last row and record count in Kafka, and the open
    transaction's records and start."""

    last_row: int
    records: int
    started: float
    in_batch: int = 0

    def stopping_line(self, uri: str) -> str:
        return f"stopping at row {self.last_row} of {uri}; a restart resumes after it"


class StopReading(Exception):
    """A stop request while an object is read: its open transaction is committed; the restart
    resumes after the last committed row."""


class HookedBody:
    """An S3 object's body that calls `before_read` before each read (the CSV reader reads it
    only through `read`)."""

    def __init__(self, body: Any, before_read: Callable[[], None]) -> None:
        self._body = body
        self._before_read = before_read

    def read(self, amt: Optional[int] = None) -> bytes:
        self._before_read()
        return self._body.read(amt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)


class Stopped(Exception):
    """A stop request came while the producer waited on S3 or Kafka with no transaction open:
    nothing is left to finish, so the service exits 0 at once."""


def interruptible(action: Callable[[], T], stop: threading.Event, poll_seconds: float = 0.2) -> T:
    """`action()`, given up when `stop` is set before it returns (Stopped).

    A client blocked in a connection (kafka-python waits out its 30 s request timeout for a
    broker that never answers; boto3 its connect timeout) cannot be interrupted from outside,
    so it runs in a daemon thread that the exiting process leaves behind. Only for calls made
    with no transaction open: abandoning one loses nothing."""
    outcome: Dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["value"] = action()
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread as is
            outcome["error"] = error

    worker = threading.Thread(target=call, name="remote-call", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(poll_seconds)
        if stop.is_set() and worker.is_alive():
            raise Stopped
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def retry(what: str, action: Callable[[], T], settings: ProducerSettings, stop: threading.Event,
          check: Optional[str] = None) -> T:
    """Run `action`, retrying with exponential back-off; FatalError names `what` at the end, and
    the setting to check: the one the error points at, else `check`."""
    longest = max(settings.retry_max_backoff_seconds, 0.1)
    delay = min(1.0, longest)
    for attempt in range(1, settings.retry_attempts + 1):
        try:
            return interruptible(action, stop)
        except Stopped:
            raise
        except Exception as error:  # noqa: BLE001 - every failure of a remote call is retried the same way
            if is_fatal(error) or attempt == settings.retry_attempts:
                hint = setting_to_check(error) or check
                raise FatalError(f"{what} failed after {attempt} attempt(s): {describe(error)}"
                                 + (f"; {hint}" if hint else "")) from None
            LOG.warning("%s failed (attempt %d of %d), retrying in %.0f s: %s",
                        what, attempt, settings.retry_attempts, delay, describe(error))
            if stop.wait(delay):
                raise Stopped from None
            delay = min(delay * 2, longest)
    raise AssertionError("unreachable")


def describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


# Broker errors that leave a transactional producer unusable before Kafka 2.5 (KIP-360 lets
# newer brokers bump the epoch instead), with what they usually mean.
PRODUCER_STATE_ERRORS = {
    "UnknownProducerIdError": "the brokers no longer know this producer: it was idle longer than their "
                              "transactional.id.expiration.ms, or its last records were deleted",
    "InvalidProducerEpochError": "the brokers aborted this producer's transaction (transaction.timeout.ms) "
                                 "or another producer of its transactional id started",
    "ProducerFencedError": "another producer of its transactional id started",
}


def kafka_failure(what: str, error: BaseException, servers: str) -> str:
    """One line for a failure of the transactional producer, naming the broker's error inside
    kafka-python's wrapper ("Cannot perform send because ...") and what it usually means."""
    cause = next((arg for arg in error.args if isinstance(arg, BaseException)), error)
    said = describe(cause)
    if said.endswith(": None"):  # kafka-python's text of a broker error without a message
        said = said[:-len(": None")]
    text = f"{what} Kafka at {servers} failed: {said}"
    named = f"{type(cause).__name__} {cause}"
    hint = next((hint for name, hint in PRODUCER_STATE_ERRORS.items() if name in named), None)
    if hint:
        text += f" ({hint}); a transactional producer cannot go on after it on brokers before Kafka 2.5"
    return text + "; exiting, the restarted producer resumes after the last committed row"


class RateLimiter:
    """Spaces records to at most `rate` per second (0: unlimited), to replay a file as a live stream."""

    def __init__(self, rate: float, stop: threading.Event) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.stop = stop
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at > now:
            self.stop.wait(self.next_at - now)
        self.next_at = max(self.next_at, now) + self.interval


class ProgressLog:
    """One journald line every N records or T seconds: records/s and the current object."""

    def __init__(self, every_records: int, every_seconds: float) -> None:
        self.every_records = every_records
        self.every_seconds = every_seconds
        self.total = 0
        self.last_total = 0
        self.last_at = time.monotonic()

    def count(self, source: SourceObject, row: int) -> None:
        self.total += 1
        now = time.monotonic()
        if self.total - self.last_total >= self.every_records or now - self.last_at >= self.every_seconds:
            rate = (self.total - self.last_total) / max(now - self.last_at, 1e-6)
            LOG.info("published %d records in all, %.0f records/s; now at row %d of %s",
                     self.total, rate, row, source.uri)
            self.last_total, self.last_at = self.total, now


class Producer:
    def __init__(self, settings: ProducerSettings, s3: Any, kafka: Any,
                 state: Dict[str, ObjectProgress], stop: threading.Event) -> None:
        self.settings = settings
        self.s3 = s3
        self.kafka = kafka
        self.state = state
        self.stop = stop
        self.limiter = RateLimiter(settings.rate_limit, stop)
        self.log = ProgressLog(settings.progress_every_records, settings.progress_every_seconds)
        self.in_transaction = False

    # -- transactions ---------------------------------------------------------------------
    def _kafka(self, what: str, action: Callable[[], T]) -> T:
        """One call of the transactional producer; its failure ends the service (FatalError).

        The transaction is left to the restarted producer, whose init_transactions aborts it:
        after a fatal error (UnknownProducerId before Kafka 2.5) kafka-python cannot abort it.
        """
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - kafka-python has retried what it could
            self.in_transaction = False
            raise FatalError(kafka_failure(what, error, self.settings.kafka.bootstrap_servers)) from None

    def _begin(self) -> None:
        if not self.in_transaction:
            self._kafka("beginning a transaction on", self.kafka.begin_transaction)
            self.in_transaction = True

    def _send(self, topic: str, key: bytes, value: bytes) -> None:
        self._kafka("publishing to", lambda: self.kafka.send(topic, key=key, value=value))

    def _commit(self, source: SourceObject, record: ObjectProgress) -> None:
        """Commit the open transaction together with the object's progress record."""
        self._begin()
        self._send(self.settings.kafka.progress_topic, key=source.uri.encode("utf-8"), value=record.encode())
        self._kafka("committing to", self.kafka.commit_transaction)
        self.in_transaction = False
        self.state[source.uri] = record

    def abort(self) -> None:
        if self.in_transaction:
            self._kafka("aborting the transaction on", self.kafka.abort_transaction)
            self.in_transaction = False

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> int:
        LOG.info("watching %s every %.0f s, publishing to %s with %s as shard %d of %d (transactional id %s)",
                 self.settings.s3.uri, self.settings.poll_interval_seconds, self.settings.kafka.topic,
                 self.settings.kafka.client, self.settings.shard_index, self.settings.shard_count,
                 self.settings.transactional_id)
        while not self.stop.is_set():
            listed = retry(f"listing {self.settings.s3.uri}",
                           lambda: list_csv_objects(self.s3, self.settings.s3), self.settings, self.stop,
                           check="check [s3] bucket, prefix and endpoint_url")
            sources = self.owned(listed)
            pending = [source for source in sources
                       if progress_topic.resume_row(self.state.get(source.uri), source.etag) is not None]
            for source in pending:
                if self.stop.is_set():
                    break
                self.ingest(source)
            if self.stop.is_set():
                break
            if self.settings.exit_when_idle:
                LOG.info("every object under %s is ingested; exiting as exit_when_idle asks", self.settings.s3.uri)
                break
            self.stop.wait(self.settings.poll_interval_seconds)
        return 0

    def owned(self, listed: List[SourceObject]) -> List[SourceObject]:
        """The listed objects this producer's shard owns, in key order; one log line per listing."""
        sources, total = sharding.select(listed, lambda source: source.key,
                                         self.settings.shard_index, self.settings.shard_count)
        LOG.info("shard %d of %d owns %d of the %d object(s) under %s", self.settings.shard_index,
                 self.settings.shard_count, len(sources), total, self.settings.s3.uri)
        return sources

    def ingest(self, source: SourceObject) -> None:
        """Publish one object's rows, retrying from the last committed row after an S3 failure."""
        for attempt in range(1, self.settings.retry_attempts + 1):
            start_row = progress_topic.resume_row(self.state.get(source.uri), source.etag)
            if start_row is None:
                return
            try:
                self._publish(source, start_row)
                return
            except StopReading as stopping:
                LOG.info("%s", stopping)
                return
            except ObjectChangedError as error:
                self.abort()
                LOG.warning("%s; its new version is ingested as a new object at the next listing", error)
                return
            except FatalError:
                raise
            except Exception as error:  # noqa: BLE001 - a broken S3 stream: retry from the committed row
                self.abort()
                if is_fatal(error) or attempt == self.settings.retry_attempts:
                    hint = setting_to_check(error)
                    raise FatalError(f"reading {source.uri} failed after {attempt} attempt(s): "
                                     f"{describe(error)}" + (f"; {hint}" if hint else "")) from None
                LOG.warning("reading %s failed (attempt %d of %d): %s; resuming at the last committed row",
                            source.uri, attempt, self.settings.retry_attempts, describe(error))
                self.stop.wait(min(2.0 ** attempt, self.settings.retry_max_backoff_seconds))

    def _publish(self, source: SourceObject, start_row: int) -> None:
        previous = self.state.get(source.uri)
        batch = OpenBatch(last_row=start_row, started=time.monotonic(),
                          records=previous.records if previous is not None and previous.etag == source.etag else 0)

        def between_reads() -> None:
            """Before each read of the body: a stretch without records (blank lines, the dropped
            rest of a too-long record) can take minutes, and no record comes to end the open
            transaction. Past the broker's transaction.timeout.ms it would be aborted, the
            service would exit and its restart read the same stretch again."""
            if self.in_transaction and (self.stop.is_set()
                                        or time.monotonic() - batch.started >= self.settings.transaction_seconds):
                self._commit(source, ObjectProgress(source.etag, batch.last_row, batch.records, READING))
                batch.in_batch, batch.started = 0, time.monotonic()
            if self.stop.is_set():
                raise StopReading(batch.stopping_line(source.uri))

        body = HookedBody(open_object(self.s3, source), between_reads)
        try:
            csv_object = open_csv_object(body, max_record_bytes=self.settings.max_record_bytes)
        except EmptyObjectError:
            LOG.warning("skipping %s: it is empty (no header)", source.uri)
            self._commit(source, ObjectProgress(source.etag, 0, 0, EMPTY, "no header"))
            return
        except MissingColumnsError as error:
            LOG.error("rejecting %s: its header lacks the required column(s) %s; nothing of it is published",
                      source.uri, ", ".join(error.missing))
            self._commit(source, ObjectProgress(source.etag, 0, 0, REJECTED, str(error)))
            return
        except CsvObjectError as error:
            LOG.error("rejecting %s: %s; nothing of it is published", source.uri, error)
            self._commit(source, ObjectProgress(source.etag, 0, 0, REJECTED, str(error)))
            return

        if start_row:
            LOG.info("resuming %s after row %d (%d records already published)", source.uri, start_row, batch.records)
        else:
            LOG.info("ingesting %s (%d bytes)", source.uri, source.size)
        topic = self.settings.kafka.topic
        # The same bytes as RawMessage.from_source_record + encode_raw_message, a third of the cost.
        encoder = RawMessageEncoder(source.uri, source.etag)
        for record in csv_object:
            if record.source_row <= start_row:
                continue  # committed before the restart
            self._begin()
            key, value = encoder.encode(record, dt.datetime.now(dt.timezone.utc))
            self._send(topic, key=key, value=value)
            batch.last_row = record.source_row
            batch.records += 1
            batch.in_batch += 1
            self.log.count(source, batch.last_row)
            if (batch.in_batch >= self.settings.transaction_records
                    or time.monotonic() - batch.started >= self.settings.transaction_seconds
                    or self.stop.is_set()):
                self._commit(source, ObjectProgress(source.etag, batch.last_row, batch.records, READING))
                batch.in_batch, batch.started = 0, time.monotonic()
                if self.stop.is_set():
                    raise StopReading(batch.stopping_line(source.uri))
            self.limiter.wait()
        self._commit(source, ObjectProgress(source.etag, batch.last_row, batch.records, DONE))
        LOG.info("finished %s: %d records published, last row %d", source.uri, batch.records, batch.last_row)


# What a Kafka connection that never comes points at: the address (or the listener's security).
BOOTSTRAP_SETTING = ("check [kafka] bootstrap_servers (customer_producer_kafka_bootstrap_servers) "
                     "and security_protocol")


def connect_kafka(settings: ProducerSettings, stop: threading.Event) -> Any:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    options = settings.kafka.client_options()
    where = settings.kafka.bootstrap_servers

    def admin_setup() -> None:
        admin = KafkaAdminClient(**options)
        try:
            if progress_topic.ensure_topic(admin, settings.kafka.progress_topic,
                                           settings.kafka.progress_topic_replication_factor):
                LOG.info("created the compacted progress topic %s", settings.kafka.progress_topic)
            if settings.kafka.topic not in admin.list_topics():
                raise FatalError(f"topic {settings.kafka.topic} does not exist at {where}: "
                                 "create it (ansible-playbook playbooks/deploy.yml does)")
        finally:
            admin.close()

    retry(f"connecting to Kafka at {where}", admin_setup, settings, stop, check=BOOTSTRAP_SETTING)

    def start_producer() -> Any:
        if settings.kafka.client == "confluent-kafka":
            from customer_pipeline.producer.confluent_client import ConfluentTransactionalProducer, client_config

            kafka = settings.kafka
            fast = ConfluentTransactionalProducer(client_config(
                options, settings.transactional_id, kafka.compression, kafka.batch_size, kafka.linger_ms))
            fast.init_transactions()  # fences earlier instances, as below
            return fast
        producer = KafkaProducer(
            transactional_id=settings.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=settings.kafka.linger_ms,
            batch_size=settings.kafka.batch_size,
            compression_type=None if settings.kafka.compression == "none" else settings.kafka.compression,
            max_request_size=2 * 1024 * 1024,
            **options,
        )
        # Fences any earlier instance of this shard and aborts the transaction it left open;
        # progress.load then waits for the other shards' open transactions, so what it reads
        # is final.
        producer.init_transactions()
        return producer

    return retry(f"starting a transactional producer at {where}", start_producer, settings, stop,
                 check=BOOTSTRAP_SETTING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="customer-producer", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="INI settings file (see the README)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one setting of the file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
    # The clients log every failed connection attempt; the producer reports failures itself,
    # once, naming what failed, so journald is not flooded with their retries.
    for noisy in ("kafka", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    try:
        settings = load(args.config, args.overrides)
    except SettingsError as error:
        LOG.error("%s", error)
        return EXIT_BAD_SETTINGS

    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        LOG.info("received %s: finishing the open transaction, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    kafka = None
    worker: Optional[Producer] = None
    try:
        kafka = connect_kafka(settings, stop)
        state = retry(f"reading progress topic {settings.kafka.progress_topic}",
                      lambda: progress_topic.load(settings.kafka.client_options(), settings.kafka.progress_topic),
                      settings, stop)
        finished = sum(1 for item in state.values() if item.finished)
        LOG.info("progress: %d object(s) known, %d finished", len(state), finished)
        s3 = make_client(settings.s3)
        worker = Producer(settings, s3, kafka, state, stop)
        return worker.run()
    except Stopped:
        LOG.info("stopped while waiting on S3 or Kafka, with no transaction open: exiting")
        return 0
    except FatalError as error:
        LOG.error("%s", error)
        return 1
    finally:
        if worker is not None:
            try:
                worker.abort()
            except Exception as error:  # noqa: BLE001 - closing down; the broker aborts it anyway
                LOG.warning("aborting the open transaction failed: %s", describe(error))
        if kafka is not None:
            kafka.close(timeout=10)


def cli() -> None:
    sys.exit(main())


if __name__ == "__main__":
    cli()


__all__: List[str] = ["main", "Producer", "FatalError"]
