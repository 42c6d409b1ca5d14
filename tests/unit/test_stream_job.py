"""The Spark job's rules and writer on a local Spark (no services): pyspark and Java 17.

The rules are checked against the reference implementation (`contract` through
`messages.process_raw_message`): hand-picked cases, then generated ones. Spark is slow
per call and fast per row, so the generated examples are collected first and checked
in one DataFrame.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from typing import Any, Dict, List, Optional, Tuple

import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - depends on the machine
    pytest.skip("local Spark needs Java", allow_module_level=True)

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql.types import StructType  # noqa: E402

from customer_pipeline.contract import rules as contract  # noqa: E402
from customer_pipeline.contract.messages import RawMessage, encode_raw_message, process_raw_message  # noqa: E402
from customer_pipeline.stream import job as stream_job  # noqa: E402
from customer_pipeline.stream import rules as spark_rules  # noqa: E402
from customer_pipeline.stream.batch_commit import BatchDatasetWriter  # noqa: E402

pytestmark = pytest.mark.spark

UTC = dt.timezone.utc
INGESTED = dt.datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
VALID: Dict[str, Optional[str]] = {
    "customer_id": "42",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "Ada@Example.COM",
    "phone": "+1 555 0100",
    "address": "1 Main St",
    "city": "Springfield",
    "state": "il",
    "zip_code": "62701",
    "country": "USA",
    "signup_date": "2024-02-29",
}


def message(values: Dict[str, Optional[str]], row: int, **extra: Any) -> RawMessage:
    uri = "s3://customers/in/part-1.csv"
    return RawMessage(
        values={column: values.get(column) for column in contract.KNOWN_COLUMNS},
        source_uri=uri,
        source_etag='"etag-1"',
        source_row=row,
        record_id=contract.record_id(uri, '"etag-1"', row),
        ingested_at=extra.pop("ingested_at", INGESTED),
        **extra,
    )


def kafka_frame(spark: SparkSession, messages: List[RawMessage]) -> DataFrame:
    """What Spark's Kafka source gives the job: binary value, partition, offset."""
    rows = [(bytearray(encode_raw_message(m)), 0, offset) for offset, m in enumerate(messages)]
    return spark.createDataFrame(rows, "value BINARY, partition INT, offset BIGINT")


def spark_results(
    spark: SparkSession, messages: List[RawMessage], target_country: str = contract.DEFAULT_TARGET_COUNTRY
) -> Dict[str, Tuple[str, Tuple[str, ...], Optional[Dict[str, Any]]]]:
    """record_id -> (route, reasons, topic message as parsed JSON or None)."""
    classified = stream_job.classify(stream_job.parse_raw(kafka_frame(spark, messages)), target_country).cache()
    usa = stream_job.usa_rows(classified, target_country)
    alerts = stream_job.alert_rows(classified)
    outputs = {
        row.key: json.loads(row.value)
        for row in stream_job.topic_messages(usa, "u").unionByName(stream_job.topic_messages(alerts, "a")).collect()
    }
    results = {}
    for row in classified.select("record_id", "route", "reasons").collect():
        results[row.record_id] = (row.route, tuple(row.reasons), outputs.get(row.record_id))
    classified.unpersist()
    return results


def expected_results(
    messages: List[RawMessage], target_country: str = contract.DEFAULT_TARGET_COUNTRY
) -> Dict[str, Tuple[str, Tuple[str, ...], Optional[Dict[str, Any]]]]:
    results = {}
    for m in messages:
        outcome = process_raw_message(m, target_country=target_country)
        record = None if outcome.record is None else outcome.record.to_json_dict()
        results[m.record_id] = (outcome.route, outcome.reasons, record)
    return results


def assert_agree(
    spark: SparkSession, messages: List[RawMessage], target_country: str = contract.DEFAULT_TARGET_COUNTRY
) -> None:
    actual = spark_results(spark, messages, target_country)
    expected = expected_results(messages, target_country)
    assert len(actual) == len(messages)
    wrong = [
        (m.values, m.malformed, expected[m.record_id], actual[m.record_id])
        for m in messages
        if actual[m.record_id] != expected[m.record_id]
    ]
    assert wrong == [], f"{len(wrong)} of {len(messages)} records disagree, first ones: {wrong[:3]}"


# -- hand-picked cases ---------------------------------------------------------------

HAND_PICKED: List[Tuple[Dict[str, Optional[str]], Dict[str, Any]]] = [
    (VALID, {}),
    ({**VALID, "customer_id": " 007\t", "email": "\x0bA.B@C.D\x0c", "country": " united \t STATES  of america "}, {}),
    ({**VALID, "customer_id": "9223372036854775807"}, {}),
    ({**VALID, "customer_id": "0009223372036854775807"}, {}),
    ({**VALID, "customer_id": "9223372036854775808"}, {}),
    ({**VALID, "customer_id": "99999999999999999999999"}, {}),
    ({**VALID, "customer_id": "000"}, {}),
    ({**VALID, "customer_id": "\u0661\u0662"}, {}),  # Arabic-Indic digits
    ({**VALID, "customer_id": "\uff11"}, {}),  # fullwidth 1
    ({**VALID, "customer_id": "-1"}, {}),
    ({**VALID, "customer_id": "\u00a042"}, {}),  # NBSP is not the contract's whitespace
    ({**VALID, "signup_date": "2023-02-29"}, {}),
    ({**VALID, "signup_date": "2023-2-1"}, {}),
    ({**VALID, "signup_date": "2024-02-29x"}, {}),
    ({**VALID, "signup_date": "0000-01-01"}, {}),
    ({**VALID, "signup_date": "0001-01-01"}, {}),
    ({**VALID, "signup_date": "9999-12-31"}, {}),
    ({**VALID, "signup_date": "2024-04-31"}, {}),
    ({**VALID, "signup_date": "2024-01-01\u2028"}, {}),  # `$` would match before U+2028
    ({**VALID, "zip_code": "62701\u2028"}, {}),
    ({**VALID, "zip_code": "62701-1234"}, {}),
    ({**VALID, "zip_code": "6270"}, {}),
    ({**VALID, "zip_code": "\uff16\uff12\uff17\uff10\uff11"}, {}),
    ({**VALID, "zip_code": None, "state": "  "}, {}),
    ({**VALID, "state": "\u0131l"}, {}),  # dotless i upper-cases to I in Unicode
    ({**VALID, "state": "\u212as"}, {}),  # Kelvin sign lower-cases to k in Unicode
    ({**VALID, "state": "Dc"}, {}),
    ({**VALID, "state": "XX"}, {}),
    ({**VALID, "country": "u\u017fa"}, {}),  # long s upper-cases to S in Unicode
    ({**VALID, "country": "U.S.A."}, {}),
    ({**VALID, "country": "United\u00a0States"}, {}),
    ({**VALID, "country": "\u0130ndia", "state": None}, {}),
    ({**VALID, "country": "Canada", "state": None, "zip_code": None}, {}),
    ({**VALID, "country": "Canada", "email": "bad"}, {}),
    ({**VALID, "email": "a@b"}, {}),
    ({**VALID, "email": "a@b..c"}, {}),
    ({**VALID, "email": "a b@c.de"}, {}),
    ({**VALID, "email": "a\u00a0b@c.de"}, {}),
    ({**VALID, "email": "\u0130STANBUL@\u00d6RNEK.COM"}, {}),
    ({**VALID, "email": "\u03a3\u0391\u03a3@x.gr"}, {}),
    ({**VALID, "phone": " ", "address": None, "city": "\t"}, {}),
    ({column: None for column in contract.KNOWN_COLUMNS}, {}),
    ({column: " \r\n" for column in contract.KNOWN_COLUMNS}, {}),
    ({**VALID}, {"malformed": True, "raw_line": 'a,"b\nc', "malformed_reason": "field count 2, header has 11"}),
    ({column: None for column in contract.KNOWN_COLUMNS}, {"malformed": True, "raw_line": "\ufffd\ufffd"}),
]


def test_hand_picked_cases_agree_with_the_reference(spark: SparkSession) -> None:
    messages = [message(values, row, **dict(extra)) for row, (values, extra) in enumerate(HAND_PICKED, 1)]
    assert_agree(spark, messages)


def test_hand_picked_routes_and_values(spark: SparkSession) -> None:
    """A few outcomes spelled out, so a bug shared by both implementations shows too."""
    messages = [message(values, row, **dict(extra)) for row, (values, extra) in enumerate(HAND_PICKED, 1)]
    actual = spark_results(spark, messages)
    routes = [actual[m.record_id][0] for m in messages[:6]]
    assert routes == ["usa", "usa", "usa", "usa", "alerts", "alerts"]
    assert actual[messages[0].record_id][2] == {
        "customer_id": 42,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "phone": "+1 555 0100",
        "address": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62701",
        "country": "USA",
        "signup_date": "2024-02-29",
        "source_uri": "s3://customers/in/part-1.csv",
        "source_row": 1,
        "record_id": messages[0].record_id,
        "ingested_at": "2024-03-01T12:30:45.123456Z",
    }
    assert actual[messages[1].record_id][2]["customer_id"] == 7
    assert actual[messages[2].record_id][2]["customer_id"] == 9223372036854775807
    malformed = actual[messages[-2].record_id]
    assert malformed[:2] == ("alerts", ("malformed_row",))
    assert malformed[2]["raw_line"] == 'a,"b\nc' and malformed[2]["customer_id"] is None
    everything_missing = actual[messages[-4].record_id]
    assert everything_missing[1] == (
        "missing_country",
        "missing_customer_id",
        "missing_email",
        "missing_first_name",
        "missing_last_name",
        "missing_signup_date",
    )


def test_other_target_country_agrees(spark: SparkSession) -> None:
    rows = [
        {**VALID, "country": "canada"},
        {**VALID, "country": " CANADA "},
        {**VALID, "country": "USA"},
        {**VALID, "country": "Canada", "state": None, "zip_code": "x"},
    ]
    messages = [message(values, row) for row, values in enumerate(rows, 1)]
    assert_agree(spark, messages, target_country="Canada")
    assert [spark_results(spark, messages, "Canada")[m.record_id][0] for m in messages] == [
        "usa",
        "usa",
        "out_of_scope",
        "alerts",
    ]


def test_output_columns_have_the_contract_types(spark: SparkSession) -> None:
    classified = stream_job.classify(stream_job.parse_raw(kafka_frame(spark, [message(VALID, 1)])))
    usa = stream_job.usa_rows(classified)
    alerts = stream_job.alert_rows(classified)

    def shape(schema: StructType) -> List[Tuple[str, str]]:
        return [(f.name, f.dataType.simpleString()) for f in schema.fields]

    assert shape(usa.schema) == shape(spark.createDataFrame([], spark_rules.USA_SCHEMA_DDL).schema)
    assert shape(usa.schema)[0] == ("customer_id", "bigint")
    assert shape(alerts.schema) == shape(spark.createDataFrame([], spark_rules.ALERT_SCHEMA_DDL).schema)
    row = usa.select("customer_id", "signup_date", "source_row", F.unix_micros("ingested_at").alias("us")).first()
    assert row is not None
    assert (row.customer_id, row.signup_date, row.source_row) == (42, dt.date(2024, 2, 29), 1)
    assert row.us == int(INGESTED.timestamp()) * 1_000_000 + 123456


def test_a_message_that_is_not_a_raw_message_is_unreadable(spark: SparkSession) -> None:
    rows = [(bytearray(b"not json"), 0, 5), (bytearray(b'{"customer_id": "1"}'), 0, 6)]
    frame = spark.createDataFrame(rows, "value BINARY, partition INT, offset BIGINT")
    classified = stream_job.classify(stream_job.parse_raw(frame))
    assert [r.route for r in classified.collect()] == ["unreadable", "unreadable"]
    assert stream_job.BatchProcessor.count_routes(classified) == {
        "usa": 0,
        "alerts": 0,
        "out_of_scope": 0,
        "unreadable": 2,
    }


# -- generated cases -----------------------------------------------------------------

ASCII_WS = list(contract.WHITESPACE)
OTHER_SPACES = ["\u00a0", "\u2003", "\u3000", "\u0085", "\u2028", "\u2029", "\u200b", "\x1c", "\x1f"]
PAD = st.text(alphabet=st.sampled_from(ASCII_WS + OTHER_SPACES), max_size=3)
ODD = st.sampled_from(["\u0661", "\uff11", "\u00df", "\u0130", "\u0131", "\u017f", "\u212a", "\u00e9", "\U0001f642"])
TRICKY_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list("aZ09@.-_ ,\"'") + ASCII_WS + OTHER_SPACES), ODD), max_size=10
)


def _padded(core: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(PAD, core, PAD).map("".join)


def _ascii_case(text: str, flips: List[bool]) -> str:
    return "".join(c.swapcase() if c.isascii() and flip else c for c, flip in zip(text, flips + [False] * len(text)))


def _spelled(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A spelling with random ASCII case and random whitespace runs between words."""
    return st.builds(
        lambda text, flips, gaps: "".join(
            part + (gaps[i % len(gaps)] if i < len(text.split(" ")) - 1 else "")
            for i, part in enumerate(_ascii_case(text, flips).split(" "))
        ),
        words,
        st.lists(st.booleans(), max_size=30),
        st.lists(st.sampled_from([" ", "  ", "\t", " \r\n ", "\x0b", "\u00a0", "\u2003", "\u3000"]), min_size=1, max_size=3),
    )


CUSTOMER_ID = st.one_of(
    st.integers(min_value=0, max_value=2**64).map(str),
    st.builds(lambda z, n: "0" * z + str(n), st.integers(0, 25), st.integers(0, 2**63 + 5)),
    st.sampled_from(["9223372036854775807", "9223372036854775808", "0", "00", "-1", "+1", "1e3", "1 2", "\u0661\u0662"]),
    st.text(alphabet=st.sampled_from(list("0123456789") + ["\uff11", "\u0663", "\u00b2"]), min_size=1, max_size=22),
    TRICKY_TEXT,
)
EMAIL_PART = st.text(alphabet=st.sampled_from(list("abXY09._-+@") + ["\u00e9", "\u0130", "\u03a3", "\u00df", " ", "\u00a0"]), max_size=6)
# Well-formed addresses whose letters lower-case differently in ASCII and in Unicode.
EMAIL_NAME = st.text(
    alphabet=st.sampled_from(list("aZ9_-+") + ["\u00c9", "\u0130", "\u03a3", "\u00d6", "\u00df", "\u01c5", "\u212a"]),
    min_size=1,
    max_size=5,
)
EMAIL = st.one_of(
    st.builds(lambda a, b, c: f"{a}@{b}.{c}", EMAIL_NAME, EMAIL_NAME, EMAIL_NAME),
    st.builds(lambda a, b, c: f"{a}@{b}.{c}", EMAIL_PART, EMAIL_PART, EMAIL_PART),
    st.builds(lambda a, b: f"{a}@{b}", EMAIL_PART, EMAIL_PART),
    st.sampled_from(["Ada@Example.COM", "a@b", "a@@b.c", "a@b..c", "a@b.c.", "@b.c", "\u0130@x.co", "\u00df@X.COM"]),
    TRICKY_TEXT,
)
SIGNUP_DATE = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat),
    st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32)),
    st.sampled_from(["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "0000-01-01", "2023-2-1", "2023-02-01x"]),
    st.text(alphabet=st.sampled_from(list("0123456789-") + ["\uff10", "\u0661"]), max_size=11),
    TRICKY_TEXT,
)
COUNTRY = st.one_of(
    _spelled(st.sampled_from(sorted(contract.USA_ALIASES) + ["canada", "u.s", "united  kingdom", "america"])),
    st.sampled_from(["u\u017fa", "\u0130ndia", "US\u00a0A", "\uff35\uff33\uff21", "\u00fcsa", "Stra\u00dfe"]),
    TRICKY_TEXT,
)
STATE = st.one_of(
    st.builds(_ascii_case, st.sampled_from(sorted(contract.US_STATE_CODES) + ["XX", "N.Y.", "NYC"]), st.lists(st.booleans())),
    st.sampled_from(["\u0131l", "\u212as", "\u017fc", "\u00df", "\u0130L", "\uff2e\uff39"]),
    TRICKY_TEXT,
)
ZIP_CODE = st.one_of(
    st.from_regex(r"\A[0-9]{5}(-[0-9]{4})?\Z"),
    st.sampled_from(["1234", "123456", "12345-678", "12345 6789", "\uff11\uff12\uff13\uff14\uff15", "12345\u2028"]),
    TRICKY_TEXT,
)
FREE_TEXT = st.one_of(st.sampled_from(["Ada", "O'Neil", "Jos\u00e9", "\u6771\u4eac"]), TRICKY_TEXT)


def _value(core: st.SearchStrategy[str]) -> st.SearchStrategy[Optional[str]]:
    return st.one_of(st.none(), core, _padded(core), st.sampled_from(["", " ", "\t\r\n", "\u00a0"]))


ROW = st.fixed_dictionaries(
    {
        "customer_id": _value(CUSTOMER_ID),
        "first_name": _value(FREE_TEXT),
        "last_name": _value(FREE_TEXT),
        "email": _value(EMAIL),
        "phone": _value(FREE_TEXT),
        "address": _value(FREE_TEXT),
        "city": _value(FREE_TEXT),
        "state": _value(STATE),
        "zip_code": _value(ZIP_CODE),
        "country": _value(COUNTRY),
        "signup_date": _value(SIGNUP_DATE),
    }
)
# Mostly valid rows with one or two fields replaced, so usa rows are common too.
NEAR_VALID = st.builds(
    lambda row, keep: {column: (VALID[column] if column in keep else row[column]) for column in contract.KNOWN_COLUMNS},
    ROW,
    st.sets(st.sampled_from(contract.KNOWN_COLUMNS), min_size=8),
)
# A valid row with exactly one field replaced: each rule alone decides the outcome.
ONE_OFF = st.builds(
    lambda row, column: {**VALID, column: row[column]}, ROW, st.sampled_from(contract.KNOWN_COLUMNS)
)
EXAMPLE = st.tuples(
    st.one_of(ROW, NEAR_VALID, ONE_OFF),
    st.sampled_from([False] * 9 + [True]),
    st.datetimes(
        min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)


def collect_examples(strategy: st.SearchStrategy[Any], count: int) -> List[Any]:
    """Draw `count` examples with hypothesis, to check them all in one Spark job."""
    drawn: List[Any] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(example: Any) -> None:
        drawn.append(example)

    draw()
    return drawn


def test_a_capital_sigma_lower_cases_the_same_in_the_job_and_the_reference(spark: SparkSession) -> None:
    """Σ becomes σ wherever it stands: Java's word-final rule (ς in `b0Σ`) is not Python's (σ),
    which the generated rows below once found."""
    emails = ["b0\u03a3@x.co", "a\u03a3@x.co", "\u039f\u0394\u039f\u03a3@x.gr", "\u03a3a@x.co", "a.\u03a3@x.co"]
    assert_agree(spark, [message({**VALID, "email": email}, row) for row, email in enumerate(emails, 1)])
    assert contract.lower_email("\u039f\u0394\u039f\u03a3@X.gr") == "\u03bf\u03b4\u03bf\u03c3@x.gr"


def test_generated_rows_agree_with_the_reference(spark: SparkSession) -> None:
    examples = collect_examples(EXAMPLE, 1500)
    messages = [
        message(
            values,
            row,
            malformed=malformed,
            raw_line="x,y" if malformed else None,
            malformed_reason="field count" if malformed else None,
            ingested_at=ingested_at,
        )
        for row, (values, malformed, ingested_at) in enumerate(examples, 1)
    ]
    assert_agree(spark, messages)
    routes = {route for route, _, _ in expected_results(messages).values()}
    # The generator must reach every class, or the agreement proves little.
    assert routes == {"usa", "alerts", "out_of_scope"}


# -- the exactly-once writer ---------------------------------------------------------


def _rows(spark: SparkSession, first: int, count: int) -> DataFrame:
    return spark.createDataFrame([(i, f"row-{i}") for i in range(first, first + count)], "id INT, name STRING").repartition(3)


def _ids(spark: SparkSession, path: str, output_format: str = "parquet") -> List[int]:
    return sorted(row.id for row in spark.read.format(output_format).load(path).collect())


def test_the_same_batch_twice_lands_once(spark: SparkSession, tmp_path: Any) -> None:
    path = str(tmp_path / "usa")
    writer = BatchDatasetWriter(spark, path)
    first = writer.write(_rows(spark, 0, 6), 7)
    second = writer.write(_rows(spark, 0, 6), 7)
    writer.write(_rows(spark, 100, 2), 8)
    assert (first.skipped, second.skipped) == (False, True)
    assert _ids(spark, path) == [0, 1, 2, 3, 4, 5, 100, 101]
    markers = sorted(p.name for p in (tmp_path / "usa" / "_committed").iterdir() if not p.name.startswith("."))
    assert markers == ["batch-7", "batch-8"]
    assert not (tmp_path / "usa" / "_staging" / "batch-7").exists()
    assert all(p.name.startswith(("part-b7-", "part-b8-", ".part-b", "_")) for p in (tmp_path / "usa").iterdir())


def test_a_date_before_1582_is_written_as_the_contract_has_it(spark: SparkSession, tmp_path: Any) -> None:
    # 0001-01-01 is a valid signup_date; without the job's settings Spark refuses to write it
    # to Parquet at all (WRITE_ANCIENT_DATETIME) and the job would fail on every restart.
    path = str(tmp_path / "usa")
    rows = spark.createDataFrame([(1, dt.date(1, 1, 1)), (2, dt.date(1582, 10, 4))], "id INT, signup_date DATE")
    try:
        for name, value in stream_job.JOB_SQL_CONF.items():
            spark.conf.set(name, value)
        BatchDatasetWriter(spark, path).write(rows, 0)
        read = sorted((row.id, row.signup_date) for row in spark.read.parquet(path).collect())
    finally:
        for name in stream_job.JOB_SQL_CONF:
            spark.conf.unset(name)
    assert read == [(1, dt.date(1, 1, 1)), (2, dt.date(1582, 10, 4))]


def test_a_crash_while_moving_files_then_a_replay_lands_once(spark: SparkSession, tmp_path: Any) -> None:
    path = str(tmp_path / "alerts")
    writer = BatchDatasetWriter(spark, path, "json")
    writer.write(_rows(spark, 0, 3), 1)
    # Batch 2 dies after staging its files and moving one of them, before its marker.
    _rows(spark, 10, 6).write.mode("overwrite").json(writer.staging_path(2).toString())
    assert len(writer.move_staged_parts(2, limit=1)) == 1
    assert not writer.is_committed(2)
    visible = _ids(spark, path, "json")
    assert visible[:3] == [0, 1, 2] and 0 < len(visible) - 3 < 6  # half a batch: at most once
    # The replay of batch 2 (a new driver after kill -9) must leave its rows exactly once.
    result = BatchDatasetWriter(spark, path, "json").write(_rows(spark, 10, 6), 2)
    assert result.skipped is False
    assert _ids(spark, path, "json") == [0, 1, 2, 10, 11, 12, 13, 14, 15]


def test_a_crash_before_moving_leaves_nothing_visible(spark: SparkSession, tmp_path: Any) -> None:
    path = str(tmp_path / "usa")
    writer = BatchDatasetWriter(spark, path)
    writer.write(_rows(spark, 0, 2), 3)
    _rows(spark, 50, 4).write.mode("overwrite").parquet(writer.staging_path(4).toString())
    assert _ids(spark, path) == [0, 1]  # readers skip _staging
    writer.write(_rows(spark, 50, 4), 4)
    assert _ids(spark, path) == [0, 1, 50, 51, 52, 53]


def test_a_crash_after_the_marker_skips_and_tidies(spark: SparkSession, tmp_path: Any) -> None:
    path = str(tmp_path / "usa")
    writer = BatchDatasetWriter(spark, path)
    writer.write(_rows(spark, 0, 2), 5)
    # Died after the marker, before deleting the staging folder: a leftover copy exists.
    _rows(spark, 0, 2).write.mode("overwrite").parquet(writer.staging_path(5).toString())
    assert writer.write(_rows(spark, 0, 2), 5).skipped is True
    assert _ids(spark, path) == [0, 1]
    assert not (tmp_path / "usa" / "_staging" / "batch-5").exists()


def test_a_batch_without_rows_is_recorded_without_files(spark: SparkSession, tmp_path: Any) -> None:
    path = str(tmp_path / "usa")
    writer = BatchDatasetWriter(spark, path)
    writer.write(_rows(spark, 0, 2), 1)
    result = writer.write(_rows(spark, 0, 0), 2, has_rows=False)
    assert (result.skipped, result.files) == (False, 0)
    assert writer.is_committed(2)
    assert _ids(spark, path) == [0, 1]


def test_a_json_dataset_formats_values_like_the_topics(spark: SparkSession, tmp_path: Any) -> None:
    messages = [message(VALID, 1), message({**VALID, "email": "bad"}, 2)]
    classified = stream_job.classify(stream_job.parse_raw(kafka_frame(spark, messages)))
    for rows, name in ((stream_job.usa_rows(classified), "usa"), (stream_job.alert_rows(classified), "alerts")):
        path = tmp_path / name
        BatchDatasetWriter(spark, str(path), "json", spark_rules.TO_JSON_OPTIONS).write(rows, 0)
        lines = [line for part in sorted(path.glob("part-b0-*")) for line in part.read_text("utf-8").splitlines()]
        expected = [process_raw_message(m).record for m in messages if process_raw_message(m).route == name]
        assert [json.loads(line) for line in lines] == [record.to_json_dict() for record in expected if record]


def test_a_folder_the_job_may_not_write_is_named_before_the_query_starts(spark: SparkSession, tmp_path: Any) -> None:
    """The job checks write access to each output path and the checkpoint (the deepest part
    that exists) before its query starts: one line naming the setting, not a stack trace."""
    import os

    from customer_pipeline.stream.config import StreamConfig
    from customer_pipeline.stream.setting_checks import unwritable_path

    locked = tmp_path / "locked"
    locked.mkdir()
    writable = tmp_path / "open"
    config = StreamConfig(bootstrap_servers="b:9092", usa_path="file://%s/usa" % writable,
                          alerts_path="file://%s/alerts" % locked,
                          checkpoint_location="file://%s/checkpoints/job" % writable)
    assert unwritable_path(spark, config) is None
    os.chmod(locked, 0o555)
    try:
        said = unwritable_path(spark, config)
    finally:
        os.chmod(locked, 0o755)
    user = spark._jvm.org.apache.hadoop.security.UserGroupInformation.getCurrentUser().getShortUserName()
    assert said is not None and "\n" not in said
    assert said.startswith("[hdfs] alerts_path = file://%s/alerts (customer_stream_alerts_path): %s may not write "
                           "file:%s " % (locked, user, locked)), said
    assert said.endswith("give %s write access there or choose another folder: the job checks again at each "
                         "restart" % user), said
    # A path that exists is judged itself, not its parent.
    (locked / "alerts").mkdir()
    os.chmod(locked, 0o555)
    try:
        assert unwritable_path(spark, config) is None
    finally:
        os.chmod(locked, 0o755)
