"""The validation, normalisation and routing rules of the contract, one by one."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional, Tuple

import pytest

from customer_pipeline.contract.rules import (
    KNOWN_COLUMNS,
    REASON_CODES,
    REQUIRED_COLUMNS,
    AlertRecord,
    UsaRecord,
    classify,
    format_timestamp,
    is_target_country,
    normalise_country,
    parse_timestamp,
    present,
    process,
    record_id,
    trim,
    validate,
)

NBSP = "\u00a0"
EM_SPACE = "\u2003"
INGESTED_AT = dt.datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=dt.timezone.utc)


def usa_values(**changes: Optional[str]) -> Dict[str, Optional[str]]:
    values: Dict[str, Optional[str]] = {
        "customer_id": "42",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann.lee@example.com",
        "phone": "(555) 010-0199",
        "address": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "62701",
        "country": "USA",
        "signup_date": "2024-02-29",
    }
    values.update(changes)
    return values


def reasons(**changes: Optional[str]) -> Tuple[str, ...]:
    return classify(usa_values(**changes)).reasons


def route(**changes: Optional[str]) -> str:
    return classify(usa_values(**changes)).route


# -- whitespace and trimming ---------------------------------------------------------------


def test_trim_removes_exactly_the_six_ascii_whitespace_characters() -> None:
    assert trim(" \t\r\n\x0b\x0cabc \t\r\n\x0b\x0c") == "abc"
    assert trim(f"{NBSP}abc{EM_SPACE}") == f"{NBSP}abc{EM_SPACE}"
    assert trim("\u2028abc\x85") == "\u2028abc\x85"
    assert trim("a \t b") == "a \t b"


def test_present_turns_empty_and_whitespace_only_into_missing() -> None:
    assert present(None) is None
    assert present("") is None
    assert present(" \t\r\n\x0b\x0c") is None
    assert present(NBSP) == NBSP
    assert present("  x  ") == "x"


def test_a_valid_usa_record_has_no_reason() -> None:
    assert reasons() == ()
    assert route() == "usa"


# -- rule 2: missing required fields -------------------------------------------------------


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
@pytest.mark.parametrize("missing", [None, "", " ", "\t", " \r\n\x0b\x0c "])
def test_each_missing_required_field_has_its_own_reason(column: str, missing: Optional[str]) -> None:
    verdict = classify(usa_values(**{column: missing}))
    if column == "country":
        # No country, so no USA: the state and zip rules do not run.
        assert verdict.reasons == ("missing_country",)
    else:
        assert verdict.reasons == (f"missing_{column}",)
    assert verdict.route == "alerts"


def test_a_column_left_out_of_the_values_counts_as_missing() -> None:
    values = usa_values()
    del values["email"]
    assert classify(values).reasons == ("missing_email",)


def test_nbsp_is_a_value_not_whitespace_so_the_field_is_not_missing() -> None:
    assert reasons(first_name=NBSP, last_name=EM_SPACE) == ()


@pytest.mark.parametrize("column", ["phone", "address", "city"])
def test_optional_fields_may_be_missing(column: str) -> None:
    assert reasons(**{column: None}) == ()
    assert reasons(**{column: "  "}) == ()


def test_every_missing_required_field_is_reported_sorted() -> None:
    assert classify(dict.fromkeys(KNOWN_COLUMNS)).reasons == (
        "missing_country",
        "missing_customer_id",
        "missing_email",
        "missing_first_name",
        "missing_last_name",
        "missing_signup_date",
    )


# -- rule 3: customer_id -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("007", 7),
        (" 42\t", 42),
        ("9223372036854775807", 9223372036854775807),
        ("0009223372036854775807", 9223372036854775807),
    ],
)
def test_customer_id_valid_values_parse(raw: str, expected: int) -> None:
    outcome = process(usa_values(customer_id=raw), **_provenance())
    assert outcome.route == "usa"
    assert isinstance(outcome.record, UsaRecord)
    assert outcome.record.customer_id == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "000",
        "9223372036854775808",
        "99999999999999999999",
        "1" * 5000,
        "-1",
        "+1",
        "1.0",
        "1e3",
        "1 2",
        "0x1F",
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        "\u06f1\u06f2",  # extended Arabic-Indic digits
        "\uff11\uff12\uff13",  # fullwidth digits
        "\u00b2",  # superscript two
        "12" + NBSP,
        NBSP + "12",
    ],
)
def test_customer_id_invalid_values(raw: str) -> None:
    assert reasons(customer_id=raw) == ("invalid_customer_id",)


def test_missing_customer_id_is_not_also_invalid() -> None:
    assert reasons(customer_id="") == ("missing_customer_id",)


# -- rule 4: email -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "a@b.co",
        "a@b.c",
        "first.last+tag@mail.example.co.uk",
        "A.B@EXAMPLE.COM",
        "ü@exämple.com",
        " a@b.com\t",
        "a@b.com\r\n",
        f"a{NBSP}b@c.com",  # U+00A0 is not whitespace for the contract
        f"{NBSP}a@b.com",
        f"a@b.com{EM_SPACE}",
        "a@-.com",
    ],
)
def test_email_valid_values(raw: str) -> None:
    assert reasons(email=raw) == ()


@pytest.mark.parametrize(
    "raw",
    [
        "a@@b.com",
        "a@b@c.com",
        "a@b..com",
        "a@b.",
        "a@b.com.",
        "a@.com",
        "a@.b.com",
        "a@b",
        "@b.com",
        "a@",
        "ab.com",
        "a b@c.com",
        "a@b c.com",
        "a\t@b.com",
        "a@b.\tcom",
        "a\x0bb@c.com",
        "a\x0cb@c.com",
        "a\nb@c.com",
        "a@b.com\nx",
    ],
)
def test_email_invalid_values(raw: str) -> None:
    assert reasons(email=raw) == ("invalid_email",)


def test_email_is_lower_cased_in_the_usa_record() -> None:
    outcome = process(usa_values(email=" Ann.LEE@Example.COM "), **_provenance())
    assert isinstance(outcome.record, UsaRecord)
    assert outcome.record.email == "ann.lee@example.com"


# -- rule 5: signup_date -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2000-02-29", dt.date(2000, 2, 29)),
        ("0001-01-01", dt.date(1, 1, 1)),
        ("9999-12-31", dt.date(9999, 12, 31)),
        (" 2021-04-30 ", dt.date(2021, 4, 30)),
    ],
)
def test_signup_date_valid_values(raw: str, expected: dt.date) -> None:
    outcome = process(usa_values(signup_date=raw), **_provenance())
    assert isinstance(outcome.record, UsaRecord)
    assert outcome.record.signup_date == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2023-02-29",
        "1900-02-29",
        "2021-04-31",
        "2021-13-01",
        "2021-00-10",
        "2021-01-00",
        "2021-01-32",
        "0000-01-01",
        "2021-1-01",
        "2021-01-1",
        "21-01-01",
        "20210101",
        "2021/01/01",
        "01/02/2021",
        "+2021-01-01",
        "12021-01-01",
        "2021-01-01T00:00:00",
        "2021 -01-01",
        "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0661",  # Arabic-Indic digits
        "\uff12\uff10\uff12\uff14-\uff10\uff11-\uff10\uff11",  # fullwidth digits
        "2024-01-01" + NBSP,
    ],
)
def test_signup_date_invalid_values(raw: str) -> None:
    assert reasons(signup_date=raw) == ("invalid_signup_date",)


# -- rule 6: country -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "USA",
        "usa",
        "  usa ",
        "us",
        "US",
        "Us",
        "u.s.",
        "U.S.",
        "u.s.a.",
        "U.S.A.",
        "united states",
        "United   States",
        "United\tStates",
        "united \r\n states",
        "UNITED STATES OF AMERICA",
        "United  States  of\tAmerica",
    ],
)
def test_country_spellings_of_the_usa_normalise_to_usa(raw: str) -> None:
    assert normalise_country(raw) == "USA"
    assert route(country=raw) == "usa"


@pytest.mark.parametrize(
    "raw",
    [
        "US A",
        "U.S.A",
        "U. S. A.",
        "U.S",
        "United States.",
        "UnitedStates",
        "America",
        "United States of America (USA)",
        "\uff35\uff33\uff21",  # fullwidth USA
        NBSP + "USA",
        f"United{NBSP}States",
        f"United{EM_SPACE}States",
    ],
)
def test_near_misses_are_other_countries_kept_as_trimmed(raw: str) -> None:
    assert normalise_country(f" {raw}\t") == raw
    assert route(country=f" {raw}\t") == "out_of_scope"


def test_other_countries_keep_their_inner_whitespace() -> None:
    assert normalise_country("  United   Kingdom ") == "United   Kingdom"
    assert normalise_country(None) is None
    assert normalise_country(" \t") is None


# -- rule 7: state and zip code, USA only --------------------------------------------------


@pytest.mark.parametrize("raw", ["IL", "il", "Il", "iL", " ca ", "DC", "dc", "Dc", "WY", "AK", "HI"])
def test_state_codes_are_compared_case_insensitively(raw: str) -> None:
    outcome = process(usa_values(state=raw), **_provenance())
    assert isinstance(outcome.record, UsaRecord)
    assert outcome.record.state == trim(raw).upper()


@pytest.mark.parametrize(
    "raw",
    [
        "XX",
        "PR",
        "GU",
        "Illinois",
        "I",
        "ILL",
        "I L",
        "I.L.",
        "\u0131l",  # dotless i: Unicode upper-cases it to I, ASCII does not
        "\u017fc",  # long s: Unicode upper-cases it to S
        "\uff29\uff2c",  # fullwidth IL
        "IL" + NBSP,
    ],
)
def test_invalid_states(raw: str) -> None:
    assert reasons(state=raw) == ("invalid_state",)


@pytest.mark.parametrize("raw", ["12345", "00501", " 62701 ", "12345-6789"])
def test_valid_zip_codes(raw: str) -> None:
    assert reasons(zip_code=raw) == ()


@pytest.mark.parametrize(
    "raw",
    [
        "1234",
        "123456",
        "12345-678",
        "12345-67890",
        "12345-",
        "12345 6789",
        "123456789",
        "ABCDE",
        "\u0661\u0662\u0663\u0664\u0665",
        "\uff11\uff12\uff13\uff14\uff15",
        "12345" + NBSP,
    ],
)
def test_invalid_zip_codes(raw: str) -> None:
    assert reasons(zip_code=raw) == ("invalid_zip_code",)


def test_missing_state_and_zip_code_are_reported_once_each() -> None:
    assert reasons(state=None, zip_code=" ") == ("missing_state", "missing_zip_code")


def test_state_and_zip_code_are_not_checked_outside_the_usa() -> None:
    assert reasons(country="Canada", state="Ontario", zip_code="K1A 0B1") == ()
    assert reasons(country="Canada", state=None, zip_code=None) == ()
    assert route(country="Canada", state=None, zip_code=None) == "out_of_scope"


# -- order, combination and routing --------------------------------------------------------


def test_every_applicable_reason_is_collected_and_sorted() -> None:
    verdict = classify(
        usa_values(
            customer_id="x",
            first_name="",
            email="bad",
            signup_date="2023-02-29",
            country="u.s.",
            state="ZZ",
            zip_code="1",
        )
    )
    assert verdict.reasons == (
        "invalid_customer_id",
        "invalid_email",
        "invalid_signup_date",
        "invalid_state",
        "invalid_zip_code",
        "missing_first_name",
    )
    assert verdict.route == "alerts"
    assert verdict.country == "USA"


def test_validate_lists_reasons_in_rule_order() -> None:
    assert validate(usa_values(zip_code=None, state="ZZ", email="bad", last_name=None)) == (
        "missing_last_name",
        "invalid_email",
        "missing_zip_code",
        "invalid_state",
    )


def test_reason_codes_are_the_contracts() -> None:
    assert REASON_CODES == (
        "malformed_row",
        "missing_customer_id",
        "missing_first_name",
        "missing_last_name",
        "missing_email",
        "missing_country",
        "missing_signup_date",
        "invalid_customer_id",
        "invalid_email",
        "invalid_signup_date",
        "missing_state",
        "missing_zip_code",
        "invalid_state",
        "invalid_zip_code",
    )


def test_malformed_stands_alone_whatever_the_values() -> None:
    assert classify(dict.fromkeys(KNOWN_COLUMNS), malformed=True).reasons == ("malformed_row",)
    verdict = classify(usa_values(email="bad", state="ZZ"), malformed=True)
    assert verdict.reasons == ("malformed_row",)
    assert verdict.route == "alerts"
    assert classify(usa_values(), malformed=True).route == "alerts"


def test_invalid_records_are_alerts_whatever_the_country() -> None:
    assert classify(usa_values(country="Canada", email="bad")).route == "alerts"
    assert classify(usa_values(country="Canada", signup_date="2023-02-29")).reasons == ("invalid_signup_date",)


def test_target_country_is_a_parameter() -> None:
    canadian = usa_values(country=" canada ", state="ON", zip_code="K1A 0B1")
    assert classify(canadian).route == "out_of_scope"
    # The state and zip rules follow the target, so a Canadian province is not a state.
    assert classify(canadian, target_country="Canada").reasons == (
        "invalid_state",
        "invalid_zip_code",
    )
    assert classify(usa_values(country="CANADA", zip_code="12345"), target_country="Canada").route == "usa"
    assert classify(usa_values(state=None), target_country="Canada").route == "out_of_scope"
    assert classify(usa_values(), target_country="United States").route == "usa"
    assert is_target_country("USA", "u.s.a.") is True
    assert is_target_country(None, "USA") is False
    with pytest.raises(ValueError, match="target country"):
        classify(usa_values(), target_country=" ")


# -- output records ------------------------------------------------------------------------


def _provenance(row: int = 3) -> Dict[str, Any]:
    return {
        "source_uri": "s3://customers/incoming/a.csv",
        "source_row": row,
        "record_id": "f" * 32,
        "ingested_at": INGESTED_AT,
    }


def test_usa_record_is_typed_and_cleaned() -> None:
    values = usa_values(
        customer_id=" 007 ",
        first_name=" Ann ",
        last_name="\tLee",
        email=" ANN@Example.com",
        phone=" ",
        address=None,
        city=" Springfield\r\n",
        state=" dc ",
        zip_code=" 20001-1234 ",
        country=" united   states ",
        signup_date=" 2000-02-29 ",
    )
    outcome = process(values, **_provenance())
    assert outcome.route == "usa"
    assert outcome.reasons == ()
    assert outcome.record == UsaRecord(
        customer_id=7,
        first_name="Ann",
        last_name="Lee",
        email="ann@example.com",
        phone=None,
        address=None,
        city="Springfield",
        state="DC",
        zip_code="20001-1234",
        country="USA",
        signup_date=dt.date(2000, 2, 29),
        source_uri="s3://customers/incoming/a.csv",
        source_row=3,
        record_id="f" * 32,
        ingested_at=INGESTED_AT,
    )
    assert outcome.record.to_json_dict() == {
        "customer_id": 7,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": None,
        "address": None,
        "city": "Springfield",
        "state": "DC",
        "zip_code": "20001-1234",
        "country": "USA",
        "signup_date": "2000-02-29",
        "source_uri": "s3://customers/incoming/a.csv",
        "source_row": 3,
        "record_id": "f" * 32,
        "ingested_at": "2024-05-01T12:30:45.123456Z",
    }


def test_alert_record_holds_trimmed_raw_strings_and_sorted_reasons() -> None:
    values = usa_values(
        customer_id=" 0 ",
        email=" Bad@Mail ",
        phone="",
        country=" u.s.a. ",
        state=" ",
        zip_code="1234 ",
    )
    outcome = process(values, raw_line="ignored unless malformed", **_provenance(9))
    assert outcome.route == "alerts"
    assert outcome.record == AlertRecord(
        customer_id="0",
        first_name="Ann",
        last_name="Lee",
        email="Bad@Mail",
        phone=None,
        address="1 Main St",
        city="Springfield",
        state=None,
        zip_code="1234",
        country="u.s.a.",
        signup_date="2024-02-29",
        raw_line=None,
        alert_reasons=("invalid_customer_id", "invalid_email", "invalid_zip_code", "missing_state"),
        source_uri="s3://customers/incoming/a.csv",
        source_row=9,
        record_id="f" * 32,
        ingested_at=INGESTED_AT,
    )
    assert outcome.record.to_json_dict()["alert_reasons"] == [
        "invalid_customer_id",
        "invalid_email",
        "invalid_zip_code",
        "missing_state",
    ]


def test_malformed_alert_has_null_columns_and_the_raw_line() -> None:
    outcome = process(usa_values(), malformed=True, raw_line='1,"a\nb",c', **_provenance())
    assert isinstance(outcome.record, AlertRecord)
    assert outcome.record.raw_line == '1,"a\nb",c'
    assert outcome.record.alert_reasons == ("malformed_row",)
    assert [getattr(outcome.record, column) for column in KNOWN_COLUMNS] == [None] * 11


def test_out_of_scope_has_no_output_record() -> None:
    outcome = process(usa_values(country="France"), **_provenance())
    assert outcome.route == "out_of_scope"
    assert outcome.reasons == ()
    assert outcome.record is None


def test_ingested_at_must_be_aware_and_is_stored_in_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        process(usa_values(), **{**_provenance(), "ingested_at": dt.datetime(2024, 1, 1)})
    plus_two = dt.timezone(dt.timedelta(hours=2))
    outcome = process(
        usa_values(),
        **{**_provenance(), "ingested_at": dt.datetime(2024, 1, 1, 2, 0, tzinfo=plus_two)},
    )
    assert isinstance(outcome.record, UsaRecord)
    assert outcome.record.ingested_at == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert outcome.record.ingested_at.utcoffset() == dt.timedelta(0)


def test_timestamps_are_iso_8601_utc_with_microseconds() -> None:
    assert format_timestamp(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == ("2024-01-02T03:04:05.000000Z")
    assert parse_timestamp("2024-01-02T03:04:05.000007Z") == dt.datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=dt.timezone.utc)
    assert parse_timestamp("2024-01-02T05:04:05.000000+02:00") == dt.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc
    )
    with pytest.raises(ValueError):
        parse_timestamp("2024-01-02T03:04:05")


# -- record_id -----------------------------------------------------------------------------


def test_record_id_is_a_pinned_function_of_uri_etag_and_row() -> None:
    # Pinned: changing the encoding would give every row already delivered a new id.
    assert record_id("s3://customers/incoming/a.csv", "abc", 1) == "580dd962e7dc5d81c752c0b8e2e06ed4"
    assert record_id("s3://customers/incoming/a.csv", '"abc"', 1) == record_id(
        "s3://customers/incoming/a.csv", "abc", 1
    )


def test_record_id_differs_by_each_part() -> None:
    base = record_id("s3://b/a.csv", "e1", 1)
    assert len(base) == 32
    assert int(base, 16) >= 0
    assert record_id("s3://b/a.csv", "e1", 2) != base
    assert record_id("s3://b/a.csv", "e2", 1) != base
    assert record_id("s3://b/b.csv", "e1", 1) != base
    # No ambiguity from concatenation.
    assert record_id("s3://b/a", "1", 11) != record_id("s3://b/a1", "", 11)
    assert record_id("s3://b/ä.csv", "e1", 1) == record_id("s3://b/ä.csv", "e1", 1)
