"""The hostile corpus through the producer's own code: every object ends as CONTRACT.md says.

Every case of `tests/hostile_corpus/` goes into a fake S3 bucket, and the real
`Producer.run` ingests the bucket. That run covers the key filter of `list_csv_objects`,
`open_csv_object`, `RawMessageEncoder` and the progress records of skipped and rejected
objects. A fake Kafka keeps what the producer committed. Each raw message is then decoded
and classified by the reference (`messages.process_raw_message`, what the Spark job must
do). The result must match the case's hand-written `.expected.json`. `counts.count_object`,
what verify.yml counts, must give the same counts per class.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import logging
import re
import threading
import tracemalloc
import unicodedata
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from hostile_corpus import (
    CORPUS_DIR,
    EXPECTED_SUFFIX,
    OUTCOMES,
    REASON_CODES,
    ROUTES,
    CorpusCase,
    CorpusError,
    ExpectedRow,
    case_bytes,
    count,
    iter_corpus,
    load_expectations,
    load_index,
    make_corpus,
    parse_expectation,
    totals,
)
from producer_runs import Collect, FakeKafka, fake_run_settings

from customer_pipeline.contract import rules
from customer_pipeline.contract.counts import count_object
from customer_pipeline.contract.csv_reader import (
    DEFAULT_MAX_RECORD_BYTES,
    EmptyObjectError,
    HeaderQuoteError,
    HeaderTooLongError,
    MissingColumnsError,
    open_csv_object,
)
from customer_pipeline.contract.messages import decode_raw_message, message_key, process_raw_message
from customer_pipeline.contract.rules import Outcome
from customer_pipeline.producer.config import ProducerSettings
from customer_pipeline.producer.progress import DONE, EMPTY, REJECTED, ObjectProgress
from customer_pipeline.producer.service import Producer

BUCKET = "hostile"
PREFIX = "incoming/hostile/"
RAW_TOPIC = "customers-raw"
PROGRESS_TOPIC = "customers-raw-progress"
TEN_MB_CASE = "ten_mb_field.csv"

EXPECTATIONS = {expectation.name: expectation for expectation in load_expectations()}
NAMES = list(EXPECTATIONS)
# What a finished object's progress state says about it.
STATE_OUTCOME = {DONE: "rows", REJECTED: "rejected", EMPTY: "skipped"}


# -- fakes --------------------------------------------------------------------------------
class FakeS3:
    """The two calls s3_source makes, on an in-memory bucket."""

    def __init__(self, objects: Dict[str, bytes]) -> None:
        self.objects = objects
        self.etags = {key: '"%s"' % hashlib.md5(data).hexdigest() for key, data in objects.items()}  # noqa: S324
        self.opened: List[str] = []

    def get_paginator(self, operation: str) -> FakeS3:
        assert operation == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[Dict[str, Any]]:  # noqa: N803 - boto3's names
        assert (Bucket, Prefix) == (BUCKET, PREFIX)
        # Listed backwards: the producer, not the store, must put the keys in order.
        keys = sorted(self.objects, reverse=True)
        yield {"Contents": [{"Key": key, "ETag": self.etags[key], "Size": len(self.objects[key])} for key in keys]}

    def get_object(self, Bucket: str, Key: str, IfMatch: str) -> Dict[str, Any]:  # noqa: N803
        assert (Bucket, IfMatch) == (BUCKET, self.etags[Key])
        self.opened.append(Key)
        return {"Body": io.BytesIO(self.objects[Key])}


def producer_settings() -> ProducerSettings:
    # Every setting that shapes records keeps its default (max_record_bytes above all).
    return fake_run_settings(BUCKET, PREFIX, RAW_TOPIC, PROGRESS_TOPIC)


@dataclass
class Ingestion:
    cases: Dict[str, CorpusCase]
    s3: FakeS3
    messages: Dict[str, List[Tuple[bytes, bytes]]]  # by source_uri, in published order
    progress: Dict[str, ObjectProgress]  # the latest committed record per object URI
    logs: List[logging.LogRecord]


@pytest.fixture(scope="module")
def ingestion() -> Ingestion:
    """The whole corpus ingested once by the real producer."""
    cases = {case.expectation.name: case for case in iter_corpus(PREFIX)}
    s3 = FakeS3({case.key: case.data for case in cases.values()})
    kafka = FakeKafka()
    logger = logging.getLogger("customer_pipeline.producer")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert Producer(producer_settings(), s3, kafka, {}, threading.Event()).run() == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert kafka.open is None, "the producer left a transaction open"
    messages: Dict[str, List[Tuple[bytes, bytes]]] = collections.defaultdict(list)
    for key, value in kafka.committed[RAW_TOPIC]:
        messages[json.loads(value)["source_uri"]].append((key, value))
    progress = {key.decode("utf-8"): ObjectProgress.decode(value) for key, value in kafka.committed[PROGRESS_TOPIC]}
    return Ingestion(cases, s3, dict(messages), progress, handler.records)


# -- comparing rows -----------------------------------------------------------------------
ABSENT = "<absent>"


def wanted(row: ExpectedRow) -> Dict[str, Any]:
    """An expected row in the shape `seen` gives an observed one, for one readable diff."""
    view: Dict[str, Any] = {"source_row": row.source_row, "route": row.route, "reasons": list(row.reasons)}
    if row.raw:
        view["raw"] = dict(row.raw)
    if row.output:
        view["output"] = dict(row.output)
    if row.raw_line_starts_with is not None:
        view["raw_line_starts_with"] = row.raw_line_starts_with
    if row.raw_line_utf8_bytes is not None:
        view["raw_line_utf8_bytes"] = row.raw_line_utf8_bytes
    return view


def seen(row: Optional[ExpectedRow], message: Dict[str, Any], outcome: Outcome) -> Dict[str, Any]:
    """What became of one published record, limited to what `row` expects of it."""
    view: Dict[str, Any] = {"source_row": message["source_row"], "route": outcome.route,
                            "reasons": list(outcome.reasons)}
    if row is None:
        return view
    if row.raw:
        view["raw"] = {name: message.get(name, ABSENT) for name in row.raw}
    if row.output:
        record = outcome.record.to_json_dict() if outcome.record is not None else {}
        view["output"] = {name: record.get(name, ABSENT) for name in row.output}
    raw_line = message.get("raw_line") or ""
    if row.raw_line_starts_with is not None:
        view["raw_line_starts_with"] = raw_line[:len(row.raw_line_starts_with)]
    if row.raw_line_utf8_bytes is not None:
        view["raw_line_utf8_bytes"] = len(raw_line.encode("utf-8"))
    return view


def published(ingestion: Ingestion, name: str) -> List[Tuple[Dict[str, Any], Outcome]]:
    """The object's raw messages with what the reference makes of them; ids checked on the way."""
    case = ingestion.cases[name]
    uri = f"s3://{BUCKET}/{case.key}"
    etag = ingestion.s3.etags[case.key]
    results = []
    for key, value in ingestion.messages.get(uri, []):
        message = json.loads(value)
        raw = decode_raw_message(value)
        assert (raw.source_uri, raw.source_etag) == (uri, etag)
        assert raw.record_id == rules.record_id(uri, etag, raw.source_row)
        assert key == message_key(raw.record_id)
        results.append((message, process_raw_message(raw)))
    return results


def logged(ingestion: Ingestion, level: int, uri: str) -> List[str]:
    return [record.getMessage() for record in ingestion.logs if record.levelno == level and uri in record.getMessage()]


# -- the corpus itself --------------------------------------------------------------------
def test_the_stored_files_are_what_make_corpus_writes() -> None:
    module = make_corpus()
    for name, data in module.expected_files(module.cases()).items():
        assert (CORPUS_DIR / name).read_bytes() == data, f"{name} differs: run tests/hostile_corpus/make_corpus.py"


def test_every_file_of_the_folder_is_a_case_or_its_expectation() -> None:
    own = {"README.md", "make_corpus.py", "index.json", ".gitattributes"}
    # NFC: a file system may hand back a decomposed 'é' (macOS), the S3 key is composed.
    present = {unicodedata.normalize("NFC", path.name) for path in CORPUS_DIR.iterdir() if path.name != "__pycache__"}
    stored = {name for name, expectation in EXPECTATIONS.items() if expectation.stored}
    expectations = {name + EXPECTED_SUFFIX for name in EXPECTATIONS}
    assert present == own | stored | expectations


def test_the_corpus_covers_every_bullet_reason_route_and_outcome() -> None:
    assert len(EXPECTATIONS) >= 40
    covered = {bullet for expectation in EXPECTATIONS.values() for bullet in expectation.covers}
    assert covered == set(load_index()["bullets"])
    rows = [row for expectation in EXPECTATIONS.values() for row in expectation.rows]
    # The corpus states the reason codes from CONTRACT.md; the code must know the same ones.
    assert set(REASON_CODES) == set(rules.REASON_CODES)
    assert {reason for row in rows for reason in row.reasons} == set(REASON_CODES)
    assert {row.route for row in rows} == set(ROUTES)
    assert {expectation.outcome for expectation in EXPECTATIONS.values()} == set(OUTCOMES)


def test_the_expectations_hold_for_the_pipelines_defaults() -> None:
    """The long-line cases sit around max_record_bytes, the country rows around USA."""
    assert load_index()["max_record_bytes"] == make_corpus().MAX_RECORD_BYTES == DEFAULT_MAX_RECORD_BYTES
    assert producer_settings().max_record_bytes == DEFAULT_MAX_RECORD_BYTES
    assert rules.DEFAULT_TARGET_COUNTRY == "USA"


def test_the_readme_names_every_case() -> None:
    readme = (CORPUS_DIR / "README.md").read_text(encoding="utf-8")
    assert [name for name in NAMES if f"`{name}`" not in readme] == []


GOOD_ROWS = {"outcome": "rows", "why": "w", "rows": [{"source_row": 1, "route": "usa"}],
             "counts": {"usa": 1, "alerts": 0, "out_of_scope": 0, "total": 1, "reasons": {}}}


@pytest.mark.parametrize("change, message", [
    ({"outcome": "published"}, "outcome must be one of"),
    ({"extra": 1}, "unknown keys ['extra']"),
    ({"why": " "}, "'why' must say why"),
    ({"rows": [{"source_row": 2, "route": "usa"}]}, "source_row must be 1"),
    ({"rows": [{"source_row": 1, "route": "usa", "reason": ["x"]}]}, "unknown keys ['reason']"),
    ({"rows": [{"source_row": 1, "route": "usa", "reasons": ["invalid_email"]}]}, "only alerts have reasons"),
    ({"rows": [{"source_row": 1, "route": "alerts"}]}, "an alert needs its reasons"),
    ({"rows": [{"source_row": 1, "route": "alerts", "reasons": ["invalid_state", "invalid_email"]}]},
     "an alert needs its reasons, sorted"),
    ({"rows": [{"source_row": 1, "route": "alerts", "reasons": ["invalid_phone"]}]}, "unknown reason code"),
    ({"rows": [{"source_row": 1, "route": "alerts", "reasons": ["invalid_email", "malformed_row"]}]},
     "malformed_row stands alone"),
    ({"rows": [{"source_row": 1, "route": "out_of_scope", "output": {"country": "X"}}]}, "no output record"),
    ({"rows": [{"source_row": 1, "route": "usa", "output": {"record_id": "x"}}]}, "output may name only"),
    ({"rows": [{"source_row": 1, "route": "usa", "raw": {"malformed_reason": "x"}}]}, "raw may name only"),
    ({"counts": {"usa": 2, "alerts": 0, "out_of_scope": 0, "total": 2, "reasons": {}}}, "do not add up"),
])
def test_a_wrong_expectation_file_fails_loudly(change: Dict[str, Any], message: str) -> None:
    with pytest.raises(CorpusError, match=re.escape(message)):
        parse_expectation("case.csv", ("bullet",), None, {**GOOD_ROWS, **change})


def test_a_rejection_names_its_missing_columns_in_the_contracts_order() -> None:
    document = {"outcome": "rejected", "why": "w", "message_contains": "m"}
    assert parse_expectation("c.csv", ("b",), None, {**document, "missing_columns": ["email", "country"]})
    with pytest.raises(CorpusError, match="contract's order"):
        parse_expectation("c.csv", ("b",), None, {**document, "missing_columns": ["country", "email"]})
    with pytest.raises(CorpusError, match="not required"):
        parse_expectation("c.csv", ("b",), None, {**document, "missing_columns": ["state"]})

# -- every case, through the producer and through the counts -------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_the_producer_gives_the_contracts_outcome(ingestion: Ingestion, name: str) -> None:
    expectation = EXPECTATIONS[name]
    case = ingestion.cases[name]
    uri = f"s3://{BUCKET}/{case.key}"
    results = published(ingestion, name)
    progress = ingestion.progress.get(uri)

    if expectation.outcome == "ignored":
        assert case.key not in ingestion.s3.opened
        assert progress is None
        assert results == []
        return
    assert ingestion.s3.opened.count(case.key) == 1
    assert progress is not None
    assert STATE_OUTCOME.get(progress.state) == expectation.outcome, progress

    if expectation.outcome == "skipped":
        assert results == []
        assert (progress.records, progress.last_row) == (0, 0)
        assert len(logged(ingestion, logging.WARNING, uri)) == 1  # "skipped with a warning"
        return
    if expectation.outcome == "rejected":
        assert results == []  # "nothing of it is published"
        assert (progress.records, progress.last_row) == (0, 0)
        assert expectation.message_contains is not None and expectation.message_contains in (progress.detail or "")
        # "the producer logs one clear error naming the object and the missing columns"
        [error] = logged(ingestion, logging.ERROR, uri)
        assert expectation.message_contains in error
        assert all(column in error for column in expectation.missing_columns)
        return

    rows = expectation.rows
    assert (progress.records, progress.last_row) == (len(rows), len(rows))
    observed = [seen(rows[number] if number < len(rows) else None, message, outcome)
                for number, (message, outcome) in enumerate(results)]
    assert observed == [wanted(row) for row in rows]


@pytest.mark.parametrize("name", [name for name in NAMES if EXPECTATIONS[name].outcome != "ignored"])
def test_the_reference_counts_agree(name: str) -> None:
    """What verify.yml counts for the object equals the per-row expectation."""
    expectation = EXPECTATIONS[name]
    stream = io.BytesIO(case_bytes(expectation))
    if expectation.outcome == "rows":
        assert count_object(stream).to_json_dict() == expectation.counts
    elif expectation.outcome == "skipped":
        with pytest.raises(EmptyObjectError):
            count_object(stream)
    else:
        with pytest.raises((MissingColumnsError, HeaderTooLongError, HeaderQuoteError)) as error:
            count_object(stream)
        assert expectation.message_contains is not None and expectation.message_contains in str(error.value)
        if expectation.missing_columns:
            assert isinstance(error.value, MissingColumnsError)
            assert error.value.missing == expectation.missing_columns


def test_the_producer_opens_each_csv_key_once_in_key_order(ingestion: Ingestion) -> None:
    keys = [case.key for case in ingestion.cases.values() if case.expectation.outcome != "ignored"]
    assert ingestion.s3.opened == sorted(keys, key=lambda key: key.encode("utf-8"))


def test_the_totals_for_an_integration_test_are_what_the_producer_did(ingestion: Ingestion) -> None:
    objects = collections.Counter(STATE_OUTCOME[item.state] for item in ingestion.progress.values())
    objects["ignored"] = len(ingestion.cases) - len(ingestion.progress)
    rows = [ExpectedRow(outcome_row, outcome.route, outcome.reasons)
            for name in ingestion.cases
            for outcome_row, (_message, outcome) in enumerate(published(ingestion, name), start=1)]
    assert totals(EXPECTATIONS.values()) == {"objects": {outcome: objects[outcome] for outcome in OUTCOMES},
                                             "rows": count(rows)}


# -- the 10 MB field: streamed, never held --------------------------------------------------
def test_a_ten_megabyte_field_is_read_one_chunk_and_one_record_at_a_time() -> None:
    chunk_bytes = 64 * 1024
    limit = DEFAULT_MAX_RECORD_BYTES
    stream = make_corpus().stream(TEN_MB_CASE)  # made up piece by piece as it is read
    tracemalloc.start()
    try:
        records = iter(open_csv_object(stream, chunk_bytes=chunk_bytes))
        first = next(records)
        too_long = next(records)
        read_when_cut = stream.bytes_read
        rest = list(records)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert [record.source_row for record in (first, too_long, *rest)] == [1, 2, 3]
    assert first.malformed is False and rest[0].malformed is False
    assert too_long.malformed_reason == f"record longer than {limit} bytes"
    start = b"2,Ann,Lee,ann@example.com,555-0100,"
    assert too_long.raw_line == (start + b"x" * (limit - len(start))).decode("ascii")
    # The record is reported as soon as it passes the limit, not after its 10 MiB are read...
    assert read_when_cut <= limit + 2 * chunk_bytes
    # ...and the rest of it is read and dropped, never kept.
    assert stream.bytes_read > 10 * 1024 * 1024
    # Held at once, at most: the unread tail plus one chunk (up to limit + chunk), the cut
    # record and its decoded raw_line (limit each), and the stream's own piece (chunk).
    # Twice that is the bound; 10 MiB is over eight times it.
    assert peak < 2 * (3 * limit + 2 * chunk_bytes), f"peak {peak} bytes"
