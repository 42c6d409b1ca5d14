"""The producer's progress, kept in a compacted Kafka topic next to the data it describes.

Each source object has one progress record, keyed by its URI: its ETag, the last
`source_row` published and its state. The producer writes it in the SAME Kafka
transaction as the rows it covers, so the progress a restarted producer reads back
(read_committed) always matches exactly what consumers of `customers-raw` can see:
nothing committed is published again, and nothing is skipped.

Several producers (`sharding`) share the topic, each writing the records of the objects
it owns; every producer reads all of it, so the owner of an object after a change of the
shard count finds the progress the previous owner committed.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

READING = "reading"
DONE = "done"
REJECTED = "rejected"
EMPTY = "empty"
FINISHED_STATES = frozenset({DONE, REJECTED, EMPTY})


@dataclass(frozen=True)
class ObjectProgress:
    """Where the producer stands in one object (one key and ETag)."""

    etag: str
    last_row: int
    records: int
    state: str
    detail: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> ObjectProgress:
        fields = json.loads(data.decode("utf-8"))
        return cls(etag=str(fields["etag"]), last_row=int(fields["last_row"]), records=int(fields["records"]),
                   state=str(fields["state"]), detail=fields.get("detail"))


def resume_row(progress: Optional[ObjectProgress], etag: str) -> Optional[int]:
    """The last row already published for this version of the object; None when it is finished.

    A different ETag is a different object (the key was overwritten): it starts at row 0.
    """
    if progress is None or progress.etag != etag:
        return 0
    if progress.finished:
        return None
    return progress.last_row


def ensure_topic(admin: Any, topic: str, replication_factor: int) -> bool:
    """Create the compacted progress topic when missing; True when it was created."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if topic in admin.list_topics():
        return False
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=replication_factor,
                                      topic_configs={"cleanup.policy": "compact"})])
    except TopicAlreadyExistsError:
        return False  # another producer created it in between
    return True


def load(client_options: Dict[str, Any], topic: str, timeout_seconds: float = 120.0) -> Dict[str, ObjectProgress]:
    """Read the whole progress topic (committed records only): the latest record per object.

    Reads up to the end the topic has when the call starts (its high watermark), not just up
    to its last stable offset: a record committed by another producer after a transaction
    still open at that moment lies beyond that offset, and stopping there would miss it. So
    the read waits until every transaction open at the start is committed or aborted: a
    second or so normally, the transaction timeout (60 s) after a producer of another
    transactional id was killed with -9. TimeoutError says so when it takes longer.
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(isolation_level="read_committed", enable_auto_commit=False, group_id=None,
                             **client_options)
    try:
        deadline = time.monotonic() + timeout_seconds
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"progress topic {topic} has no partitions")
                time.sleep(0.5)
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        # Under read_committed, end_offsets would be the last stable offset; the high watermark
        # comes from a read_uncommitted client. Records, commit and abort markers alike move the
        # position on, and it passes a transaction only once that is decided.
        end = written_offsets(client_options, assigned)
        state: Dict[str, ObjectProgress] = {}
        while any(consumer.position(tp) < end[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading progress topic {topic} took over {timeout_seconds:.0f} s: a "
                                   "transaction on it is still open (a producer killed with -9 leaves one "
                                   "until the broker aborts it after the transaction timeout)")
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    uri = record.key.decode("utf-8")
                    if record.value is None:
                        state.pop(uri, None)
                    else:
                        state[uri] = ObjectProgress.decode(record.value)
        return state
    finally:
        consumer.close()


def written_offsets(client_options: Dict[str, Any], partitions: List[Any]) -> Dict[Any, int]:
    """The high watermark of each partition: the offset after the last record written, decided or not."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(isolation_level="read_uncommitted", enable_auto_commit=False, group_id=None,
                             **client_options)
    try:
        return dict(consumer.end_offsets(partitions))
    finally:
        consumer.close()
