"""The sample CSV generator: deterministic, large enough, and covering the contract."""

from __future__ import annotations

import io

import pytest

from customer_pipeline.contract.counts import count_object
from customer_pipeline.contract.csv_reader import read_records
from customer_pipeline.contract.rules import REASON_CODES
from customer_pipeline.contract.sample_data import generate_bytes, main

ROWS = 10_000


@pytest.fixture(scope="module")
def sample() -> bytes:
    return generate_bytes(ROWS)


def test_same_arguments_give_the_same_bytes(sample: bytes) -> None:
    assert generate_bytes(ROWS) == sample
    assert generate_bytes(1_000, 7) == generate_bytes(1_000, 7)
    assert generate_bytes(1_000, 7) != generate_bytes(1_000, 8)


def test_the_file_has_the_requested_data_rows_and_every_class_and_reason(sample: bytes) -> None:
    counts = count_object(io.BytesIO(sample))
    assert counts.total == ROWS
    assert set(counts.reasons) == set(REASON_CODES)
    assert 0.55 * ROWS <= counts.usa <= 0.65 * ROWS
    assert 0.15 * ROWS <= counts.out_of_scope <= 0.25 * ROWS
    assert 0.15 * ROWS <= counts.alerts <= 0.25 * ROWS


def test_the_file_exercises_the_reader(sample: bytes) -> None:
    lines = sample.split(b"\n")
    assert sum(1 for line in lines[:-1] if not line.strip()) >= 3
    assert lines[-1] == b""
    records = list(read_records(io.BytesIO(sample)))
    addresses = [record.values["address"] or "" for record in records]
    assert any("," in address for address in addresses)
    assert any("\n" in address for address in addresses)
    assert any('"' in address for address in addresses)
    assert any(record.malformed for record in records)
    assert [record.source_row for record in records] == list(range(1, ROWS + 1))


def test_the_command_writes_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "files" / "customers.csv"
    assert main(["--rows", "300", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_bytes() == generate_bytes(300, 3)
    assert not (tmp_path / "files" / "customers.csv.partial").exists()
