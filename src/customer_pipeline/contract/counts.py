"""What a source object should produce, counted with the reference implementation.

`verify.yml` compares these counts with what the pipeline wrote. Usage:

    python -m customer_pipeline.contract.counts [--target-country USA] FILE.csv...

prints one JSON object per file (`{"file": ..., "usa": ..., "alerts": ...,
"out_of_scope": ..., "total": ..., "reasons": {...}}`), or `{"file": ..., "error": ...}`
for an object that the pipeline skips or rejects whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, Iterable, List, Optional
from typing import Counter as CounterType

from customer_pipeline.contract.csv_reader import (
    DEFAULT_MAX_RECORD_BYTES,
    CsvObjectError,
    SourceRecord,
    open_csv_object,
)
from customer_pipeline.contract.rules import (
    DEFAULT_TARGET_COUNTRY,
    ROUTE_ALERTS,
    ROUTE_OUT_OF_SCOPE,
    ROUTE_USA,
    ROUTES,
    classify,
)


@dataclass
class ClassCounts:
    """Records per class, and alert records per reason code."""

    usa: int = 0
    alerts: int = 0
    out_of_scope: int = 0
    reasons: Dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.usa + self.alerts + self.out_of_scope

    def add(self, route: str, reasons: Iterable[str] = ()) -> None:
        if route == ROUTE_USA:
            self.usa += 1
        elif route == ROUTE_ALERTS:
            self.alerts += 1
        elif route == ROUTE_OUT_OF_SCOPE:
            self.out_of_scope += 1
        else:
            raise ValueError(f"unknown route {route!r}, expected one of {ROUTES}")
        for reason in reasons:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def to_json_dict(self) -> Dict[str, Any]:
        return {
            "usa": self.usa,
            "alerts": self.alerts,
            "out_of_scope": self.out_of_scope,
            "total": self.total,
            "reasons": dict(sorted(self.reasons.items())),
        }


def count_records(records: Iterable[SourceRecord], *, target_country: str = DEFAULT_TARGET_COUNTRY) -> ClassCounts:
    counts = ClassCounts()
    # typing's Counter: collections.Counter is subscriptable from Python 3.9 only, and nodes run 3.8.
    reasons: CounterType[str] = Counter()
    for record in records:
        verdict = classify(record.values, malformed=record.malformed, target_country=target_country)
        counts.add(verdict.route)
        reasons.update(verdict.reasons)
    counts.reasons = dict(reasons)
    return counts


def count_object(
    stream: BinaryIO,
    *,
    target_country: str = DEFAULT_TARGET_COUNTRY,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> ClassCounts:
    """Counts of one CSV object; raises `CsvObjectError` for a skipped or rejected one."""
    return count_records(
        open_csv_object(stream, max_record_bytes=max_record_bytes),
        target_country=target_country,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customer_pipeline.contract.counts",
        description="Count what source CSV files should produce, per class and reason.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--target-country", default=DEFAULT_TARGET_COUNTRY)
    args = parser.parse_args(argv)
    for path in args.files:
        with open(path, "rb") as stream:
            try:
                result: Dict[str, Any] = count_object(stream, target_country=args.target_country).to_json_dict()
            except CsvObjectError as error:
                result = {"error": str(error)}
        print(json.dumps({"file": path, **result}, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
