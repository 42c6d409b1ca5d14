"""Writes the hostile corpus: one source object per case, and `index.json`.

    .venv/bin/python tests/hostile_corpus/make_corpus.py          # (re)write the files
    .venv/bin/python tests/hostile_corpus/make_corpus.py --check  # exit 1 when a stored file differs

Every case's bytes are built here from literals, not typed into an editor. Editors and git
settings silently change CR, trailing whitespace, BOMs, NUL bytes and U+00A0, and those are
what the cases are about. The unit test checks that the stored files are exactly what this
script writes. The expected outcomes (`<name>.expected.json`) are written by hand from
CONTRACT.md and are never generated: this script writes only the data and the index.

A case too big to store (the 10 MB field) has `stored=False`. Its bytes come from a
generator that the tests call (`generate(name)`, or `stream(name)` for a reader that must
not see the whole object at once).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.json"

# The reader's default max_record_bytes (csv_reader.DEFAULT_MAX_RECORD_BYTES) and the
# producer's default setting: the long-line cases sit right around it. It is restated
# here, not imported, so this script runs without the package; the unit test checks that
# both agree.
MAX_RECORD_BYTES = 256 * 1024

COLUMNS = ("customer_id", "first_name", "last_name", "email", "phone", "address", "city", "state", "zip_code",
           "country", "signup_date")
HEADER = ",".join(COLUMNS)
GOOD: Dict[str, str] = {
    "customer_id": "1", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com",
    "phone": "555-0100", "address": "1 Main St", "city": "Springfield", "state": "IL", "zip_code": "62701",
    "country": "USA", "signup_date": "2024-02-29",
}

# The bullets, by id; each case names the ones it covers.
BULLETS: Dict[str, str] = {
    "reason-codes": "every reason code of the contract, with per-row reasons",
    "wrong-delimiter": "wrong delimiters (';', tab)",
    "unbalanced-quotes": "unbalanced quotes",
    "header-only": "a header only",
    "header-10000-columns": "a header with 10,000 columns",
    "ten-mb-field": "one 10 MB field (generated at test time)",
    "binary-garbage": "binary garbage",
    "invalid-utf8": "invalid UTF-8",
    "utf16-bom": "UTF-16 with BOM",
    "line-end-mixes": "CR / LF / CRLF mixes",
    "duplicate-header-names": "duplicate header names",
    "nul-bytes": "NUL bytes",
    "zero-byte-object": "a 0-byte object",
    "key-spaces-non-ascii": "a key with spaces and non-ASCII characters",
    "key-upper-case-csv": "a .CSV key in capitals (and other keys the key filter must refuse)",
    "bom-header": "BOM + header",
    "blank-lines": "blank lines everywhere, only blank lines, only a BOM",
    "quoted-multi-line": "quoted multi-line records",
    "trailing-comma": "trailing comma columns",
    "unknown-columns": "unknown columns",
    "column-order": "columns in any order",
    "optional-columns-missing": "missing optional columns",
    "required-column-missing": "a required column missing from the header (object rejected whole)",
    "header-case-whitespace": "header names with mixed case and whitespace",
    "quote-escapes": "\"\" escapes",
    "quote-in-unquoted-field": "a quote inside an unquoted field",
    "max-record-bytes": "a very long line just under / over max_record_bytes",
    "unicode-whitespace": "Unicode whitespace around values (not trimmed by the contract)",
    "customer-id-edges": "leading-zero ids, id = 0, id above 9223372036854775807",
    "calendar-dates": "Feb 29 on a non-leap year and other calendar edges",
    "country-spellings": "countries spelled every accepted way (and near misses)",
    "state-codes": "lowercase states, DC, non-states",
    "zip-codes": "zip+4 and malformed zip codes",
    "more-hostile-values": "other hostile values: non-ASCII text, formulas, duplicates, a repeated header",
}


@dataclass(frozen=True)
class Case:
    name: str
    covers: Tuple[str, ...]
    data: Optional[bytes] = None
    generator: Optional[Callable[[], Iterator[bytes]]] = None

    @property
    def stored(self) -> bool:
        return self.generator is None


def row(**changes: str) -> str:
    """A data record in HEADER's column order: the valid USA row GOOD with `changes`."""
    unknown = set(changes) - set(GOOD)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    return ",".join(changes.get(column, GOOD[column]) for column in COLUMNS)


def lf(*records: str) -> bytes:
    """Records joined by LF, with a final LF, as UTF-8."""
    return "".join(record + "\n" for record in records).encode("utf-8")


def crlf(*records: str) -> bytes:
    return "".join(record + "\r\n" for record in records).encode("utf-8")


def pseudo_random(size: int, seed: bytes) -> bytes:
    """Bytes that look random and are the same on every machine and Python (SHA-256 in counter mode)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def long_line(total_bytes: int, customer_id: str) -> str:
    """A valid USA record whose address pads it to exactly `total_bytes` bytes of UTF-8."""
    bare = row(customer_id=customer_id, address="")
    padding = total_bytes - len(bare.encode("utf-8"))
    if padding < 1:
        raise ValueError("too short to pad")
    return row(customer_id=customer_id, address="x" * padding)


def header_10000_columns() -> bytes:
    # The known columns sit far apart and out of order, so a reader that mapped columns by
    # position in a short list, or stopped looking after some count, would misplace them.
    positions = {0: "customer_id", 1234: "first_name", 2345: "last_name", 4567: "email", 5000: "phone",
                 6001: "address", 7002: "city", 8003: "state", 9004: "zip_code", 9998: "country",
                 9999: "signup_date"}
    names = [positions.get(index, f"extra_{index:05d}") for index in range(10_000)]

    def record(values: Dict[str, str], count: int = 10_000) -> str:
        fields = [""] * count
        for index, column in positions.items():
            if index < count:
                fields[index] = values[column]
        return ",".join(fields)

    return lf(
        ",".join(names),
        record(dict(GOOD, customer_id="1")),
        record(dict(GOOD, customer_id="2"), count=9_999),
        record(dict(GOOD, customer_id="3", email="not-an-email")),
    )


TEN_MB = 10 * 1024 * 1024
TEN_MB_PIECE = 64 * 1024


def ten_megabyte_field() -> Iterator[bytes]:
    """Header, a valid row, a row whose address is 10 MiB of `x`, a valid row: made up in pieces.

    Nothing here holds more than one 64 KiB piece, so a test that reads it through a stream
    measures the reader's memory, not the generator's.
    """
    before, after = row(customer_id="2", address="\x00").split("\x00")
    yield lf(HEADER, row(customer_id="1")) + before.encode("utf-8")
    for _ in range(TEN_MB // TEN_MB_PIECE):
        yield b"x" * TEN_MB_PIECE
    yield (after + "\n").encode("utf-8")
    yield lf(row(customer_id="3"))


class ChunkStream(io.RawIOBase):
    """A binary stream over pieces made on demand; counts what it has given out."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._pending = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if size is None or size < 0:
            raise ValueError("read the corpus stream in chunks")
        while len(self._pending) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._pending += piece
        chunk, self._pending = self._pending[:size], self._pending[size:]
        self.bytes_read += len(chunk)
        return chunk


BOM = "\ufeff"
NBSP = "\u00a0"
ALL_REQUIRED = ("customer_id", "first_name", "last_name", "email", "country", "signup_date")


def cases() -> List[Case]:
    c: List[Case] = []

    def add(name: str, covers: Tuple[str, ...], data: bytes) -> None:
        c.append(Case(unicodedata.normalize("NFC", name), covers, data))

    # -- every reason code -------------------------------------------------------------------
    add("reason_malformed_row.csv", ("reason-codes",), lf(
        HEADER,
        row(customer_id="1"),
        "2,Ann,Lee",
        row(customer_id="3") + ",extra",
    ) + row(customer_id="4").encode().replace(b"Ann", b"Zo\xeb") + b"\n" + lf(
        "abc,,,not-an-email,,,,XX,1,USA",
        row(customer_id="6"),
    ))
    add("reason_missing_required.csv", ("reason-codes",), lf(
        HEADER,
        row(customer_id=""),
        row(customer_id="2", first_name="   "),
        row(customer_id="3", last_name=""),
        row(customer_id="4", email="\t"),
        row(customer_id="5", country="", state="", zip_code=""),
        row(customer_id="6", signup_date=" \x0b\x0c "),
        ",,,,,,,,,,",
        row(customer_id='" \r\n\t "'),
        row(customer_id="9"),
    ))
    add("reason_invalid_customer_id.csv", ("reason-codes",), lf(
        HEADER,
        *(row(customer_id=value) for value in (
            "abc", "-1", "1.0", "1 2", "+5", "\uff11\uff12\uff13", "\u0663", "0x1F", "1e3", "\t 42 ")),
    ))
    add("reason_invalid_email.csv", ("reason-codes",), lf(
        HEADER,
        *(row(customer_id=str(number), email=value) for number, value in enumerate((
            "ann.example.com", "ann@@example.com", "ann@example", "ann@example.", "ann@.example.com",
            "ann@example..com", "ann lee@example.com", "@example.com", "ann@exa@mple.com", "ann\t@example.com",
            "ann@exam ple.com", "ANN@Example.COM", "a@b.c", "ann+tag.x@sub.example.co.uk", " ann@example.com ",
        ), start=1)),
    ))
    add("reason_invalid_signup_date.csv", ("reason-codes",), lf(
        HEADER,
        *(row(customer_id=str(number), signup_date=value) for number, value in enumerate((
            "2024-2-29", "24-02-29", "2024/02/29", "2024-13-01", "2024-00-10", "2024-01-00", "2024-04-31",
            "20240101", "2024-01-01T00:00:00", "+2024-01-01", "10000-01-01", "\uff12\uff10\uff12\uff14-01-01",
            "2024-01-1", " 2024-01-01\t",
        ), start=1)),
    ))
    add("reason_usa_state_zip.csv", ("reason-codes",), lf(
        HEADER,
        row(customer_id="1", state=""),
        row(customer_id="2", zip_code=""),
        row(customer_id="3", state="", zip_code=""),
        row(customer_id="4", state="XX"),
        row(customer_id="5", state="Illinois"),
        row(customer_id="6", zip_code="1234"),
        row(customer_id="7", state="XX", zip_code="abcde"),
        row(customer_id="abc", email="ann@", signup_date="2024-02-30", state="XX", zip_code="1"),
        ",,,,,,,,,USA,",
        row(customer_id="10", country="Canada", state="", zip_code=""),
        row(customer_id="11", country="Canada", state="XX", zip_code="K1A 0B1"),
        row(customer_id="12", country="Canada", email="ann at example.com"),
        row(customer_id="13"),
    ))

    # -- delimiters ------------------------------------------------------------------------
    add("delimiter_semicolon.csv", ("wrong-delimiter",), lf(
        HEADER.replace(",", ";"), row().replace(",", ";")))
    add("delimiter_tab.csv", ("wrong-delimiter",), lf(
        HEADER.replace(",", "\t"), row().replace(",", "\t")))
    add("delimiter_semicolon_rows.csv", ("wrong-delimiter",), lf(
        HEADER,
        row(customer_id="1").replace(",", ";"),
        row(customer_id="2").replace(",", ";"),
        row(customer_id="3"),
    ))

    # -- quotes ----------------------------------------------------------------------------
    # Ends without a line end: the open quote takes the rest of the object, and raw_line is
    # that rest, whether or not a final LF would belong to it.
    add("unbalanced_quote_unclosed.csv", ("unbalanced-quotes",), lf(
        HEADER,
        row(customer_id="1"),
        row(customer_id="2", first_name='"Ann'),
        row(customer_id="3"),
    ) + row(customer_id="4").encode())
    add("unbalanced_quote_swallows_next_line.csv", ("unbalanced-quotes", "quoted-multi-line"), lf(
        HEADER,
        row(customer_id="1"),
        '2,"' + row(customer_id="2").split(",", 1)[1],
        '3,Bob",' + row(customer_id="3", email="bob@example.com", phone="555-0101", address="2 Main St",
                          signup_date="2024-03-01").split(",", 2)[2],
        row(customer_id="4"),
    ))
    add("quote_inside_unquoted_field.csv", ("quote-in-unquoted-field", "unbalanced-quotes"), lf(
        HEADER,
        row(customer_id="1", last_name='O"Brien'),
        row(customer_id="2", address='12" Main St'),
        row(customer_id="3", first_name=' "Ann"'),
        row(customer_id="4", first_name='Ann"'),
        row(customer_id="5", last_name='"Lee"son'),
        row(customer_id="6", last_name='"Lee, Jr."'),
    ))
    add("quote_escapes.csv", ("quote-escapes",), lf(
        HEADER,
        row(customer_id="1", last_name='"O""Brien"'),
        row(customer_id="2", first_name='""""'),
        row(customer_id="3", address='"He said ""hi"", then left"'),
        row(customer_id="4", email='"ann""x""@example.com"'),
        row(customer_id="5", first_name='""'),
        row(customer_id="6", city='"a""""b"'),
    ))
    add("quoted_multiline_records.csv", ("quoted-multi-line", "line-end-mixes"), crlf(
        HEADER,
        row(customer_id="1", address='"1 Main St\r\nApt 2"'),
        row(customer_id="2", address='"1 Main St\nApt 2"'),
        row(customer_id="3", first_name='"\nAnn\r\n"'),
        row(customer_id="4", address='"Line 1\r\n\r\n\r\nLine 4, rear"'),
        row(customer_id="5"),
        '6,"Ann\r\nLee",x',
        row(customer_id="7"),
    ))

    # -- header ----------------------------------------------------------------------------
    add("header_only.csv", ("header-only",), lf(HEADER))
    add("header_10000_columns.csv", ("header-10000-columns",), header_10000_columns())
    extra = ",".join(f"padding_column_{index:06d}" for index in range(12_000))
    add("header_over_limit.csv", ("header-10000-columns", "max-record-bytes"), lf(
        HEADER + "," + extra, row() + "," * 12_000))
    add("header_quote_unclosed.csv", ("unbalanced-quotes",), lf(
        HEADER + ',"notes', row(customer_id="1"), row(customer_id="2")))
    add("duplicate_header_names.csv", ("duplicate-header-names",), lf(
        "customer_id,first_name,last_name,email,country,signup_date,state,zip_code,Email, COUNTRY ,customer_id",
        "1,Ann,Lee,ann@example.com,USA,2024-01-01,IL,62701,not-an-email,Canada,x",
        "2,Ann,Lee,not-an-email,USA,2024-01-01,IL,62701,ann@example.com,USA,2",
        "3,Ann,Lee,ann@example.com,Canada,2024-01-01,IL,62701,ann@example.com,USA,3",
    ))
    add("header_mixed_case_whitespace.csv", ("header-case-whitespace",), crlf(
        ' Customer_ID ,FIRST_NAME,"last_name",\tEmail\t, Phone,ADDRESS,City ,sTaTe,ZIP_CODE,'
        '"\x0b Country \x0c",Signup_Date ',
        row(customer_id="1"),
        row(customer_id="2", country="Mexico"),
    ))
    add("header_unicode_space_name.csv", ("header-case-whitespace", "required-column-missing"), lf(
        HEADER.replace("email", NBSP + "email"), row()))
    add("header_non_ascii_case.csv", ("header-case-whitespace", "optional-columns-missing"), lf(
        HEADER.replace("state", "\u017ftate"),
        row(customer_id="1"),
        row(customer_id="2", country="Canada"),
    ))
    add("required_column_missing.csv", ("required-column-missing",), lf(
        HEADER.replace(",email,", ",e-mail,"), row(customer_id="1"), row(customer_id="2")))
    add("required_columns_missing_several.csv", ("required-column-missing",), lf(
        "id,first_name,last_name,email,country,signup,state,zip_code",
        "1,Ann,Lee,ann@example.com,USA,2024-01-01,IL,62701",
    ))
    add("unknown_columns.csv", ("unknown-columns",), lf(
        "loyalty_tier," + HEADER + ",Customer ID,customer-id,emails,,notes",
        "gold," + row(customer_id="1") + ",x,y,not-an-email,,free text",
        "," + row(customer_id="2", country="Japan") + ",,,,,",
    ))
    add("columns_any_order.csv", ("column-order",), lf(
        ",".join(reversed(COLUMNS)),
        ",".join(reversed(row(customer_id="1", first_name="Zed", city="Austin", state="tx",
                              zip_code="73301").split(","))),
        ",".join(reversed(row(customer_id="2", email="bad").split(","))),
    ))
    add("optional_columns_missing.csv", ("optional-columns-missing",), lf(
        "customer_id,first_name,last_name,email,country,signup_date",
        "1,Ann,Lee,ann@example.com,USA,2024-01-01",
        "2,Ana,Ruiz,ana@example.mx,Mexico,2024-01-02",
        "3,Ann,Lee,not-an-email,USA,2024-01-03",
    ))
    add("optional_columns_partial.csv", ("optional-columns-missing",), lf(
        "customer_id,first_name,last_name,email,country,signup_date,state",
        "1,Ann,Lee,ann@example.com,USA,2024-01-01,IL",
        "2,Ann,Lee,ann@example.com,USA,2024-01-01,XX",
        "3,Ann,Lee,ann@example.com,France,2024-01-01,",
    ))
    add("trailing_comma_header.csv", ("trailing-comma",), lf(
        HEADER + ",",
        row(customer_id="1") + ",",
        row(customer_id="2") + ",ignored",
        row(customer_id="3"),
    ))
    add("trailing_comma_rows.csv", ("trailing-comma",), lf(
        HEADER,
        row(customer_id="1") + ",",
        row(customer_id="2") + ",,",
        row(customer_id="3"),
    ))

    # -- encodings and bytes ---------------------------------------------------------------
    add("bom_and_header.csv", ("bom-header",), lf(
        BOM + HEADER, row(customer_id="1"), BOM + row(customer_id="2"), row(customer_id="3")))
    add("double_bom.csv", ("bom-header",), lf(BOM + BOM + HEADER, row()))
    add("truncated_bom.csv", ("bom-header", "invalid-utf8"), b"\xef\xbb" + lf(HEADER, row()))
    add("only_bom.csv", ("bom-header", "blank-lines"), BOM.encode())
    add("invalid_utf8.csv", ("invalid-utf8",), lf(HEADER, row(customer_id="1")) + b"".join(
        row(customer_id=str(number), first_name="@@").encode().replace(b"@@", bad) + b"\n"
        for number, bad in enumerate((
            b"Zo\xeb",              # Latin-1, not UTF-8
            b"Ann\xc3",             # a sequence cut short by the field's end
            b"\xc0\xaf",            # an overlong encoding of '/'
            b"\xed\xa0\x80",        # a UTF-16 surrogate
            b"\xf4\x90\x80\x80",    # above U+10FFFF
            b"\x80Ann",             # a lone continuation byte
            b"Ann\xef\xbf\xbf",     # U+FFFF: a noncharacter, but valid UTF-8
            b"\xf0\x9f\x99\x82",    # a 4-byte character (an emoji): valid
        ), start=2)))
    add("invalid_utf8_split_by_quote.csv", ("invalid-utf8", "quote-escapes"), lf(HEADER) + b"".join((
        # The closing quote sits between the two bytes of "\xc3\xab" (e-diaeresis): the
        # record's bytes are not UTF-8, though the field unquoted would be.
        row(customer_id="1", first_name="@@").encode().replace(b"@@", b'"Zo\xc3"\xab') + b"\n",
        row(customer_id="2", first_name='"Zo\u00eb"').encode() + b"\n",
        row(customer_id="3").encode() + b"\n",
    )))
    utf16_text = BOM + HEADER + "\r\n" + row() + "\r\n"
    add("utf16le_with_bom.csv", ("utf16-bom",), utf16_text.encode("utf-16-le"))
    add("utf16be_with_bom.csv", ("utf16-bom",), utf16_text.encode("utf-16-be"))
    add("binary_garbage.csv", ("binary-garbage",), pseudo_random(4096, b"hostile corpus: binary garbage"))
    add("binary_garbage_after_header.csv", ("binary-garbage", "nul-bytes"), lf(HEADER, row(customer_id="1")) + (
        b"\x89PNG\r\n"
        b"\x1a\n"
        + bytes(range(0x80, 0x100)) + b"\n"
        b"\x00\x01\x02,\x03\x04\n"
    ) + lf(row(customer_id="6")))
    add("nul_bytes.csv", ("nul-bytes",), lf(
        HEADER,
        row(customer_id="1", first_name="A\x00nn"),
        row(customer_id="\x001"),
        "\x00",
        row(customer_id="4", country="US\x00A"),
        row(customer_id="5"),
    ))
    add("nul_only.csv", ("nul-bytes",), b"\x00" * 1024)
    add("empty.csv", ("zero-byte-object",), b"")

    # -- line ends and blank lines ---------------------------------------------------------
    add("line_endings_mixed.csv", ("line-end-mixes", "blank-lines"), (
        HEADER + "\r\n"
        + row(customer_id="1") + "\n"
        + row(customer_id="2") + "\r\n"
        + row(customer_id="3") + "\r" + row(customer_id="4", first_name="Bob") + "\n"
        + row(customer_id="5") + "\r\r\n"
        + "\r\n"
        + "\r\r\n"
        + row(customer_id="6")
    ).encode())
    add("line_endings_cr_only.csv", ("line-end-mixes",), (
        HEADER + "\r" + row(customer_id="1") + "\r" + row(customer_id="2") + "\r").encode())
    add("blank_lines_everywhere.csv", ("blank-lines",), (
        "\n   \n\t\r\n"
        + HEADER + "\n"
        + "\n"
        + row(customer_id="1") + "\n"
        + " \x0b\x0c\t \n"
        + '""\n'
        + '" \t "\n'
        + row(customer_id="2") + "\n"
        + ",,,\n"
        + NBSP + "\n"
        + row(customer_id="5") + "\n"
        + "\n\n\r\n"
    ).encode())
    add("only_blank_lines.csv", ("blank-lines",), b'\n  \n\t\r\n\r\n\x0b\x0c\n""\n" "\n')

    # -- record size -----------------------------------------------------------------------
    add("long_line_under_limit.csv", ("max-record-bytes",), lf(
        HEADER, row(customer_id="1"), long_line(MAX_RECORD_BYTES - 1, "2"), row(customer_id="3")))
    add("long_line_over_limit.csv", ("max-record-bytes",), lf(
        HEADER, row(customer_id="1"), long_line(MAX_RECORD_BYTES + 1, "2"), row(customer_id="3")))
    c.append(Case("ten_mb_field.csv", ("ten-mb-field", "max-record-bytes"), generator=ten_megabyte_field))
    add("header_10000_columns_rejected.csv", ("header-10000-columns", "required-column-missing"), lf(
        ",".join(f"column_{index:05d}" for index in range(10_000)),
        ",".join(str(index) for index in range(10_000)),
    ))

    # -- values ----------------------------------------------------------------------------
    add("unicode_whitespace_values.csv", ("unicode-whitespace",), lf(
        HEADER,
        row(customer_id=NBSP + "1"),
        row(customer_id="2", state="\u2003IL"),
        row(customer_id="3", zip_code="62701" + NBSP),
        row(customer_id="4", signup_date="\u30002024-01-01"),
        row(customer_id="5", country=NBSP + "USA"),
        row(customer_id="6", first_name=NBSP),
        row(customer_id="7", email="ann" + NBSP + "lee@example.com"),
        row(customer_id="8", last_name="Lee\u2028Jr"),
        "\t 9 \x0b,\tAnn ,  Lee\x0c,\x0bann@example.com , 555-0100 ,\t1 Main St\t, Springfield ,"
        " il , 62701 ,\tusa\t, 2024-02-29 ",
        row(customer_id="\u008510"),
        row(customer_id="11", country="United" + NBSP + "States"),
    ))
    add("customer_id_edges.csv", ("customer-id-edges",), lf(
        HEADER,
        *(row(customer_id=value) for value in (
            "007", "0", "000", "9223372036854775807", "9223372036854775808", "0009223372036854775807",
            "18446744073709551616", "1" + "0" * 5000, "0" * 5000 + "1", "-0")),
    ))
    add("signup_date_calendar.csv", ("calendar-dates",), lf(
        HEADER,
        *(row(customer_id=str(number), signup_date=value) for number, value in enumerate((
            "2023-02-29", "1900-02-29", "2100-02-29", "2000-02-29", "2024-02-29", "2024-02-30", "2023-06-31",
            "2023-12-31", "0000-01-01", "0001-01-01", "9999-12-31",
        ), start=1)),
    ))
    accepted = ("us", "US", "usa", "USA", "u.s.", "U.S.", "u.s.a.", "U.S.A.", "united states", "United States",
                "UNITED STATES OF AMERICA", "united   states", "united\tstates", "  United States of America  ",
                '"United\nStates"', '"united\x0b\x0cstates of\r\namerica"')
    refused = ("U.S", "America", "United-States", "USA.", "U S A", "united states of america.",
               "\uff35\uff33\uff21", "Canada", "usa" + NBSP)
    add("country_spellings.csv", ("country-spellings",), lf(
        HEADER,
        *(row(customer_id=str(number), country=value)
          for number, value in enumerate(accepted, start=1)),
        *(row(customer_id=str(number), country=value, state="XX", zip_code="bad")
          for number, value in enumerate(refused, start=len(accepted) + 1)),
    ))
    add("states_lowercase_dc.csv", ("state-codes",), lf(
        HEADER,
        *(row(customer_id=str(number), state=value) for number, value in enumerate((
            "il", "Il", "iL", "dc", "DC", "Dc", " ny ", "pr", "GU", "\u0131l", "I L", "ILL", "\uff29\uff2c",
        ), start=1)),
    ))
    add("zip_codes.csv", ("zip-codes",), lf(
        HEADER,
        *(row(customer_id=str(number), zip_code=value) for number, value in enumerate((
            "62701", "62701-1234", "00501", " 62701-1234 ", "62701-", "62701-123", "627011234", "6270",
            "062701", "62701 1234", "62701\u20131234", "\uff16\uff12\uff17\uff10\uff11",
        ), start=1)),
    ))
    add("non_ascii_values.csv", ("more-hostile-values",), lf(
        HEADER,
        row(customer_id="1", first_name="Zo\u00eb \U0001f642", last_name="\u05db\u05d4\u05df",
            city="S\u00e3o Paulo", address="\u6771\u4eac\u90fd 1-2-3"),
        row(customer_id="2", email="\u00c5SA@EXAMPLE.COM"),
        row(customer_id="3", first_name="Jose\u0301", email="ZO\u00cb@B\u00dcCHER.DE"),
    ))
    add("csv_injection_values.csv", ("more-hostile-values", "quote-in-unquoted-field"), lf(
        HEADER,
        row(customer_id="1", first_name='=HYPERLINK("http://example.com";"x")'),
        row(customer_id="2", first_name="+SUM(1;2)", last_name="-2+3", city="@cmd"),
        row(customer_id="3", email="=1+1@example.com"),
    ))
    add("duplicate_rows.csv", ("more-hostile-values",), lf(HEADER, row(), row(), row()))
    add("header_repeated_as_row.csv", ("more-hostile-values",), lf(
        HEADER, row(customer_id="1"), HEADER, row(customer_id="3")))

    # -- keys ------------------------------------------------------------------------------
    add("clients \u00e9t\u00e9 2026.csv", ("key-spaces-non-ascii",), lf(
        HEADER, row(customer_id="1", city="Montr\u00e9al", country="Canada"), row(customer_id="2")))
    add("upper_case_extension.CSV", ("key-upper-case-csv",), lf(HEADER, row()))
    add("not_csv.csv.txt", ("key-upper-case-csv",), lf(HEADER, row()))
    return c


def index_document(corpus: List[Case]) -> Dict[str, object]:
    return {
        "comment": "Written by make_corpus.py; edit that script, not this file. Expectations: <name>.expected.json.",
        "max_record_bytes": MAX_RECORD_BYTES,
        "bullets": BULLETS,
        "cases": [
            {"name": case.name, "covers": list(case.covers), "stored": case.stored,
             **({} if case.generator is None else {"generator": case.generator.__name__})}
            for case in corpus
        ],
    }


def index_bytes(corpus: List[Case]) -> bytes:
    return (json.dumps(index_document(corpus), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def by_name() -> Dict[str, Case]:
    return {case.name: case for case in cases()}


def generate(name: str) -> bytes:
    """The bytes of any case, stored or generated."""
    case = by_name()[name]
    if case.generator is not None:
        return b"".join(case.generator())
    assert case.data is not None
    return case.data


def stream(name: str) -> ChunkStream:
    """A case as a stream whose pieces are made only when read."""
    case = by_name()[name]
    pieces = case.generator() if case.generator is not None else iter([case.data or b""])
    return ChunkStream(pieces)


def expected_files(corpus: List[Case]) -> Dict[str, bytes]:
    """Every file this script owns, by name: the stored cases' data and the index."""
    files = {case.name: case.data for case in corpus if case.data is not None}
    files[INDEX.name] = index_bytes(corpus)
    return files


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    corpus = cases()
    names = [case.name for case in corpus]
    if len(set(names)) != len(names):
        raise SystemExit("two cases share a name")
    differ = []
    for name, data in expected_files(corpus).items():
        path = HERE / name
        if path.exists() and path.read_bytes() == data:
            continue
        differ.append(name)
        if not args.check:
            path.write_bytes(data)
    for name in differ:
        print(("differs: " if args.check else "wrote: ") + name)
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
