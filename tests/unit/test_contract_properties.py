"""Properties of the reader and the rules over generated inputs (needs hypothesis)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Dict, List, Optional

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from customer_pipeline.contract.csv_reader import CsvObjectError, read_records  # noqa: E402
from customer_pipeline.contract.rules import KNOWN_COLUMNS, REASON_CODES, UsaRecord, classify, process  # noqa: E402

FAST = settings(max_examples=100, deadline=None)
# Text the contract cares about: CSV specials, ASCII and Unicode spaces, odd digits.
TRICKY = st.text(
    alphabet=st.sampled_from(
        list('a,"\r\n\t @.-0123456789Uusa') + ["\u00a0", "\u2003", "\u0661", "\uff11", "é", "🙂", "\x0b", "\x0c"]
    ),
    max_size=12,
)


def _write(rows: List[List[str]], terminator: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=terminator, quoting=csv.QUOTE_ALL)
    writer.writerow(KNOWN_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@FAST
@given(
    rows=st.lists(st.lists(TRICKY, min_size=11, max_size=11), max_size=5),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_what_python_csv_writes_quoted_reads_back_unchanged(rows: List[List[str]], terminator: str) -> None:
    records = list(read_records(io.BytesIO(_write(rows, terminator))))
    assert [[record.values[column] for column in KNOWN_COLUMNS] for record in records] == rows
    assert [record.source_row for record in records] == list(range(1, len(rows) + 1))


@FAST
@given(
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xef\xbb", b"\xef", b"\n"]),
    data=st.binary(max_size=300),
    chunk_bytes=st.integers(min_value=1, max_value=17),
)
def test_any_bytes_read_the_same_whatever_the_chunk_size(prefix: bytes, data: bytes, chunk_bytes: int) -> None:
    header = b"customer_id,first_name,last_name,email,country,signup_date\n"

    def read(chunk: int) -> object:
        try:
            return list(read_records(io.BytesIO(prefix + header + data), chunk_bytes=chunk, max_record_bytes=64))
        except CsvObjectError as error:
            return repr(error)

    assert read(chunk_bytes) == read(1 << 20)


@FAST
@given(values=st.fixed_dictionaries({column: st.one_of(st.none(), TRICKY) for column in KNOWN_COLUMNS}))
def test_every_record_lands_in_exactly_one_consistent_class(values: Dict[str, Optional[str]]) -> None:
    verdict = classify(values)
    assert set(verdict.reasons) <= set(REASON_CODES)
    assert list(verdict.reasons) == sorted(set(verdict.reasons))
    assert (verdict.route == "alerts") == bool(verdict.reasons)
    outcome = process(
        values,
        source_uri="s3://b/k.csv",
        source_row=1,
        record_id="r",
        ingested_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    )
    assert outcome.route == verdict.route
    if outcome.route == "usa":
        assert isinstance(outcome.record, UsaRecord)
        assert 0 < outcome.record.customer_id < 2**63
