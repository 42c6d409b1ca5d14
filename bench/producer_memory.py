"""Memory of the producer's read path stays flat however large the object is.

    PYTHONPATH=src python bench/producer_memory.py [--rows 2000000]

Streams a generated CSV object (never materialised: a file-like object that produces
bytes on demand, as a boto3 StreamingBody does) through the producer's per-record work
(parse, build and encode the raw message) and prints the peak of Python allocations
for a baseline object and for one 20 times larger, and their ratio. Flat memory means a
ratio close to 1.0; reading the object whole would make it close to 20.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time
import tracemalloc
from typing import Iterator

from customer_pipeline.contract.csv_reader import open_csv_object
from customer_pipeline.contract.messages import RawMessage, encode_raw_message

HEADER = b"customer_id,first_name,last_name,email,phone,address,city,state,zip_code,country,signup_date\n"


class GeneratedObject(io.RawIOBase):
    """A read-only stream of `rows` CSV rows, produced chunk by chunk."""

    def __init__(self, rows: int) -> None:
        self._chunks = self._generate(rows)
        self._buffer = b""
        self.size = 0

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield HEADER
        batch = []
        for row in range(1, rows + 1):
            batch.append(b'%d,First%d,Last,user%d@example.com,555-0100,"1 Main St, Apt %d",Austin,TX,73301,USA,'
                         b"2024-02-29\n" % (row, row, row, row % 100))
            if len(batch) == 1000:
                yield b"".join(batch)
                batch = []
        yield b"".join(batch)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self.size += len(data)
        return data


def measure(rows: int) -> tuple:
    stream = GeneratedObject(rows)
    tracemalloc.start()
    started = time.perf_counter()
    count = 0
    now = dt.datetime.now(dt.timezone.utc)
    for record in open_csv_object(stream):  # type: ignore[arg-type]
        message = RawMessage.from_source_record(record, source_uri="s3://b/k.csv", source_etag='"e"', ingested_at=now)
        encode_raw_message(message)
        count += 1
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == rows, (count, rows)
    return stream.size, peak, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large object")
    args = parser.parse_args()
    baseline_rows = max(args.rows // 20, 1)
    base_bytes, base_peak, base_time = measure(baseline_rows)
    big_bytes, big_peak, big_time = measure(args.rows)
    print(f"baseline: {baseline_rows:>10,} rows {base_bytes / 2**20:8.1f} MiB  peak {base_peak / 2**20:6.2f} MiB  "
          f"{baseline_rows / base_time:9,.0f} rows/s")
    print(f"large:    {args.rows:>10,} rows {big_bytes / 2**20:8.1f} MiB  peak {big_peak / 2**20:6.2f} MiB  "
          f"{args.rows / big_time:9,.0f} rows/s")
    print(f"object size ratio {big_bytes / base_bytes:.1f}x, peak memory ratio {big_peak / base_peak:.2f}x")


if __name__ == "__main__":
    main()
