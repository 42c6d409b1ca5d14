"""The customer record contract as plain Python: the reference implementation.

`verify.yml` counts with it and the tests hold the Spark job's expressions to it, so
every rule lives here once. The contract's definitions are deliberately narrower than
Python's defaults: "whitespace" is the six ASCII characters of `WHITESPACE` (so
`str.strip()` without arguments, which also strips U+00A0 and friends, is never used on
values), "digit" is ASCII `0`-`9` (so `str.isdigit()` and `int()`, which accept
Arabic-Indic and fullwidth digits, are never trusted on their own), and every
case-insensitive comparison folds ASCII letters only (so a dotless `ı` or a long `ſ`,
which Unicode upper-cases to `I` and `S`, never matches a code).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

KNOWN_COLUMNS: Tuple[str, ...] = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "city",
    "state",
    "zip_code",
    "country",
    "signup_date",
)
REQUIRED_COLUMNS: Tuple[str, ...] = (
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "country",
    "signup_date",
)
OPTIONAL_COLUMNS: Tuple[str, ...] = tuple(c for c in KNOWN_COLUMNS if c not in REQUIRED_COLUMNS)

WHITESPACE = " \t\r\n\x0b\x0c"
DEFAULT_TARGET_COUNTRY = "USA"

ROUTE_USA = "usa"
ROUTE_ALERTS = "alerts"
ROUTE_OUT_OF_SCOPE = "out_of_scope"
ROUTES: Tuple[str, ...] = (ROUTE_USA, ROUTE_ALERTS, ROUTE_OUT_OF_SCOPE)

MALFORMED_ROW = "malformed_row"
INVALID_CUSTOMER_ID = "invalid_customer_id"
INVALID_EMAIL = "invalid_email"
INVALID_SIGNUP_DATE = "invalid_signup_date"
MISSING_STATE = "missing_state"
MISSING_ZIP_CODE = "missing_zip_code"
INVALID_STATE = "invalid_state"
INVALID_ZIP_CODE = "invalid_zip_code"

# In the order the rules run; alert records carry them sorted instead.
REASON_CODES: Tuple[str, ...] = (
    MALFORMED_ROW,
    *(f"missing_{column}" for column in REQUIRED_COLUMNS),
    INVALID_CUSTOMER_ID,
    INVALID_EMAIL,
    INVALID_SIGNUP_DATE,
    MISSING_STATE,
    MISSING_ZIP_CODE,
    INVALID_STATE,
    INVALID_ZIP_CODE,
)

US_STATE_CODES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE"
    " NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC".split()
)
USA = "USA"
USA_ALIASES = frozenset({"us", "usa", "u.s.", "u.s.a.", "united states", "united states of america"})
MAX_CUSTOMER_ID = 2**63 - 1
RECORD_ID_HEX_CHARS = 32

_W = "[^@ \t\r\n\x0b\x0c"
_EMAIL = re.compile(_W + "]+@" + _W + ".]+(?:\\." + _W + ".]+)+")
_DIGITS = re.compile("[0-9]+")
_DATE = re.compile("([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ZIP_CODE = re.compile("[0-9]{5}(?:-[0-9]{4})?")
_STATE = re.compile("[A-Za-z]{2}")
_WHITESPACE_RUN = re.compile("[ \t\r\n\x0b\x0c]+")
_ASCII_UPPERCASE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TO_ASCII_LOWER = str.maketrans(_ASCII_UPPERCASE, _ASCII_UPPERCASE.lower())
_TO_ASCII_UPPER = str.maketrans(_ASCII_UPPERCASE.lower(), _ASCII_UPPERCASE)

Values = Mapping[str, Optional[str]]


def trim(value: str) -> str:
    """Remove the contract's whitespace (ASCII only) from both ends."""
    return value.strip(WHITESPACE)


def present(value: Optional[str]) -> Optional[str]:
    """The trimmed value, or None when it is missing (absent, or empty once trimmed)."""
    if value is None:
        return None
    trimmed = value.strip(WHITESPACE)
    return trimmed if trimmed else None


def ascii_lower(value: str) -> str:
    return value.translate(_TO_ASCII_LOWER)


def ascii_upper(value: str) -> str:
    return value.translate(_TO_ASCII_UPPER)


def parse_customer_id(value: str) -> Optional[int]:
    """The id of a trimmed value, or None when it breaks rule 3."""
    if not _DIGITS.fullmatch(value):
        return None
    significant = value.lstrip("0")
    # A length check first: int() refuses strings past 4300 digits on recent Pythons.
    if not significant or len(significant) > len(str(MAX_CUSTOMER_ID)):
        return None
    number = int(significant)
    return number if number <= MAX_CUSTOMER_ID else None


def is_valid_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def parse_signup_date(value: str) -> Optional[dt.date]:
    """The date of a trimmed `YYYY-MM-DD` value, or None when it breaks rule 5.

    Year 0000 is refused: the output column is a date and Python's (like most
    systems') calendar starts at year 1.
    """
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def is_valid_state(value: str) -> bool:
    return _STATE.fullmatch(value) is not None and ascii_upper(value) in US_STATE_CODES


def is_valid_zip_code(value: str) -> bool:
    return _ZIP_CODE.fullmatch(value) is not None


def country_key(value: str) -> str:
    """What two country spellings must share to be the same country (rule 6)."""
    return ascii_lower(_WHITESPACE_RUN.sub(" ", trim(value)))


def normalise_country(value: Optional[str]) -> Optional[str]:
    """Rule 6: `USA` for its spellings, otherwise the trimmed value; None when missing."""
    trimmed = present(value)
    if trimmed is None:
        return None
    return USA if country_key(trimmed) in USA_ALIASES else trimmed


def target_name(target_country: str) -> str:
    """The `country` value the target class carries: `USA` by default."""
    target = normalise_country(target_country)
    if target is None:
        raise ValueError("target country must not be empty")
    return target


@functools.lru_cache(maxsize=16)
def _target_key(target_country: str) -> str:
    return country_key(target_name(target_country))


def is_target_country(normalised: Optional[str], target_country: str) -> bool:
    """Whether a normalised country is the deployment's target.

    The target goes through rule 6 too, so `usa` or `United States` name the default;
    another target matches its spellings case-insensitively with whitespace collapsed.
    """
    if normalised is None:
        return False
    return country_key(normalised) == _target_key(target_country)


def validate(
    values: Values,
    *,
    malformed: bool = False,
    target_country: str = DEFAULT_TARGET_COUNTRY,
) -> Tuple[str, ...]:
    """The reason codes of one record, in rule order; empty when the record is valid.

    `values` maps known columns to their raw (untrimmed) strings; a column absent from
    the header may be left out or map to None. Checks of form (rules 3, 4, 5 and the
    `invalid_*` half of rule 7) run on present values only: a missing value is reported
    once, as `missing_*`.
    """
    return _evaluate(values, malformed, target_country)[0]


def _evaluate(values: Values, malformed: bool, target_country: str) -> Tuple[Tuple[str, ...], Optional[str], bool]:
    """Reasons in rule order, normalised country, and whether it is the target."""
    if malformed:
        return (MALFORMED_ROW,), None, False
    clean = {column: present(values.get(column)) for column in KNOWN_COLUMNS}
    reasons: List[str] = [f"missing_{column}" for column in REQUIRED_COLUMNS if clean[column] is None]
    customer_id = clean["customer_id"]
    if customer_id is not None and parse_customer_id(customer_id) is None:
        reasons.append(INVALID_CUSTOMER_ID)
    email = clean["email"]
    if email is not None and not is_valid_email(email):
        reasons.append(INVALID_EMAIL)
    signup_date = clean["signup_date"]
    if signup_date is not None and parse_signup_date(signup_date) is None:
        reasons.append(INVALID_SIGNUP_DATE)
    country = normalise_country(clean["country"])
    in_target = is_target_country(country, target_country)
    if in_target:
        state = clean["state"]
        zip_code = clean["zip_code"]
        if state is None:
            reasons.append(MISSING_STATE)
        if zip_code is None:
            reasons.append(MISSING_ZIP_CODE)
        if state is not None and not is_valid_state(state):
            reasons.append(INVALID_STATE)
        if zip_code is not None and not is_valid_zip_code(zip_code):
            reasons.append(INVALID_ZIP_CODE)
    return tuple(reasons), country, in_target


@dataclass(frozen=True)
class Classification:
    """Where one record goes: `route` is one of ROUTES, `reasons` sorted."""

    route: str
    reasons: Tuple[str, ...]
    country: Optional[str]


def classify(
    values: Values,
    *,
    malformed: bool = False,
    target_country: str = DEFAULT_TARGET_COUNTRY,
) -> Classification:
    reasons, country, in_target = _evaluate(values, malformed, target_country)
    if reasons:
        route = ROUTE_ALERTS
    elif in_target:
        route = ROUTE_USA
    else:
        route = ROUTE_OUT_OF_SCOPE
    return Classification(route=route, reasons=tuple(sorted(reasons)), country=country)


def normalise_etag(etag: str) -> str:
    """S3 quotes ETags (`"abc"`) in some answers and not in others; ids use it bare."""
    if len(etag) >= 2 and etag.startswith('"') and etag.endswith('"'):
        return etag[1:-1]
    return etag


def record_id(source_uri: str, etag: str, source_row: int) -> str:
    """The id of one source row: the same row of the same object always gets it.

    An object is known by its key and ETag, so the ETag is part of the id: a key
    overwritten with new content yields new ids. The id is the first 32 hex digits
    (128 bits) of the SHA-256 of the UTF-8 of the compact JSON array
    `[source_uri, etag, source_row]` (ETag without its surrounding quotes, no spaces,
    non-ASCII characters as themselves), e.g. `["s3://b/k.csv","abc",1]`.
    """
    canonical = record_id_prefix(source_uri, etag) + "%d]" % int(source_row)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:RECORD_ID_HEX_CHARS]


def lower_email(value: str) -> str:
    """str.lower(), except that a capital sigma always becomes σ (its simple lowercase mapping),
    never the word-final ς. Python and Java decide "final" differently (Python: no digit between
    the letters; Java: within the same word), so the job's native lower-casing and this reference
    would disagree on `b0Σ`; an address is not a word, so both take the simple mapping."""
    return value.replace("\u03a3", "\u03c3").lower()


def record_id_prefix(source_uri: str, etag: str) -> str:
    """The canonical text of record_id up to the row number, the same for every row of one
    version of an object: `["s3://b/k.csv","abc",`. verify's Spark step appends the row and
    `]` to tell which rows in HDFS come from the object's current version."""
    return json.dumps([source_uri, normalise_etag(etag)], ensure_ascii=False, separators=(",", ":"))[:-1] + ","


def format_timestamp(value: dt.datetime) -> str:
    """ISO-8601 UTC with microseconds and `Z`: always 27 characters.

    Spark reads it with the pattern `yyyy-MM-dd'T'HH:mm:ss.SSSSSSX`.
    """
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO-8601 timestamp with `Z` or an offset, as an aware UTC datetime."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return parsed.astimezone(dt.timezone.utc)


def utc(value: dt.datetime) -> dt.datetime:
    """`value` in UTC; naive datetimes are refused rather than guessed."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("ingested_at must be timezone-aware (UTC)")
    return value.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class UsaRecord:
    """One row of the USA dataset and topic `customers-usa`."""

    customer_id: int
    first_name: str
    last_name: str
    email: str
    phone: Optional[str]
    address: Optional[str]
    city: Optional[str]
    state: str
    zip_code: str
    country: str
    signup_date: dt.date
    source_uri: str
    source_row: int
    record_id: str
    ingested_at: dt.datetime

    def to_json_dict(self) -> Dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "city": self.city,
            "state": self.state,
            "zip_code": self.zip_code,
            "country": self.country,
            "signup_date": self.signup_date.isoformat(),
            "source_uri": self.source_uri,
            "source_row": self.source_row,
            "record_id": self.record_id,
            "ingested_at": format_timestamp(self.ingested_at),
        }


@dataclass(frozen=True)
class AlertRecord:
    """One row of the alerts dataset and topic `customers-alerts`."""

    customer_id: Optional[str]
    first_name: Optional[str]
    last_name: Optional[str]
    email: Optional[str]
    phone: Optional[str]
    address: Optional[str]
    city: Optional[str]
    state: Optional[str]
    zip_code: Optional[str]
    country: Optional[str]
    signup_date: Optional[str]
    raw_line: Optional[str]
    alert_reasons: Tuple[str, ...]
    source_uri: str
    source_row: int
    record_id: str
    ingested_at: dt.datetime

    def to_json_dict(self) -> Dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "address": self.address,
            "city": self.city,
            "state": self.state,
            "zip_code": self.zip_code,
            "country": self.country,
            "signup_date": self.signup_date,
            "raw_line": self.raw_line,
            "alert_reasons": list(self.alert_reasons),
            "source_uri": self.source_uri,
            "source_row": self.source_row,
            "record_id": self.record_id,
            "ingested_at": format_timestamp(self.ingested_at),
        }


OutputRecord = Union[UsaRecord, AlertRecord]


@dataclass(frozen=True)
class Outcome:
    """A classified record and what it becomes; `record` is None for out_of_scope."""

    route: str
    reasons: Tuple[str, ...]
    record: Optional[OutputRecord]


def process(
    values: Values,
    *,
    source_uri: str,
    source_row: int,
    record_id: str,
    ingested_at: dt.datetime,
    malformed: bool = False,
    raw_line: Optional[str] = None,
    target_country: str = DEFAULT_TARGET_COUNTRY,
) -> Outcome:
    """Classify one record and build its output record, as the Spark job does.

    `raw_line` is used only for a malformed record (the contract gives other alerts a
    null `raw_line`), and a malformed record's columns are all null whatever `values`
    holds, since its fields cannot be matched to the header.
    """
    verdict = classify(values, malformed=malformed, target_country=target_country)
    ingested_at = utc(ingested_at)
    if verdict.route == ROUTE_OUT_OF_SCOPE:
        return Outcome(verdict.route, verdict.reasons, None)
    if verdict.route == ROUTE_ALERTS:
        clean: Dict[str, Optional[str]] = {
            column: None if malformed else present(values.get(column)) for column in KNOWN_COLUMNS
        }
        alert = AlertRecord(
            customer_id=clean["customer_id"],
            first_name=clean["first_name"],
            last_name=clean["last_name"],
            email=clean["email"],
            phone=clean["phone"],
            address=clean["address"],
            city=clean["city"],
            state=clean["state"],
            zip_code=clean["zip_code"],
            country=clean["country"],
            signup_date=clean["signup_date"],
            raw_line=raw_line if malformed else None,
            alert_reasons=verdict.reasons,
            source_uri=source_uri,
            source_row=source_row,
            record_id=record_id,
            ingested_at=ingested_at,
        )
        return Outcome(verdict.route, verdict.reasons, alert)
    # A record routed to usa passed every rule, so each parse below succeeds.
    customer_id = parse_customer_id(_required(values, "customer_id"))
    signup_date = parse_signup_date(_required(values, "signup_date"))
    if customer_id is None or signup_date is None:
        raise AssertionError("a record routed to usa failed to parse")
    usa = UsaRecord(
        customer_id=customer_id,
        first_name=_required(values, "first_name"),
        last_name=_required(values, "last_name"),
        email=lower_email(_required(values, "email")),
        phone=present(values.get("phone")),
        address=present(values.get("address")),
        city=present(values.get("city")),
        state=ascii_upper(_required(values, "state")),
        zip_code=_required(values, "zip_code"),
        country=target_name(target_country),
        signup_date=signup_date,
        source_uri=source_uri,
        source_row=source_row,
        record_id=record_id,
        ingested_at=ingested_at,
    )
    return Outcome(verdict.route, verdict.reasons, usa)


def _required(values: Values, column: str) -> str:
    value = present(values.get(column))
    if value is None:
        raise ValueError(f"{column} is missing")
    return value
