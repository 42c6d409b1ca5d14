"""Reading a source CSV object: encoding, quoting, header, blank lines, source_row."""

from __future__ import annotations

import io
from typing import Dict, List, Optional, Union

import pytest

from customer_pipeline.contract.csv_reader import (
    CsvObject,
    EmptyObjectError,
    HeaderTooLongError,
    MissingColumnsError,
    SourceRecord,
    open_csv_object,
    read_records,
)
from customer_pipeline.contract.rules import KNOWN_COLUMNS

HEADER = ",".join(KNOWN_COLUMNS)
ROW = "42,Ann,Lee,ann@example.com,555-0100,1 Main St,Springfield,IL,62701,USA,2024-02-29"
ROW_VALUES: Dict[str, Optional[str]] = dict(zip(KNOWN_COLUMNS, ROW.split(",")))
NO_VALUES: Dict[str, Optional[str]] = dict.fromkeys(KNOWN_COLUMNS)


def read(data: Union[bytes, str], **options: int) -> List[SourceRecord]:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return list(read_records(io.BytesIO(raw), **options))


def values(record: SourceRecord) -> List[Optional[str]]:
    return [record.values[column] for column in KNOWN_COLUMNS]


def test_a_simple_object() -> None:
    records = read(f"{HEADER}\n{ROW}\n")
    assert records == [SourceRecord(source_row=1, values=ROW_VALUES)]
    assert records[0].malformed is False


# -- encoding ------------------------------------------------------------------------------


def test_a_leading_bom_is_ignored() -> None:
    assert read(f"\ufeff{HEADER}\n{ROW}\n") == read(f"{HEADER}\n{ROW}\n")


def test_a_bom_elsewhere_is_data() -> None:
    [record] = read(f"{HEADER}\n\ufeff{ROW}\n")
    assert record.values["customer_id"] == "\ufeff42"


def test_utf8_values_are_decoded() -> None:
    [record] = read(f"{HEADER}\n{ROW.replace('Ann', 'Zoë 🙂')}\n")
    assert record.values["first_name"] == "Zoë 🙂"


def test_invalid_utf8_makes_only_its_record_malformed() -> None:
    bad = ROW.encode().replace(b"Ann", b"\xffAnn").replace(b"Lee", b"\xc3(")
    data = f"{HEADER}\n{ROW}\n".encode() + bad + f"\n{ROW}\n".encode()
    records = read(data)
    assert [record.source_row for record in records] == [1, 2, 3]
    assert records[0].values == ROW_VALUES
    assert records[1].malformed is True
    assert records[1].raw_line == ROW.replace("Ann", "\ufffdAnn").replace("Lee", "\ufffd(")
    assert records[1].values == NO_VALUES
    assert records[1].malformed_reason is not None
    assert records[1].malformed_reason.startswith("invalid UTF-8")
    assert records[2].values == ROW_VALUES


def test_invalid_utf8_with_the_right_field_count_is_malformed() -> None:
    bad = ROW.encode().replace(b"Ann", b"A\xe9nn")
    [record] = read(f"{HEADER}\n".encode() + bad + b"\n")
    assert record.malformed is True
    assert record.raw_line == ROW.replace("Ann", "A\ufffdnn")


def test_an_overlong_or_surrogate_encoding_is_invalid_utf8() -> None:
    for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
        [record] = read(f"{HEADER}\n".encode() + ROW.encode().replace(b"Ann", bad) + b"\n")
        assert record.malformed is True


def test_a_character_split_by_a_closing_quote_is_invalid_utf8() -> None:
    # "\xc3\xab" is e-diaeresis; the quote between its bytes makes the record invalid UTF-8
    # (CONTRACT rule 1) even though the unquoted field, `Zo\xc3\xab`, would decode.
    bad = ROW.encode().replace(b"Ann", b'"Zo\xc3"\xab')
    good = ROW.replace("Ann", '"Zo\u00eb"')
    records = read(f"{HEADER}\n".encode() + bad + f"\n{good}\n".encode())
    assert records[0].malformed is True
    assert records[0].values == NO_VALUES
    assert records[0].raw_line == ROW.replace("Ann", '"Zo\ufffd"\ufffd')
    assert records[1].malformed is False
    assert records[1].values["first_name"] == "Zo\u00eb"


# -- line ends and quoting -----------------------------------------------------------------


def test_crlf_and_lf_line_ends_give_the_same_records() -> None:
    assert read(f"{HEADER}\r\n{ROW}\r\n{ROW}\n") == read(f"{HEADER}\n{ROW}\n{ROW}\n")


def test_the_last_line_may_lack_its_line_end() -> None:
    assert read(f"{HEADER}\n{ROW}") == read(f"{HEADER}\n{ROW}\n")
    assert read(f"{HEADER}\r\n{ROW}") == read(f"{HEADER}\n{ROW}\n")


def test_a_lone_cr_is_data_not_a_line_end() -> None:
    [record] = read(f"{HEADER}\n{ROW.replace('1 Main St', 'a' + chr(13) + 'b')}\n")
    assert record.values["address"] == "a\rb"


def test_quoted_fields_hold_commas_quotes_and_line_breaks() -> None:
    row = '42,"Ann, Jr.","O""Lee",ann@example.com,,"1 Main St\nSuite 2\r\nBack","",IL,62701,USA,2024-02-29'
    [record] = read(f"{HEADER}\n{row}\n")
    assert record.values == {
        **ROW_VALUES,
        "first_name": "Ann, Jr.",
        "last_name": 'O"Lee',
        "phone": "",
        "address": "1 Main St\nSuite 2\r\nBack",
        "city": "",
    }


def test_a_multi_line_record_counts_once_for_source_row() -> None:
    multi = ROW.replace("1 Main St", '"1 Main St\n\nSuite 2\n"')
    records = read(f"{HEADER}\n{ROW}\n{multi}\n{ROW}\n")
    assert [record.source_row for record in records] == [1, 2, 3]
    assert records[1].values["address"] == "1 Main St\n\nSuite 2\n"
    assert records[2].values == ROW_VALUES


def test_a_quote_inside_an_unquoted_field_is_data() -> None:
    [record] = read(f"{HEADER}\n{ROW.replace('Ann', 'An' + chr(34) + 'n')}\n")
    assert record.values["first_name"] == 'An"n'


def test_text_after_a_closing_quote_is_kept() -> None:
    [record] = read(f"{HEADER}\n{ROW.replace('Ann', chr(34) + 'An' + chr(34) + 'n')}\n")
    assert record.values["first_name"] == "Ann"


def test_a_space_before_a_quote_makes_the_field_unquoted() -> None:
    row = ROW.replace("1 Main St", ' "1 Main St, Apt 2"')
    [record] = read(f"{HEADER}\n{row}\n")
    assert record.malformed is True
    assert record.malformed_reason == "12 fields, header has 11"
    assert record.raw_line == row


def test_whitespace_is_kept_for_the_rules_to_trim() -> None:
    [record] = read(f"{HEADER}\n{ROW.replace('Ann', ' Ann ' + chr(9))}\n")
    assert record.values["first_name"] == " Ann \t"


# -- header --------------------------------------------------------------------------------


def test_header_names_match_case_insensitively_after_trimming_in_any_order() -> None:
    header = " Signup_Date ,COUNTRY,\tlast_name,First_Name,email\x0b,Customer_ID\r"
    data = f"{header}\n2024-02-29,USA,Lee,Ann,ann@example.com,42\n"
    source = open_csv_object(io.BytesIO(data.encode()))
    assert source.columns == {
        "signup_date": 0,
        "country": 1,
        "last_name": 2,
        "first_name": 3,
        "email": 4,
        "customer_id": 5,
    }
    [record] = list(source)
    assert record.values == {
        **NO_VALUES,
        "customer_id": "42",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "country": "USA",
        "signup_date": "2024-02-29",
    }


def test_unknown_columns_are_ignored_but_count_as_fields() -> None:
    data = f"id,{HEADER},notes,\n9,{ROW},hello,\n9,{ROW},hello\n"
    records = read(data)
    assert records[0].values == ROW_VALUES
    assert records[1].malformed is True
    assert records[1].malformed_reason == "13 fields, header has 14"


def test_the_first_occurrence_of_a_duplicated_column_counts() -> None:
    data = f"{HEADER},EMAIL, Customer_id\n{ROW},second@example.com,99\n"
    [record] = read(data)
    assert record.values["email"] == "ann@example.com"
    assert record.values["customer_id"] == "42"


def test_a_header_name_with_unicode_space_is_unknown() -> None:
    header = HEADER.replace("email", "email\u00a0")
    with pytest.raises(MissingColumnsError) as raised:
        read(f"{header}\n{ROW}\n")
    assert raised.value.missing == ("email",)


def test_missing_required_columns_reject_the_object_naming_them() -> None:
    header = "first_name,phone,customer_id,zip_code,signup_date"
    with pytest.raises(MissingColumnsError) as raised:
        read_records(io.BytesIO(f"{header}\nAnn,1,2,3,2024-01-01\n".encode()))
    assert raised.value.missing == ("last_name", "email", "country")
    assert raised.value.header == tuple(header.split(","))
    assert str(raised.value) == "header lacks required column(s): last_name, email, country"


def test_optional_columns_may_be_absent() -> None:
    header = "customer_id,first_name,last_name,email,country,signup_date"
    [record] = read(f"{header}\n1,Ann,Lee,a@b.com,Canada,2024-01-01\n")
    assert record.values == {
        **NO_VALUES,
        "customer_id": "1",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "a@b.com",
        "country": "Canada",
        "signup_date": "2024-01-01",
    }


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n", b"\r\n\r\n", b"  \n\t\n \x0b\x0c\r\n", b'""\n'])
def test_an_object_without_header_is_empty(data: bytes) -> None:
    with pytest.raises(EmptyObjectError):
        read(data)


def test_a_header_only_object_has_no_records() -> None:
    assert read(f"{HEADER}\n") == []
    assert read(HEADER) == []


def test_blank_lines_before_the_header_are_skipped() -> None:
    assert read(f"\ufeff\n  \r\n{HEADER}\n{ROW}\n") == read(f"{HEADER}\n{ROW}\n")


def test_a_too_long_header_is_an_error() -> None:
    with pytest.raises(HeaderTooLongError):
        read(f"{HEADER}\n{ROW}\n", max_record_bytes=20)


# -- blank lines and source_row ------------------------------------------------------------


def test_blank_lines_are_skipped_and_not_counted() -> None:
    data = f"{HEADER}\n\n{ROW}\r\n\r\n   \n \t\n\x0b\x0c\n{ROW}\n\n\n"
    records = read(data)
    assert [record.source_row for record in records] == [1, 2]
    assert all(record.values == ROW_VALUES for record in records)


def test_a_quoted_empty_or_blank_single_field_is_a_blank_line() -> None:
    records = read(f'{HEADER}\n""\n"  "\n{ROW}\n')
    assert [record.source_row for record in records] == [1]


def test_a_line_of_commas_is_not_blank() -> None:
    records = read(f"{HEADER}\n,,,\n,,,,,,,,,,\n")
    assert records[0] == SourceRecord(
        source_row=1,
        values=NO_VALUES,
        raw_line=",,,",
        malformed_reason="4 fields, header has 11",
    )
    assert records[1] == SourceRecord(source_row=2, values=dict.fromkeys(KNOWN_COLUMNS, ""))


def test_a_unicode_space_line_is_not_blank() -> None:
    [record] = read(f"{HEADER}\n\u00a0\n")
    assert record.malformed is True
    assert record.raw_line == "\u00a0"


def test_source_row_counts_data_records_only() -> None:
    data = (
        f"\n{HEADER}\n"
        f"{ROW}\n"  # 1
        "\n"
        "short,row\n"  # 2, malformed
        f"{ROW.replace('Ann', chr(34) + 'A' + chr(10) + 'nn' + chr(34))}\n"  # 3, two lines
        "   \n"
        f"{ROW}\n"  # 4
    )
    records = read(data)
    assert [(record.source_row, record.malformed) for record in records] == [
        (1, False),
        (2, True),
        (3, False),
        (4, False),
    ]
    assert records[2].values["first_name"] == "A\nnn"


# -- malformed records ---------------------------------------------------------------------


def test_too_few_and_too_many_fields_are_malformed_with_their_text() -> None:
    records = read(f"{HEADER}\n1,Ann\r\n{ROW},extra\n")
    assert records[0] == SourceRecord(1, NO_VALUES, "1,Ann", "2 fields, header has 11")
    assert records[1] == SourceRecord(2, NO_VALUES, f"{ROW},extra", "12 fields, header has 11")


def test_a_malformed_multi_line_record_keeps_all_its_lines() -> None:
    row = '1,"Ann\r\nLee",x\r\n'
    [record] = read(f"{HEADER}\r\n{row}")
    assert record.raw_line == '1,"Ann\r\nLee",x'
    assert record.malformed_reason == "3 fields, header has 11"


def test_a_quote_left_open_runs_to_the_end_of_the_object() -> None:
    records = read(f'{HEADER}\n{ROW}\n1,"Ann,Lee\n{ROW}\n')
    assert len(records) == 2
    assert records[1].source_row == 2
    assert records[1].malformed is True
    assert records[1].raw_line == f'1,"Ann,Lee\n{ROW}\n'
    assert records[1].malformed_reason == "quoted field not closed before the end of the object"


def test_a_too_long_record_is_malformed_and_reading_goes_on() -> None:
    long_row = ROW.replace("1 Main St", "x" * 500)
    records = read(f"{HEADER}\n{ROW}\n{long_row}\n{ROW}\n", max_record_bytes=200)
    assert [record.source_row for record in records] == [1, 2, 3]
    assert records[1].malformed is True
    assert records[1].raw_line == long_row[:200]
    assert records[1].malformed_reason == "record longer than 200 bytes"
    assert records[2].values == ROW_VALUES


def test_a_too_long_multi_line_record_resumes_after_the_line_that_broke_the_limit() -> None:
    lines = "\n".join("y" * 60 for _ in range(5))
    records = read(f'{HEADER}\n1,"{lines}"\n{ROW}\n', max_record_bytes=150)
    assert records[0].malformed_reason == "record longer than 150 bytes"
    assert records[0].raw_line == f'1,"{lines}'[:150]
    # The limit broke on the third line; lines four and five are read as records.
    assert [record.raw_line for record in records[1:3]] == ["y" * 60, "y" * 60 + '"']
    assert records[3].values == ROW_VALUES


# -- streaming -----------------------------------------------------------------------------


class EndlessRows(io.RawIOBase):
    """An object too large to hold: a header, then rows made up on demand."""

    def __init__(self, rows: int) -> None:
        self.pending = (HEADER + "\n").encode()
        self.rows_left = rows
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < size and self.rows_left:
            self.pending += (ROW + "\n").encode() * min(self.rows_left, 1000)
            self.rows_left -= min(self.rows_left, 1000)
        chunk, self.pending = self.pending[:size], self.pending[size:]
        self.bytes_read += len(chunk)
        return chunk


def test_records_are_read_lazily_one_chunk_at_a_time() -> None:
    stream = EndlessRows(rows=10**9)
    records = read_records(stream, chunk_bytes=4096)  # type: ignore[arg-type]
    first = next(records)
    assert first.values == ROW_VALUES
    assert stream.bytes_read == 4096
    for _ in range(1000):
        next(records)
    assert stream.bytes_read <= 4096 * 30


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 64])
def test_chunk_boundaries_do_not_change_the_records(chunk_bytes: int) -> None:
    data = (
        (
            f"\ufeff{HEADER}\r\n{ROW}\r\n\r\n"
            f"{ROW.replace('Ann', chr(34) + 'A,' + chr(13) + chr(10) + 'n' + chr(34) + chr(34) + 'n' + chr(34))}\r\n"
            "1,2\r\n"
        ).encode()
        + b"\xe2\x82,x\n"
        + ROW.encode()
    )
    assert read(data, chunk_bytes=chunk_bytes) == read(data)
    assert len(read(data)) == 5


def test_a_csv_object_is_iterated_once() -> None:
    source = open_csv_object(io.BytesIO(f"{HEADER}\n{ROW}\n".encode()))
    assert isinstance(source, CsvObject)
    assert len(list(source)) == 1
    with pytest.raises(RuntimeError):
        iter(source)
