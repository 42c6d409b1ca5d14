"""The raw message of `customers-raw`, output messages, and expected counts."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customer_pipeline.contract.counts import ClassCounts, count_object, count_records, main
from customer_pipeline.contract.csv_reader import EmptyObjectError, MissingColumnsError, SourceRecord, read_records
from customer_pipeline.contract.messages import (
    RAW_MESSAGE_SCHEMA_DDL,
    RawMessage,
    RawMessageEncoder,
    decode_raw_message,
    encode_output_message,
    encode_raw_message,
    message_key,
    process_raw_message,
)
from customer_pipeline.contract.rules import KNOWN_COLUMNS, AlertRecord, UsaRecord, record_id

URI = "s3://customers/incoming/2024/a.csv"
ETAG = '"9b2cf535f27731c974343645a3985328"'
INGESTED_AT = dt.datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=dt.timezone.utc)
HEADER = ",".join(KNOWN_COLUMNS)
ROW = "007,Ann,Lee,ANN@example.com,,1 Main St,Springfield,il,62701, u.s.a. ,2024-02-29"


def source_records(text: str) -> List[SourceRecord]:
    return list(read_records(io.BytesIO(text.encode())))


def test_a_raw_message_carries_the_raw_strings_flat() -> None:
    [record] = source_records(
        "customer_id,first_name,last_name,email,country,signup_date\n"
        "007, Ann ,Lee,ANN@example.com, u.s.a. ,2024-02-29\n"
    )
    message = RawMessage.from_source_record(record, source_uri=URI, source_etag=ETAG, ingested_at=INGESTED_AT)
    data = encode_raw_message(message)
    assert json.loads(data) == {
        "customer_id": "007",
        "first_name": " Ann ",
        "last_name": "Lee",
        "email": "ANN@example.com",
        "phone": None,
        "address": None,
        "city": None,
        "state": None,
        "zip_code": None,
        "country": " u.s.a. ",
        "signup_date": "2024-02-29",
        "source_uri": URI,
        "source_etag": ETAG,
        "source_row": 1,
        "record_id": record_id(URI, ETAG, 1),
        "ingested_at": "2024-05-01T12:30:45.123456Z",
        "malformed": False,
        "raw_line": None,
        "malformed_reason": None,
    }
    assert list(json.loads(data)) == [name for name, _ in _ddl_fields()]
    assert message.key == record_id(URI, ETAG, 1).encode("ascii")
    assert decode_raw_message(data) == message


def test_a_malformed_raw_message_has_null_columns_and_its_text() -> None:
    records = source_records(f'{HEADER}\n{ROW}\n1,"Zoë\n🙂",x\n')
    message = RawMessage.from_source_record(records[1], source_uri=URI, source_etag=ETAG, ingested_at=INGESTED_AT)
    data = encode_raw_message(message)
    assert '"raw_line":"1,\\"Zoë\\n🙂\\",x"' in data.decode("utf-8")
    decoded = decode_raw_message(data)
    assert decoded.malformed is True
    assert decoded.raw_line == '1,"Zoë\n🙂",x'
    assert decoded.malformed_reason == "3 fields, header has 11"
    assert decoded.values == dict.fromkeys(KNOWN_COLUMNS)
    assert decoded.source_row == 2


def test_the_spark_schema_names_every_field_in_order() -> None:
    assert RAW_MESSAGE_SCHEMA_DDL == (
        "customer_id STRING, first_name STRING, last_name STRING, email STRING, phone STRING, "
        "address STRING, city STRING, state STRING, zip_code STRING, country STRING, "
        "signup_date STRING, source_uri STRING, source_etag STRING, source_row INT, "
        "record_id STRING, ingested_at STRING, malformed BOOLEAN, raw_line STRING, "
        "malformed_reason STRING"
    )


def _ddl_fields() -> List[Tuple[str, ...]]:
    return [tuple(part.split(" ")) for part in RAW_MESSAGE_SCHEMA_DDL.split(", ")]


def test_decoding_accepts_an_offset_timestamp_and_absent_nullable_fields() -> None:
    data = json.dumps(
        {
            "customer_id": "1",
            "source_uri": URI,
            "source_etag": "e",
            "source_row": 3,
            "record_id": "r",
            "ingested_at": "2024-05-01T14:30:45.123456+02:00",
        }
    ).encode()
    message = decode_raw_message(data)
    assert message.ingested_at == INGESTED_AT
    assert message.values == {**dict.fromkeys(KNOWN_COLUMNS), "customer_id": "1"}
    assert message.malformed is False


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"\xff", "not UTF-8 JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"source_row": 1}', "source_uri"),
        (b'{"source_uri": "u", "source_etag": "e", "source_row": true}', "source_row"),
        (b'{"source_uri": "u", "source_etag": "e", "source_row": 0}', "source_row"),
        (b'{"source_uri": "u", "source_etag": "e", "source_row": 1, "email": 5}', "email"),
        (b'{"source_uri": "u", "source_etag": "e", "source_row": 1, "malformed": "no"}', "malformed"),
    ],
)
def test_decoding_refuses_wrong_messages_naming_the_field(data: bytes, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        decode_raw_message(data)


def test_processing_a_raw_message_gives_the_output_record() -> None:
    [record] = source_records(f"{HEADER}\n{ROW}\n")
    message = RawMessage.from_source_record(record, source_uri=URI, source_etag=ETAG, ingested_at=INGESTED_AT)
    outcome = process_raw_message(decode_raw_message(encode_raw_message(message)))
    assert outcome.route == "usa"
    assert outcome.record == UsaRecord(
        customer_id=7,
        first_name="Ann",
        last_name="Lee",
        email="ann@example.com",
        phone=None,
        address="1 Main St",
        city="Springfield",
        state="IL",
        zip_code="62701",
        country="USA",
        signup_date=dt.date(2024, 2, 29),
        source_uri=URI,
        source_row=1,
        record_id=record_id(URI, ETAG, 1),
        ingested_at=INGESTED_AT,
    )
    assert json.loads(encode_output_message(outcome.record)) == {
        "customer_id": 7,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": None,
        "address": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62701",
        "country": "USA",
        "signup_date": "2024-02-29",
        "source_uri": URI,
        "source_row": 1,
        "record_id": record_id(URI, ETAG, 1),
        "ingested_at": "2024-05-01T12:30:45.123456Z",
    }
    assert message_key(outcome.record.record_id) == message.key


def test_processing_a_malformed_raw_message_gives_an_alert() -> None:
    [record] = source_records(f"{HEADER}\nonly,three,fields\n")
    message = RawMessage.from_source_record(record, source_uri=URI, source_etag=ETAG, ingested_at=INGESTED_AT)
    outcome = process_raw_message(message)
    assert isinstance(outcome.record, AlertRecord)
    assert outcome.record.alert_reasons == ("malformed_row",)
    assert outcome.record.raw_line == "only,three,fields"
    assert json.loads(encode_output_message(outcome.record))["raw_line"] == "only,three,fields"


# -- expected counts -----------------------------------------------------------------------


SAMPLE = (
    f"{HEADER}\n"
    f"{ROW}\n"
    "1,Bo,Li,bo@example.ca,,,,,,Canada,2020-01-01\n"
    "2,Cy,Wu,bad,,,,ZZ,,USA,2020-01-01\n"
    "\n"
    "3,too,few\n"
    "4,Di,Ma,di@example.com,,,,,,France,2023-02-29\n"
)


def test_count_records_counts_classes_and_reasons() -> None:
    counts = count_records(source_records(SAMPLE))
    assert counts == ClassCounts(
        usa=1,
        alerts=3,
        out_of_scope=1,
        reasons={
            "invalid_email": 1,
            "invalid_state": 1,
            "missing_zip_code": 1,
            "malformed_row": 1,
            "invalid_signup_date": 1,
        },
    )
    assert counts.total == 5
    assert counts.to_json_dict() == {
        "usa": 1,
        "alerts": 3,
        "out_of_scope": 1,
        "total": 5,
        "reasons": {
            "invalid_email": 1,
            "invalid_signup_date": 1,
            "invalid_state": 1,
            "malformed_row": 1,
            "missing_zip_code": 1,
        },
    }


def test_count_records_follows_the_target_country() -> None:
    counts = count_records(source_records(SAMPLE), target_country="Canada")
    assert (counts.usa, counts.alerts, counts.out_of_scope) == (0, 4, 1)


def test_count_object_rejects_what_the_producer_rejects() -> None:
    with pytest.raises(EmptyObjectError):
        count_object(io.BytesIO(b""))
    with pytest.raises(MissingColumnsError):
        count_object(io.BytesIO(b"customer_id\n1\n"))
    assert count_object(io.BytesIO(SAMPLE.encode())).total == 5


def test_class_counts_refuse_an_unknown_route() -> None:
    with pytest.raises(ValueError, match="unknown route"):
        ClassCounts().add("hdfs")


def test_the_counts_command_prints_one_json_line_per_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.csv"
    good.write_bytes(SAMPLE.encode())
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main([str(good), str(empty)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "file": str(good),
            "usa": 1,
            "alerts": 3,
            "out_of_scope": 1,
            "total": 5,
            "reasons": {
                "invalid_email": 1,
                "invalid_signup_date": 1,
                "invalid_state": 1,
                "malformed_row": 1,
                "missing_zip_code": 1,
            },
        },
        {"file": str(empty), "error": "object is empty: no header"},
    ]


def test_a_source_record_knows_whether_it_is_malformed() -> None:
    assert SourceRecord(1, {}).malformed is False
    assert SourceRecord(1, {}, "x", "why").malformed is True


# -- the producer's lean encoder --------------------------------------------------------------

# Any text, control characters, quotes, backslashes, non-BMP characters and lone surrogates' neighbours included.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@st.composite
def records(draw) -> SourceRecord:
    row = draw(st.integers(min_value=1, max_value=10**9))
    if draw(st.booleans()):
        return SourceRecord(source_row=row, values={column: None for column in KNOWN_COLUMNS},
                            raw_line=draw(TEXT), malformed_reason=draw(TEXT))
    return SourceRecord(source_row=row, values={column: draw(st.none() | TEXT) for column in KNOWN_COLUMNS})


@settings(max_examples=300, deadline=None)
@given(record=records(), uri=TEXT.map(lambda key: "s3://bucket/" + key), etag=TEXT,
       when=st.datetimes(timezones=st.just(dt.timezone.utc)))
def test_the_lean_encoder_gives_the_bytes_of_the_reference_path(record, uri, etag, when) -> None:
    reference = RawMessage.from_source_record(record, source_uri=uri, source_etag=etag, ingested_at=when)
    assert RawMessageEncoder(uri, etag).encode(record, when) == (reference.key, encode_raw_message(reference))
