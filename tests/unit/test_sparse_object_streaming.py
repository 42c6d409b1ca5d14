"""A multi-GB sparse source object goes through the producer streamed, never held.

The issue's "a multi-GB sparse object (streamed, not held in memory)": the object is made
up as it is read (`SparseBody`, standing in for botocore's StreamingBody) and ingested by the
real `Producer.run`, with a fake S3 that serves it and a fake Kafka that keeps what was
committed. Each test checks the contract's outcome (every published message classified by
the reference, `messages.process_raw_message`), the progress record `done`, that every byte
of the object was read, and that the peak of Python allocations stays under
`PEAK_BOUND` (64 MiB) while the object is 3 GiB (256 MiB for the short run of blank lines).

Two shapes:

- `blank_lines`: a valid row at the start, in the middle and at the end, and between them
  nothing but blank lines (whitespace-only lines of about 4 KiB, LF and CRLF, and a few
  short ones in every MiB). Blank lines are not data records (csv_reader's decisions), so
  the object has 3 rows, numbered 1, 2, 3.
- `huge_field`: row 2's address is gigabytes of one byte with no line break. The record is
  longer than max_record_bytes, so it is one malformed row (alert `malformed_row`) whose
  raw_line is its first 262,144 bytes, and the rest of it is read and dropped. Either NULs
  until the end of the object (no line end at all after row 2), or `x` then a line end and
  a valid row 3 (reading goes on at the next line).

The blank lines are long because the reader costs about a microsecond and a half per
line whatever its length: a GiB of bare `\\n` lines is a billion records to skip, about
half an hour of CPU (see the README of tests/hostile_corpus); lines of 4 KiB go at about
160 MiB/s, a field being dropped at GB/s. `make test-unit` runs 256 MiB of blank lines
and 3 GiB fields; `make test-long` (LONG_TESTS=1) adds 3 GiB of blank lines.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import tracemalloc
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from hostile_corpus import make_corpus
from producer_runs import Collect, FakeKafka, fake_run_settings

from customer_pipeline.contract import rules
from customer_pipeline.contract.csv_reader import DEFAULT_MAX_RECORD_BYTES
from customer_pipeline.contract.messages import decode_raw_message, message_key, process_raw_message
from customer_pipeline.producer import service
from customer_pipeline.producer.progress import DONE, ObjectProgress
from customer_pipeline.producer.service import Producer

MIB = 1 << 20
GIB = 1 << 30
BUCKET = "sparse"
PREFIX = "incoming/"
RAW_TOPIC = "customers-raw"
PROGRESS_TOPIC = "customers-raw-progress"
ETAG = '"sparse-object"'
LIMIT = DEFAULT_MAX_RECORD_BYTES
# Held at once by the read path, at most a few chunks (1 MiB) and a few records (256 KiB);
# the objects are 4 to 48 times larger than the bound (about 4 to 7 MiB measured).
PEAK_BOUND = 64 * MIB
# The fake clock of the producer: time passes as a single S3 GET stream at this rate would
# deliver the bytes read (CPU time is not counted), so the runs are deterministic.
MODELED_READ_BYTES_PER_SECOND = 32 * MIB
LONG = bool(os.environ.get("LONG_TESTS"))
LONG_REASON = "3 GiB of blank lines take about 20 s here: make test-long runs them (LONG_TESTS=1; make test does)"

CORPUS = make_corpus()
HEADER = CORPUS.HEADER.encode("ascii")


def row(customer_id: str, **changes: str) -> bytes:
    return CORPUS.row(customer_id=customer_id, **changes).encode("utf-8")


# -- the object, made up as it is read ------------------------------------------------------
class SparseBody:
    """A read-only body that makes its bytes only when they are read, as botocore's
    StreamingBody delivers them: `read(amt)` gives at most `amt` bytes, b"" at the end."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._pending = b""
        self.bytes_read = 0
        self.exhausted = False  # the last piece was made and handed out

    def readable(self) -> bool:
        return True

    def read(self, amt: Optional[int] = None) -> bytes:
        assert amt is not None and amt > 0, "the producer must read the body in chunks, never whole"
        while len(self._pending) < amt and not self.exhausted:
            piece = next(self._pieces, None)
            if piece is None:
                self.exhausted = True
                break
            self._pending += piece
        chunk, self._pending = self._pending[:amt], self._pending[amt:]
        self.bytes_read += len(chunk)
        return chunk

    def close(self) -> None:
        pass


def blank_piece() -> bytes:
    """1 MiB of blank lines: 16 short ones (LF, CRLF, whitespace), then lines of about 4 KiB
    of spaces and tabs ending in LF or CRLF."""
    piece = b"\n\r\n \n\t\r\n\x0b\x0c\n \t \r\n\n\n" * 2
    assert piece.count(b"\n") == 16
    pair = b" \t" * 2047 + b"\n" + b"\t " * 2047 + b"\r\n"
    while len(piece) + len(pair) < MIB:
        piece += pair
    piece += b" " * (MIB - len(piece) - 1) + b"\n"
    assert len(piece) == MIB
    return piece


BLANK_PIECE = blank_piece()


@dataclass(frozen=True)
class ExpectedRow:
    source_row: int
    route: str
    reasons: Tuple[str, ...] = ()
    customer_id: Optional[str] = None  # the raw message's untrimmed customer_id
    raw_line: Optional[str] = None  # a malformed row's raw_line, whole


@dataclass(frozen=True)
class SparseObject:
    name: str
    size: int  # bytes, exactly
    pieces: Callable[[], Iterator[bytes]]
    rows: Tuple[ExpectedRow, ...]


def blank_lines(gib_or_mib: int, unit: int) -> SparseObject:
    """Rows 1, 2 and 3 around two halves of `gib_or_mib` units of blank lines."""
    half = gib_or_mib * unit // MIB // 2
    first = HEADER + b"\n" + row("1") + b"\n"
    middle = row("2") + b"\r\n"
    last = row("3") + b"\r\n"

    def pieces() -> Iterator[bytes]:
        yield first
        for _ in range(half):
            yield BLANK_PIECE
        yield middle
        for _ in range(half):
            yield BLANK_PIECE
        yield last

    usa = [ExpectedRow(number, "usa", customer_id=str(number)) for number in (1, 2, 3)]
    size = len(first) + len(middle) + len(last) + 2 * half * MIB
    return SparseObject(f"blank_lines_{label(gib_or_mib, unit)}.csv", size, pieces, tuple(usa))


def huge_field(gib_or_mib: int, unit: int, fill: bytes, then_a_row: bool) -> SparseObject:
    """Row 2's address is `gib_or_mib` units of `fill` with no line break: up to the end of
    the object, or followed by the rest of row 2, a line end and row 3."""
    start, end = row("2", address="\x00").split(b"\x00")
    first = HEADER + b"\n" + row("1") + b"\n" + start
    last = end + b"\n" + row("3") + b"\n" if then_a_row else end
    piece = fill * MIB
    count = gib_or_mib * unit // MIB

    def pieces() -> Iterator[bytes]:
        yield first
        for _ in range(count):
            yield piece
        yield last

    cut = (start + fill * (LIMIT - len(start))).decode("ascii")
    rows = [ExpectedRow(1, "usa", customer_id="1"), ExpectedRow(2, "alerts", ("malformed_row",), raw_line=cut)]
    if then_a_row:
        rows.append(ExpectedRow(3, "usa", customer_id="3"))
    what = "x_field_then_a_row" if then_a_row else "nul_field_to_the_end"
    size = len(first) + count * MIB + len(last)
    return SparseObject(f"{what}_{label(gib_or_mib, unit)}.csv", size, pieces, tuple(rows))


def label(amount: int, unit: int) -> str:
    return f"{amount}{'GiB' if unit == GIB else 'MiB'}"


# make test-unit: the fields at 3 GiB (read at GB/s), the blank lines at 256 MiB (about
# 150 MiB/s); make test-long adds 3 GiB of blank lines.
SHORT = [
    blank_lines(256, MIB),
    huge_field(3, GIB, b"\x00", then_a_row=False),
    huge_field(3, GIB, b"x", then_a_row=True),
]
MULTI_GIGABYTE = [blank_lines(3, GIB)]
OBJECTS = [pytest.param(item, id=item.name) for item in SHORT] + [
    pytest.param(item, id=f"multi_gigabyte-{item.name}", marks=pytest.mark.skipif(not LONG, reason=LONG_REASON))
    for item in MULTI_GIGABYTE
]


# -- fakes ----------------------------------------------------------------------------------
class FakeS3:
    """The two calls s3_source makes; the one object is served as a SparseBody."""

    def __init__(self, key: str, item: SparseObject) -> None:
        self.key = key
        self.item = item
        self.bodies: List[SparseBody] = []

    def get_paginator(self, operation: str) -> FakeS3:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[Dict[str, Any]]:  # noqa: N803 - boto3's names
        assert (Bucket, Prefix) == (BUCKET, PREFIX)
        yield {"Contents": [{"Key": self.key, "ETag": ETAG, "Size": self.item.size}]}

    def get_object(self, Bucket: str, Key: str, IfMatch: str) -> Dict[str, Any]:  # noqa: N803
        assert (Bucket, Key, IfMatch) == (BUCKET, self.key, ETAG)
        body = SparseBody(self.item.pieces())
        self.bodies.append(body)
        return {"Body": body}


class ReadClock:
    """What the producer sees as `time`: monotonic() is how long the bytes read so far take
    to arrive at MODELED_READ_BYTES_PER_SECOND."""

    def __init__(self, s3: FakeS3) -> None:
        self.s3 = s3

    def monotonic(self) -> float:
        return sum(body.bytes_read for body in self.s3.bodies) / MODELED_READ_BYTES_PER_SECOND


@dataclass
class Ingestion:
    item: SparseObject
    uri: str
    s3: FakeS3
    kafka: FakeKafka
    peak: int
    logs: List[logging.LogRecord]
    transaction_seconds: float


@pytest.fixture(scope="module", params=OBJECTS)
def ingestion(request: pytest.FixtureRequest) -> Ingestion:
    """The object ingested once by the real Producer.run, Python's allocations traced."""
    item: SparseObject = request.param
    key = PREFIX + item.name
    s3 = FakeS3(key, item)
    clock = ReadClock(s3)
    kafka = FakeKafka(clock.monotonic)
    settings = fake_run_settings(BUCKET, PREFIX, RAW_TOPIC, PROGRESS_TOPIC)
    assert settings.max_record_bytes == LIMIT
    logger = logging.getLogger("customer_pipeline.producer")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "time", clock)
        tracemalloc.start()
        try:
            assert Producer(settings, s3, kafka, {}, threading.Event()).run() == 0
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert kafka.open is None, "the producer left a transaction open"
    return Ingestion(item, f"s3://{BUCKET}/{key}", s3, kafka, peak, handler.records, settings.transaction_seconds)


# -- the tests ------------------------------------------------------------------------------
def test_the_objects_are_sparse_and_large() -> None:
    """What the tests below rely on: the sizes are exact, and 3 GiB except the blank lines of
    the short run (256 MiB, 4 times PEAK_BOUND)."""
    for item in SHORT + MULTI_GIGABYTE:
        assert item.size >= 4 * PEAK_BOUND
        assert item.size >= 3 * GIB or item.name == "blank_lines_256MiB.csv"
    assert all(item.size >= 3 * GIB for item in MULTI_GIGABYTE)
    small = huge_field(2, MIB, b"\x00", then_a_row=False)
    assert sum(len(piece) for piece in small.pieces()) == small.size
    small = blank_lines(4, MIB)
    data = b"".join(small.pieces())
    assert len(data) == small.size
    lines = data.split(b"\n")
    assert sum(1 for line in lines if line.strip(b" \t\r\n\x0b\x0c")) == 4  # header and 3 rows


def test_the_object_ends_as_the_contract_says(ingestion: Ingestion) -> None:
    messages = ingestion.kafka.committed.get(RAW_TOPIC, [])
    observed = []
    for key, value in messages:
        raw = decode_raw_message(value)
        assert (raw.source_uri, raw.source_etag) == (ingestion.uri, ETAG)
        assert raw.record_id == rules.record_id(ingestion.uri, ETAG, raw.source_row)
        assert key == message_key(raw.record_id)
        outcome = process_raw_message(raw)
        message = json.loads(value)
        observed.append(ExpectedRow(
            raw.source_row, outcome.route, tuple(outcome.reasons),
            customer_id=message.get("customer_id"),
            raw_line=message.get("raw_line") if message.get("malformed") else None))
    assert observed == list(ingestion.item.rows)
    for row_ in ingestion.item.rows:
        if row_.raw_line is not None:
            assert len(row_.raw_line.encode("utf-8")) == LIMIT


def test_the_progress_record_says_done(ingestion: Ingestion) -> None:
    progress = [ObjectProgress.decode(value) for key, value in ingestion.kafka.committed[PROGRESS_TOPIC]
                if key == ingestion.uri.encode("utf-8")]
    rows = len(ingestion.item.rows)
    assert (progress[-1].state, progress[-1].records, progress[-1].last_row, progress[-1].etag) == (
        DONE, rows, rows, ETAG)
    assert [record.message for record in ingestion.logs if record.levelno >= logging.WARNING] == []
    finished = [record.getMessage() for record in ingestion.logs if record.getMessage().startswith("finished ")]
    assert finished == [f"finished {ingestion.uri}: {rows} records published, last row {rows}"]


def test_every_byte_was_read_once_to_the_end(ingestion: Ingestion) -> None:
    """Streamed to the end, not abandoned: one GET, and its body read until it had no more."""
    [body] = ingestion.s3.bodies
    assert body.exhausted
    assert body.bytes_read == ingestion.item.size


def test_the_object_was_never_held_in_memory(ingestion: Ingestion) -> None:
    assert ingestion.peak < PEAK_BOUND, f"peak {ingestion.peak / MIB:.1f} MiB for {ingestion.item.size / MIB:.0f} MiB"
    assert ingestion.item.size >= 4 * PEAK_BOUND


def test_no_transaction_stays_open_through_the_sparse_stretch(ingestion: Ingestion) -> None:
    """The producer commits between reads once transaction_seconds have passed, records or not:
    a transaction left open for the whole stretch outlived the broker's transaction.timeout.ms,
    was aborted, and the restarted service read the same stretch again, for ever."""
    # A transaction may outlast transaction_seconds by the time one record takes to read.
    assert max(ingestion.kafka.open_seconds) <= ingestion.transaction_seconds + 1.0, ingestion.kafka.open_seconds


def test_a_stop_request_in_the_stretch_ends_the_read_there_and_the_restart_resumes_exactly() -> None:
    """SIGTERM while the producer reads a gigabyte without a record: it commits what it sent
    and stops reading at once (not at the object's end); a new producer, from the progress
    it committed, publishes the rest, every row once."""
    whole = huge_field(3, GIB, b"x", then_a_row=True)
    stop = threading.Event()

    def sigterm_after_a_gibibyte() -> Iterator[bytes]:
        delivered = 0
        for piece in whole.pieces():
            yield piece
            delivered += len(piece)
            if delivered >= GIB:
                stop.set()

    item = SparseObject(whole.name, whole.size, sigterm_after_a_gibibyte, whole.rows)
    key = PREFIX + item.name
    s3 = FakeS3(key, item)
    clock = ReadClock(s3)
    kafka = FakeKafka(clock.monotonic)
    settings = fake_run_settings(BUCKET, PREFIX, RAW_TOPIC, PROGRESS_TOPIC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "time", clock)
        assert Producer(settings, s3, kafka, {}, stop).run() == 0
    assert kafka.open is None
    assert s3.bodies[0].bytes_read < 2 * GIB, "the stop request waited for the stretch to end"
    progress = ObjectProgress.decode(kafka.committed[PROGRESS_TOPIC][-1][1])
    assert progress.state != DONE and progress.last_row == 2
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "time", clock)
        assert Producer(settings, s3, kafka, {f"s3://{BUCKET}/{key}": progress}, threading.Event()).run() == 0
    rows = [decode_raw_message(value).source_row for _key, value in kafka.committed[RAW_TOPIC]]
    assert rows == [1, 2, 3]
    assert ObjectProgress.decode(kafka.committed[PROGRESS_TOPIC][-1][1]).state == DONE
