"""Producers that scale out: which producer owns which source object.

With `producer.shard_count` = N producers, each with its `producer.shard_index` (0 to
N-1), an object belongs to shard `sha256(key) mod N`: a stable hash of the object's key
(never Python's `hash()`, which changes from one process to the next), so every producer,
on every host and after every restart, agrees on the owner without talking to the others.
The key alone decides, not the ETag: an overwritten key stays with the same producer.

Each shard has its own Kafka transactional id (`transactional_id`): `<base>-<index>-of-<count>`,
for example `customer-producer-1-of-3`, and the plain `<base>` when N is 1 so that a
deployment from before sharding keeps its id (and fences its own earlier instance as it
always did). The id names the whole assignment, not just the index: two instances of the
same shard of the same assignment (a restart, a host replaced) share the id, and the newer
fences the older; a producer of another assignment never shares an id with one of the
current assignment, which `kafka-transactions.sh list` shows plainly.

Progress stays where it was: one record per object URI in the one compacted progress
topic, written in the same transaction as the rows it covers, and every producer reads the
whole topic at start (`progress.load`). So when N changes, the new owner of a half-read
object resumes it after its last committed row, whoever committed it.

A change of N is safe only if every producer of the old assignment has stopped before any
producer of the new one starts. Kafka fences an instance only by an instance with the
SAME transactional id; ids of different assignments do not fence each other. An old
producer still running next to a new one would publish rows of an object that the new
owner also publishes (both resume from the same committed row): duplicates. The role
`customer_producer` therefore stops the producer on every host of the group whenever the
installed shard settings of any of them differ from the new ones, before it writes the new
settings (its `tasks/reshard.yml`), and stops and disables the producer on a host that left
the group (`tasks/absent.yml`) before the group's producers restart.

A producer stopped with SIGTERM commits its open transaction before it exits. One killed
with `kill -9` (or by the unit's stop timeout) leaves its transaction open; when its id is
no longer used in the new assignment, no `init_transactions` aborts it, and the broker
aborts it only after the transaction timeout (kafka-python's default, 60 s). Until then the
topics' last stable offset stays before that transaction: consumers reading committed
records wait, and `progress.load` waits (within its timeout) until every transaction open
when it started is decided, so a new owner never resumes from a progress record older than
the last committed one. Its rows are aborted, never published; the object is resumed after
the row committed before it.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, List, Tuple, TypeVar

T = TypeVar("T")


def owner(key: str, count: int) -> int:
    """The shard (0 to count-1) that owns the object `key`: sha256 of its UTF-8 bytes, modulo count."""
    if count < 1:
        raise ValueError(f"the shard count must be at least 1, not {count}")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def owns(key: str, index: int, count: int) -> bool:
    """True when shard `index` of `count` owns the object `key`."""
    return owner(key, count) == index


def select(items: Iterable[T], key_of: Callable[[T], str], index: int, count: int) -> Tuple[List[T], int]:
    """The items shard `index` of `count` owns, in their order, and how many items there were."""
    every = list(items)
    return [item for item in every if owns(key_of(item), index, count)], len(every)


def transactional_id(base: str, index: int, count: int) -> str:
    """The Kafka transactional id of one shard: the plain base when there is one producer."""
    if count == 1:
        return base
    return f"{base}-{index}-of-{count}"
