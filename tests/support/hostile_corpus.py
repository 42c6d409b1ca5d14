"""The hostile corpus (`tests/hostile_corpus/`): its cases, their bytes and their expected outcomes.

A unit test runs every case through the producer's own code. An integration test can
upload the same cases and reconcile what the deployed pipeline did with them:

    from hostile_corpus import iter_corpus, totals

    cases = list(iter_corpus(prefix="hostile/"))
    for key, data, expectation in cases:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    ...
    expected = totals(case.expectation for case in cases)
    # expected["objects"]: objects per outcome (rows / rejected / skipped / ignored)
    # expected["rows"]: rows per class (usa / alerts / out_of_scope) over every object
    # expectation.counts: the same per object

The expectations hold for the contract's defaults: target country `USA` and
`max_record_bytes` 262144 (`index.json` records it). A deployment with other settings
routes the long-line cases, and the country rows, differently.

Every expectation file is checked as it is loaded: unknown keys, rows not numbered 1..n,
unsorted or unknown reason codes, counts that do not add up. A typo therefore fails
loudly instead of switching a check off.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Tuple

CORPUS_DIR = Path(__file__).resolve().parents[1] / "hostile_corpus"
INDEX_FILE = CORPUS_DIR / "index.json"
EXPECTED_SUFFIX = ".expected.json"

OUTCOMES: Tuple[str, ...] = ("rows", "rejected", "skipped", "ignored")
ROUTES: Tuple[str, ...] = ("usa", "alerts", "out_of_scope")
# Copied from CONTRACT.md, not imported from the code: the corpus states the contract.
KNOWN_COLUMNS: Tuple[str, ...] = ("customer_id", "first_name", "last_name", "email", "phone", "address", "city",
                                  "state", "zip_code", "country", "signup_date")
REQUIRED_COLUMNS: Tuple[str, ...] = ("customer_id", "first_name", "last_name", "email", "country", "signup_date")
REASON_CODES: Tuple[str, ...] = (
    "malformed_row",
    *(f"missing_{column}" for column in REQUIRED_COLUMNS),
    "invalid_customer_id", "invalid_email", "invalid_signup_date",
    "missing_state", "missing_zip_code", "invalid_state", "invalid_zip_code",
)
# What a row's "raw" may name: fields of the message in customers-raw that the contract or
# the message format defines (not `malformed_reason`, a free-text detail).
RAW_FIELDS = frozenset(KNOWN_COLUMNS) | {"malformed", "raw_line"}
# What a row's "output" may name: fields of the usa / alerts record that do not depend on
# where and when the object was ingested (source_uri, record_id and ingested_at do).
OUTPUT_FIELDS = {
    "usa": frozenset(KNOWN_COLUMNS),
    "alerts": frozenset(KNOWN_COLUMNS) | {"raw_line"},
}

_TOP_KEYS = {
    "rows": ({"outcome", "why", "rows", "counts"}, set()),
    "rejected": ({"outcome", "why", "message_contains"}, {"missing_columns"}),
    "skipped": ({"outcome", "why"}, set()),
    "ignored": ({"outcome", "why"}, set()),
}
_ROW_KEYS = {"source_row", "route", "reasons", "raw", "output", "raw_line_starts_with", "raw_line_utf8_bytes", "note"}


class CorpusError(ValueError):
    """An expectation file or the index is wrong (not the code under test)."""


@dataclass(frozen=True)
class ExpectedRow:
    """One data record: its route and sorted reasons, and optional exact values.

    `raw` is a subset of its message in `customers-raw` (what the producer publishes),
    `output` a subset of its usa or alerts record (what the pipeline writes). A too-long
    record's raw_line is checked by its start and its length instead of its 256 KiB text.
    """

    source_row: int
    route: str
    reasons: Tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    output: Mapping[str, Any] = field(default_factory=dict)
    raw_line_starts_with: Optional[str] = None
    raw_line_utf8_bytes: Optional[int] = None
    note: Optional[str] = None


@dataclass(frozen=True)
class Expectation:
    """What the contract says becomes of one object."""

    name: str
    covers: Tuple[str, ...]
    generator: Optional[str]
    outcome: str
    why: str
    rows: Tuple[ExpectedRow, ...] = ()
    counts: Optional[Mapping[str, Any]] = None
    missing_columns: Tuple[str, ...] = ()
    message_contains: Optional[str] = None

    @property
    def stored(self) -> bool:
        return self.generator is None


class CorpusCase(NamedTuple):
    key: str
    data: bytes
    expectation: Expectation


def load_index() -> Dict[str, Any]:
    index: Dict[str, Any] = json.loads(INDEX_FILE.read_text(encoding="utf-8"))
    return index


def load_expectations() -> List[Expectation]:
    """Every case of the index with its expectation, in index order; no object bytes are read."""
    index = load_index()
    bullets = set(index["bullets"])
    expectations = []
    for entry in index["cases"]:
        name = entry["name"]
        if unicodedata.normalize("NFC", name) != name:
            raise CorpusError(f"{name!r}: case names are NFC, as the S3 keys they become")
        unknown = set(entry["covers"]) - bullets
        if unknown or not entry["covers"]:
            raise CorpusError(f"{name}: covers unknown bullets {sorted(unknown)} or none")
        document = json.loads((CORPUS_DIR / (name + EXPECTED_SUFFIX)).read_text(encoding="utf-8"))
        expectations.append(parse_expectation(name, tuple(entry["covers"]), entry.get("generator"), document))
    return expectations


def parse_expectation(name: str, covers: Tuple[str, ...], generator: Optional[str],
                      document: Mapping[str, Any]) -> Expectation:
    outcome = document.get("outcome")
    if outcome not in _TOP_KEYS:
        raise CorpusError(f"{name}: outcome must be one of {OUTCOMES}, not {outcome!r}")
    required, optional = _TOP_KEYS[outcome]
    _check_keys(name, document, required, optional)
    why = document["why"]
    if not isinstance(why, str) or not why.strip():
        raise CorpusError(f"{name}: 'why' must say why")
    if outcome == "rejected":
        missing = tuple(document.get("missing_columns", ()))
        if any(column not in REQUIRED_COLUMNS for column in missing):
            raise CorpusError(f"{name}: missing_columns names a column that is not required: {missing}")
        if list(missing) != [column for column in REQUIRED_COLUMNS if column in missing]:
            raise CorpusError(f"{name}: missing_columns must follow the contract's order {REQUIRED_COLUMNS}")
        return Expectation(name, covers, generator, outcome, why, missing_columns=missing,
                           message_contains=str(document["message_contains"]))
    if outcome != "rows":
        return Expectation(name, covers, generator, outcome, why)
    rows = tuple(_parse_row(name, number, item) for number, item in enumerate(document["rows"], start=1))
    counts = count(rows)
    if document["counts"] != counts:
        raise CorpusError(f"{name}: counts {document['counts']} do not add up from the rows: {counts}")
    return Expectation(name, covers, generator, outcome, why, rows=rows, counts=counts)


def _parse_row(name: str, number: int, item: Mapping[str, Any]) -> ExpectedRow:
    where = f"{name} row {number}"
    _check_keys(where, item, {"source_row", "route"}, _ROW_KEYS)
    if item["source_row"] != number:
        raise CorpusError(f"{where}: source_row must be {number} (rows are listed in order, 1-based)")
    route = item["route"]
    if route not in ROUTES:
        raise CorpusError(f"{where}: route must be one of {ROUTES}")
    reasons = tuple(item.get("reasons", ()))
    if route == "alerts":
        if not reasons or list(reasons) != sorted(set(reasons)):
            raise CorpusError(f"{where}: an alert needs its reasons, sorted, each once: {reasons}")
        if any(reason not in REASON_CODES for reason in reasons):
            raise CorpusError(f"{where}: unknown reason code in {reasons}")
        if "malformed_row" in reasons and len(reasons) > 1:
            raise CorpusError(f"{where}: malformed_row stands alone")
    elif "reasons" in item:
        raise CorpusError(f"{where}: only alerts have reasons")
    raw = dict(item.get("raw", {}))
    if set(raw) - RAW_FIELDS:
        raise CorpusError(f"{where}: raw may name only {sorted(RAW_FIELDS)}")
    output = dict(item.get("output", {}))
    if output and route not in OUTPUT_FIELDS:
        raise CorpusError(f"{where}: an out_of_scope row has no output record")
    if set(output) - OUTPUT_FIELDS.get(route, frozenset()):
        raise CorpusError(f"{where}: output may name only {sorted(OUTPUT_FIELDS.get(route, ()))}")
    return ExpectedRow(number, route, reasons, raw, output, item.get("raw_line_starts_with"),
                       item.get("raw_line_utf8_bytes"), item.get("note"))


def _check_keys(where: str, item: Mapping[str, Any], required: Iterable[str], optional: Iterable[str]) -> None:
    missing = set(required) - set(item)
    unknown = set(item) - set(required) - set(optional)
    if missing or unknown:
        raise CorpusError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")


def count(rows: Iterable[ExpectedRow]) -> Dict[str, Any]:
    """Rows per class and alert rows per reason, in the shape of counts.ClassCounts.to_json_dict()."""
    per_route = dict.fromkeys(ROUTES, 0)
    reasons: Dict[str, int] = {}
    for row in rows:
        per_route[row.route] += 1
        for reason in row.reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {**per_route, "total": sum(per_route.values()), "reasons": dict(sorted(reasons.items()))}


def totals(expectations: Iterable[Expectation]) -> Dict[str, Any]:
    """Objects per outcome, and rows per class and per reason over all the objects that publish rows."""
    objects = dict.fromkeys(OUTCOMES, 0)
    rows: List[ExpectedRow] = []
    for expectation in expectations:
        objects[expectation.outcome] += 1
        rows.extend(expectation.rows)
    return {"objects": objects, "rows": count(rows)}


def make_corpus() -> ModuleType:
    """tests/hostile_corpus/make_corpus.py, which builds the generated cases (not a package)."""
    name = "hostile_corpus_make_corpus"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, CORPUS_DIR / "make_corpus.py")
    if spec is None or spec.loader is None:
        raise CorpusError("cannot load make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def case_bytes(expectation: Expectation) -> bytes:
    """The object's bytes: the stored file, or what its generator makes (10 MB for the big field)."""
    if expectation.stored:
        return (CORPUS_DIR / expectation.name).read_bytes()
    data: bytes = make_corpus().generate(expectation.name)
    return data


def iter_corpus(prefix: str = "") -> Iterator[CorpusCase]:
    """(key, bytes, expectation) of every case; the key is `prefix` + the case's name."""
    for expectation in load_expectations():
        yield CorpusCase(prefix + expectation.name, case_bytes(expectation), expectation)
