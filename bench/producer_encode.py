"""The producer's per-row work: reading the CSV, then making each raw message, old path and lean one.

    PYTHONPATH=src python bench/producer_encode.py [--rows 200000]      (make bench)

No services: the generated object (the sample data's mix) is parsed from memory. It prints
rows/s of three passes over the same rows, in the same run: reading alone (the ceiling), read
plus the reference path (RawMessage.from_source_record, then message_key and
encode_raw_message, as the producer did before) and read plus RawMessageEncoder (what the
producer does now), with each one's share of the reading rate. It also checks that both paths
give the same bytes for every row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from typing import Callable, Iterable, Tuple

from customer_pipeline.contract.csv_reader import SourceRecord, open_csv_object
from customer_pipeline.contract.messages import RawMessage, RawMessageEncoder, encode_raw_message
from customer_pipeline.contract.sample_data import generate_bytes

URI, ETAG = "s3://customers/incoming/customers.csv", '"9b2cf535f27731c974343645a3985328"'


def reference(record: SourceRecord, when: dt.datetime) -> Tuple[bytes, bytes]:
    message = RawMessage.from_source_record(record, source_uri=URI, source_etag=ETAG, ingested_at=when)
    return message.key, encode_raw_message(message)


def rate(body: bytes, rows: int, work: Callable[[Iterable[SourceRecord]], None]) -> float:
    started = time.perf_counter()
    work(open_csv_object(io.BytesIO(body)))
    return rows / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    body = generate_bytes(args.rows)
    encoder = RawMessageEncoder(URI, ETAG)
    now = dt.datetime.now(dt.timezone.utc)
    for record in open_csv_object(io.BytesIO(body)):
        if encoder.encode(record, now) != reference(record, now):
            raise SystemExit("the lean encoder differs from the reference path at row %d" % record.source_row)

    def read(records: Iterable[SourceRecord]) -> None:
        for _ in records:
            pass

    def old(records: Iterable[SourceRecord]) -> None:
        for record in records:
            reference(record, dt.datetime.now(dt.timezone.utc))

    def lean(records: Iterable[SourceRecord]) -> None:
        for record in records:
            encoder.encode(record, dt.datetime.now(dt.timezone.utc))

    ceiling = rate(body, args.rows, read)
    print("producer per-row work, %d rows (one run, this machine; same bytes from both paths):" % args.rows)
    print("| what | rows/s | share of reading alone |\n| --- | ---: | ---: |")
    for name, work in (("read the CSV alone (ceiling)", read), ("read + reference path (before)", old),
                       ("read + RawMessageEncoder (now)", lean)):
        measured = ceiling if work is read else rate(body, args.rows, work)
        print("| %s | %.0f | %.2f |" % (name, measured, measured / ceiling))
    return 0


if __name__ == "__main__":
    sys.exit(main())
