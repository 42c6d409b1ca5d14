"""The customer record contract as native Spark SQL expressions.

The same rules as `contract.rules` (the pure-Python reference), written as Column expressions
so the job runs them inside the JVM: no Python UDF, no pandas UDF, no row ever crosses
to a Python worker. A property-based test holds the two implementations equal.

Traps of Spark's defaults that the expressions below avoid on purpose:

- `trim` strips spaces only, and `\\s` in Java regexes is not the contract's set: every
  whitespace test uses the explicit class `WS` (space, tab, CR, LF, VT, FF).
- `$` in a Java regex also matches before a final line terminator, and Java counts
  U+0085, U+2028 and U+2029 as line terminators (`"12345\\u2028"` would pass `^...$`):
  patterns are anchored with `\\A` and `\\z`, which mean the ends of the input only.
- `lower`/`upper` are Unicode-aware (`ı`, `ſ`, `K` Kelvin fold onto ASCII letters):
  comparisons fold A-Z only, with `translate`, as the reference does.
- `to_date(s, 'yyyy-MM-dd')` throws `SparkUpgradeException` for `2023-2-1` under the
  default `timeParserPolicy` and accepts text after the date under others: dates are
  checked with a 4-2-2 digit regex, then built with `make_date`, which yields null for
  an impossible date. `make_date` accepts year 0, which the reference refuses, so year
  `0000` is refused explicitly.
- `make_date` and the casts raise instead of returning null when ANSI mode is on: the
  job runs with `spark.sql.ansi.enabled=false` (see `REQUIRED_SQL_CONF`).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from pyspark.sql import Column
from pyspark.sql import functions as F

from customer_pipeline.contract import rules as contract
from customer_pipeline.contract.messages import INGESTED_AT_SPARK_PATTERN

# The contract's whitespace as a Java regex character class body.
WS = " \\t\\r\\n\\x0B\\x0C"
# The same six characters themselves, for `btrim`.
WS_CHARACTERS = " \t\r\n\x0b\x0c"
_WS_RUN = f"[{WS}]+"
_DIGITS = "\\A[0-9]+\\z"
_LEADING_ZEROS = "\\A0+"
_EMAIL = f"\\A[^@{WS}]+@[^@{WS}.]+(\\.[^@{WS}.]+)+\\z"
_DATE = "\\A[0-9]{4}-[0-9]{2}-[0-9]{2}\\z"
_ZIP_CODE = "\\A[0-9]{5}(-[0-9]{4})?\\z"
_STATE = "\\A[A-Za-z]{2}\\z"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()
_MAX_CUSTOMER_ID = str(contract.MAX_CUSTOMER_ID)

# SQL settings the expressions rely on; the job sets them on its session.
REQUIRED_SQL_CONF: Dict[str, str] = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
}

# Output columns and their Spark SQL types, in the order of the contract's tables
# (and of `contract.UsaRecord` / `contract.AlertRecord`).
USA_COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("customer_id", "BIGINT"),
    ("first_name", "STRING"),
    ("last_name", "STRING"),
    ("email", "STRING"),
    ("phone", "STRING"),
    ("address", "STRING"),
    ("city", "STRING"),
    ("state", "STRING"),
    ("zip_code", "STRING"),
    ("country", "STRING"),
    ("signup_date", "DATE"),
    ("source_uri", "STRING"),
    ("source_row", "INT"),
    ("record_id", "STRING"),
    ("ingested_at", "TIMESTAMP"),
)
ALERT_COLUMNS: Tuple[Tuple[str, str], ...] = (
    *((column, "STRING") for column in contract.KNOWN_COLUMNS),
    ("raw_line", "STRING"),
    ("alert_reasons", "ARRAY<STRING>"),
    ("source_uri", "STRING"),
    ("source_row", "INT"),
    ("record_id", "STRING"),
    ("ingested_at", "TIMESTAMP"),
)
USA_SCHEMA_DDL = ", ".join(f"{name} {kind}" for name, kind in USA_COLUMNS)
ALERT_SCHEMA_DDL = ", ".join(f"{name} {kind}" for name, kind in ALERT_COLUMNS)

# Topic messages: timestamps as ISO-8601 UTC with microseconds and `Z` (the same 27
# characters as `contract.format_timestamp`), dates as YYYY-MM-DD, and null fields
# written as null rather than dropped (Spark drops them by default).
TO_JSON_OPTIONS: Dict[str, str] = {
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSX",
    "dateFormat": "yyyy-MM-dd",
    "timeZone": "UTC",
    "ignoreNullFields": "false",
}

ROUTE_COLUMN = "route"
REASONS_COLUMN = "reasons"
# Working columns of a classified frame (never written): names no raw message field has.
CLEAN_PREFIX = "__clean_"
TARGET_COLUMN = "__is_target"


def trim(value: Column) -> Column:
    # btrim strips a set of characters without a regex: a fifth of the classification's
    # time went to regex trims (200,000 rows: 1.4 s of 3.7 s, measured on the sandbox).
    return F.btrim(value, F.lit(WS_CHARACTERS))


def present(value: Column) -> Column:
    """The trimmed value, or null when it is missing (null, or empty once trimmed)."""
    trimmed = trim(value)
    return F.when(trimmed != F.lit(""), trimmed)


def ascii_lower(value: Column) -> Column:
    return F.translate(value, _UPPER, _LOWER)


def ascii_upper(value: Column) -> Column:
    return F.translate(value, _LOWER, _UPPER)


def customer_id_is_valid(trimmed: Column) -> Column:
    """Rule 3 on a present value: ASCII digits, not zero, at most 2**63-1.

    The digits are compared as a string once leading zeros are gone, so ids of any
    length are judged without an overflowing cast: fewer than 19 digits always fit, and
    19-digit strings order like their numbers.
    """
    significant = F.regexp_replace(trimmed, _LEADING_ZEROS, "")
    size = F.length(significant)
    return (
        trimmed.rlike(_DIGITS)
        & (size > 0)
        & ((size < len(_MAX_CUSTOMER_ID)) | ((size == len(_MAX_CUSTOMER_ID)) & (significant <= _MAX_CUSTOMER_ID)))
    )


def customer_id_value(trimmed: Column) -> Column:
    """The id of a value that passed rule 3 (the cast is safe then)."""
    return F.regexp_replace(trimmed, _LEADING_ZEROS, "").cast("long")


def email_is_valid(trimmed: Column) -> Column:
    return trimmed.rlike(_EMAIL)


def signup_date_value(trimmed: Column) -> Column:
    """The date of a `YYYY-MM-DD` value naming a real day, else null (rule 5)."""
    shaped = trimmed.rlike(_DATE) & (F.substring(trimmed, 1, 4) != F.lit("0000"))
    made = F.make_date(
        F.substring(trimmed, 1, 4).cast("int"),
        F.substring(trimmed, 6, 2).cast("int"),
        F.substring(trimmed, 9, 2).cast("int"),
    )
    return F.when(shaped, made)


def country_key(trimmed: Column) -> Column:
    """What two country spellings share when they are the same country (rule 6)."""
    return ascii_lower(F.regexp_replace(trimmed, _WS_RUN, " "))


def state_is_valid(trimmed: Column) -> Column:
    return trimmed.rlike(_STATE) & ascii_upper(trimmed).isin(*sorted(contract.US_STATE_CODES))


def zip_code_is_valid(trimmed: Column) -> Column:
    return trimmed.rlike(_ZIP_CODE)


def _reason(condition: Column, code: str) -> Column:
    return F.when(condition, F.lit(code))


def clean_name(column: str) -> str:
    """The name of the column holding `column`'s present value (see `clean_columns`)."""
    return f"{CLEAN_PREFIX}{column}"


def clean_columns() -> List[Column]:
    """Every known column's present value (trimmed; null when missing), as its own column.

    The rules and both outputs read these columns, so each value is trimmed once per
    row. Inlined into every rule instead, the trims ran dozens of times per row (Spark does
    not share them across the branches of `when`): classifying 200,000 rows took 6.8 s
    of the sandbox's two cores. Spark keeps them a projection of their own, since an
    expression that is not cheap and is read more than once is not inlined
    (CollapseProject, Spark 3.3 on).
    """
    return [present(F.col(column)).alias(clean_name(column)) for column in contract.KNOWN_COLUMNS]


def _clean() -> Dict[str, Column]:
    return {column: F.col(clean_name(column)) for column in contract.KNOWN_COLUMNS}


def target_column(target_country: str = contract.DEFAULT_TARGET_COUNTRY) -> Column:
    """Whether the record's country is the target country (rule 6), on `clean_columns`."""
    clean = _clean()
    target_key = contract.country_key(contract.target_name(target_country))
    raw_key = country_key(clean["country"])
    # The key of the normalised country: `USA` for every alias of rule 6.
    normalised_key = F.when(raw_key.isin(*sorted(contract.USA_ALIASES)), F.lit(contract.USA.lower())).otherwise(raw_key)
    return (clean["country"].isNotNull() & (normalised_key == F.lit(target_key))).alias(TARGET_COLUMN)


def classify_columns() -> Dict[str, Column]:
    """`route` and sorted `reasons` of a raw message, on `clean_columns` and `target_column`."""
    clean = _clean()
    is_target = F.col(TARGET_COLUMN)
    customer_id = clean["customer_id"]
    state = clean["state"]
    zip_code = clean["zip_code"]
    checks: List[Column] = [
        *(_reason(clean[column].isNull(), f"missing_{column}") for column in contract.REQUIRED_COLUMNS),
        _reason(customer_id.isNotNull() & ~customer_id_is_valid(customer_id), contract.INVALID_CUSTOMER_ID),
        _reason(clean["email"].isNotNull() & ~email_is_valid(clean["email"]), contract.INVALID_EMAIL),
        _reason(
            clean["signup_date"].isNotNull() & signup_date_value(clean["signup_date"]).isNull(),
            contract.INVALID_SIGNUP_DATE,
        ),
        _reason(is_target & state.isNull(), contract.MISSING_STATE),
        _reason(is_target & zip_code.isNull(), contract.MISSING_ZIP_CODE),
        _reason(is_target & state.isNotNull() & ~state_is_valid(state), contract.INVALID_STATE),
        _reason(is_target & zip_code.isNotNull() & ~zip_code_is_valid(zip_code), contract.INVALID_ZIP_CODE),
    ]
    # Every `when` above is null when its rule passes; dropping the nulls leaves the
    # reasons, sorted like the reference's (codes are ASCII, so byte order is code order).
    found = F.array_sort(F.array_compact(F.array(*checks)))
    # The producer flags malformed records; rule 1 stands alone. A message without the
    # flag counts as well-formed, as `messages.decode_raw_message` reads it.
    malformed = F.coalesce(F.col("malformed"), F.lit(False))
    reasons = F.when(malformed, F.array(F.lit(contract.MALFORMED_ROW))).otherwise(found)
    route = (
        F.when(F.size(reasons) > 0, F.lit(contract.ROUTE_ALERTS))
        .when(is_target, F.lit(contract.ROUTE_USA))
        .otherwise(F.lit(contract.ROUTE_OUT_OF_SCOPE))
    )
    return {ROUTE_COLUMN: route, REASONS_COLUMN: reasons}


def ingested_at_value() -> Column:
    return F.to_timestamp(F.col("ingested_at"), INGESTED_AT_SPARK_PATTERN)


def usa_columns(target_country: str = contract.DEFAULT_TARGET_COUNTRY) -> List[Column]:
    """The USA dataset's columns, for rows whose route is `usa` (every rule passed)."""
    clean = _clean()
    values: Dict[str, Column] = {
        "customer_id": customer_id_value(clean["customer_id"]),
        "first_name": clean["first_name"],
        "last_name": clean["last_name"],
        # Unicode-aware on purpose: the reference lower-cases emails with str.lower(). Capital
        # sigma first becomes σ, as in contract.lower_email: Java's word-final rule is not Python's.
        "email": F.lower(F.translate(clean["email"], "\u03a3", "\u03c3")),
        "phone": clean["phone"],
        "address": clean["address"],
        "city": clean["city"],
        "state": ascii_upper(clean["state"]),
        "zip_code": clean["zip_code"],
        "country": F.lit(contract.target_name(target_country)),
        "signup_date": signup_date_value(clean["signup_date"]),
        "source_uri": F.col("source_uri"),
        "source_row": F.col("source_row"),
        "record_id": F.col("record_id"),
        "ingested_at": ingested_at_value(),
    }
    return [values[name].cast(kind).alias(name) for name, kind in USA_COLUMNS]


def alert_columns() -> List[Column]:
    """The alerts dataset's columns, for rows whose route is `alerts`."""
    malformed = F.coalesce(F.col("malformed"), F.lit(False))
    values: Dict[str, Column] = {
        # A malformed record's fields cannot be matched to the header: all null.
        **{column: F.when(~malformed, value) for column, value in _clean().items()},
        "raw_line": F.when(malformed, F.col("raw_line")),
        "alert_reasons": F.col(REASONS_COLUMN),
        "source_uri": F.col("source_uri"),
        "source_row": F.col("source_row"),
        "record_id": F.col("record_id"),
        "ingested_at": ingested_at_value(),
    }
    return [values[name].cast(kind).alias(name) for name, kind in ALERT_COLUMNS]


def to_json_value(columns: List[str]) -> Column:
    """A topic message: the UTF-8 JSON object of `columns`, as the contract formats it."""
    return F.to_json(F.struct(*[F.col(name) for name in columns]), TO_JSON_OPTIONS)
