"""Reading one source CSV object as the contract defines it, streaming.

The object is read in chunks from any binary stream with `read(n)` (a file opened
`'rb'`, a boto3 `StreamingBody`), so memory stays flat however large the object is: at
most one chunk plus one record is held at a time.

Parsing happens on bytes, before decoding. The bytes that give CSV its structure
(`,` `"` CR LF) are ASCII, and UTF-8 never uses ASCII bytes inside a multi-byte
character, so records and fields can be found without decoding; each record is then
decoded on its own, and invalid UTF-8 makes that record malformed without touching its
neighbours.

Decisions where the contract is silent:

- Quoting follows RFC 4180: a field is quoted only when its first byte is `"` (a field
  ` "a"` with a leading space is unquoted and keeps its quotes); `""` inside a quoted
  field is one quote. Text after a closing quote up to the next comma is kept as is
  (`"ab"c` is `abc`, as Python's `csv` reads it), and a quote inside an unquoted field
  is an ordinary character.
- Line breaks inside quoted fields are kept exactly as the object has them (`\\r\\n`
  stays `\\r\\n`). Only `\\n` and `\\r\\n` end records; a lone CR is data.
- Blank lines before the header are skipped too: the header is the first non-blank
  record. An object with no non-blank record (empty, only a BOM, only blank lines) has
  no header and raises `EmptyObjectError`.
- A data record is malformed when its field count differs from the header's, when its
  bytes are not valid UTF-8, when a quoted field is still open at the end of the object,
  or when it is longer than `max_record_bytes` (then reading goes on at the line after
  the one where the limit was reached). Malformed records are never blank.
- `raw_line` is the record's original text without its final line terminator; for a
  multi-line record that is all its lines, inner line breaks included. It is decoded
  with `errors='replace'` so that a record with invalid bytes still has a text
  (each invalid byte sequence becomes U+FFFD), and a too-long record's `raw_line` is its
  first `max_record_bytes` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Dict, Iterator, List, Optional, Sequence, Tuple

from customer_pipeline.contract.rules import KNOWN_COLUMNS, REQUIRED_COLUMNS, ascii_lower, trim

DEFAULT_CHUNK_BYTES = 1 << 20
# Far above any real customer row, and low enough that a raw message carrying such a
# record still fits Kafka's default 1 MiB message limit.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024

_BOM = b"\xef\xbb\xbf"
_QUOTE = 0x22
_WHITESPACE_BYTES = b" \t\r\n\x0b\x0c"

_UNCLOSED_QUOTE = "quoted field not closed before the end of the object"


class CsvObjectError(ValueError):
    """The object as a whole cannot be ingested."""


class EmptyObjectError(CsvObjectError):
    """The object has no header (it is empty or holds only blank lines): skip it."""

    def __init__(self) -> None:
        super().__init__("object is empty: no header")


class MissingColumnsError(CsvObjectError):
    """The header lacks required columns: the object is rejected whole."""

    def __init__(self, missing: Sequence[str], header: Sequence[str]) -> None:
        self.missing: Tuple[str, ...] = tuple(missing)
        self.header: Tuple[str, ...] = tuple(header)
        super().__init__("header lacks required column(s): " + ", ".join(self.missing))


class HeaderQuoteError(CsvObjectError):
    """A quoted name in the header is never closed: the header swallows the whole object,
    so none of its records could be read (rejected rather than done with 0 rows)."""

    def __init__(self) -> None:
        super().__init__("a quoted name in the header is not closed before the end of the object")


class HeaderTooLongError(CsvObjectError):
    """The header is longer than the record size limit, so it cannot be trusted."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"header longer than {limit} bytes")


@dataclass(frozen=True)
class SourceRecord:
    """One data record of an object.

    `values` maps every known column to its raw, untrimmed string; None when the
    column is absent from the header, and for every column of a malformed record.
    `raw_line` and `malformed_reason` (a human-readable detail) are set only for a
    malformed record.
    """

    source_row: int
    values: Dict[str, Optional[str]]
    raw_line: Optional[str] = None
    malformed_reason: Optional[str] = None

    @property
    def malformed(self) -> bool:
        return self.malformed_reason is not None


@dataclass(frozen=True)
class _RawRecord:
    fields: List[bytes]
    text: bytes
    problem: Optional[str]


_NO_VALUES: Dict[str, Optional[str]] = dict.fromkeys(KNOWN_COLUMNS)


class CsvObject:
    """An opened CSV object: the header is read and checked, the records follow.

    Iterate over it once to get its `SourceRecord`s, in order.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if max_record_bytes < 1 or chunk_bytes < 1:
            raise ValueError("max_record_bytes and chunk_bytes must be positive")
        self._limit = max_record_bytes
        self._records = _split_records(_lines(stream, chunk_bytes, max_record_bytes), max_record_bytes)
        header = self._first_non_blank()
        if header is None:
            raise EmptyObjectError()
        if header.problem == _UNCLOSED_QUOTE:
            raise HeaderQuoteError()
        if header.problem is not None:
            raise HeaderTooLongError(max_record_bytes)
        self.header: Tuple[str, ...] = tuple(f.decode("utf-8", "replace") for f in header.fields)
        self.field_count = len(self.header)
        columns: Dict[str, int] = {}
        for index, name in enumerate(self.header):
            key = ascii_lower(trim(name))
            if key in _NO_VALUES and key not in columns:
                columns[key] = index
        self.columns: Dict[str, int] = columns
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise MissingColumnsError(missing, self.header)
        self._started = False

    def _first_non_blank(self) -> Optional[_RawRecord]:
        for raw in self._records:
            if not _is_blank(raw):
                return raw
        return None

    def __iter__(self) -> Iterator[SourceRecord]:
        if self._started:
            raise RuntimeError("a CsvObject can be iterated only once")
        self._started = True
        return self._iter_records()

    def _iter_records(self) -> Iterator[SourceRecord]:
        layout = [(column, self.columns.get(column)) for column in KNOWN_COLUMNS]
        expected = self.field_count
        source_row = 0
        for raw in self._records:
            if _is_blank(raw):
                continue
            source_row += 1
            problem = raw.problem
            if problem is None and len(raw.fields) != expected:
                problem = f"{len(raw.fields)} fields, header has {expected}"
            decoded: List[str] = []
            if problem is None:
                try:
                    decoded = [f.decode("utf-8") for f in raw.fields]
                    if b'"' in raw.text:
                        # Unquoting drops quote bytes, which can join the two halves of a
                        # character the record itself splits (`"Zo\xc3"\xab` unquotes to
                        # `Zoë`). Rule 1 judges the record's bytes, so check them too. Without
                        # quotes the fields are the record cut at commas, and the check above
                        # already covers every byte.
                        raw.text.decode("utf-8")
                except UnicodeDecodeError as error:
                    problem = f"invalid UTF-8: {error.reason}"
            if problem is not None:
                yield SourceRecord(
                    source_row=source_row,
                    values=dict(_NO_VALUES),
                    raw_line=raw.text.decode("utf-8", "replace"),
                    malformed_reason=problem,
                )
                continue
            yield SourceRecord(
                source_row=source_row,
                values={column: None if index is None else decoded[index] for column, index in layout},
            )


def open_csv_object(
    stream: BinaryIO,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> CsvObject:
    """Read and check the header of a CSV object; iterate the result for its records.

    Raises `EmptyObjectError` when there is no header, `MissingColumnsError` when the
    header lacks required columns (nothing of such an object may be published), and
    `HeaderTooLongError` when the header exceeds `max_record_bytes`.
    """
    return CsvObject(stream, max_record_bytes=max_record_bytes, chunk_bytes=chunk_bytes)


def read_records(
    stream: BinaryIO,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[SourceRecord]:
    """The data records of a CSV object; the header is checked before this returns."""
    return iter(open_csv_object(stream, max_record_bytes=max_record_bytes, chunk_bytes=chunk_bytes))


def _is_blank(raw: _RawRecord) -> bool:
    return raw.problem is None and len(raw.fields) == 1 and not raw.fields[0].strip(_WHITESPACE_BYTES)


def _lines(stream: BinaryIO, chunk_bytes: int, limit: int) -> Iterator[Tuple[bytes, bool]]:
    """The object's physical lines, each with its `\\n` if it has one, BOM removed.

    Yields `(line, cut)`; a line longer than `limit` comes cut to `limit` bytes with
    `cut` set, and the rest of it (up to its `\\n`) is read and dropped.
    """
    tail = b""
    skipping = False
    first = True
    while True:
        chunk = stream.read(chunk_bytes)
        if not chunk:
            break
        if first:
            # A BOM may arrive split over reads; wait for three bytes before judging.
            tail += chunk
            if len(tail) < len(_BOM) and _BOM.startswith(tail):
                continue
            first = False
            chunk = tail[len(_BOM) :] if tail.startswith(_BOM) else tail
            tail = b""
        if skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                continue
            chunk = chunk[newline + 1 :]
            skipping = False
        data = tail + chunk if tail else chunk
        start = 0
        find = data.find
        while True:
            newline = find(b"\n", start)
            if newline < 0:
                break
            end = newline + 1
            if end - start > limit:
                yield data[start : start + limit], True
            else:
                yield data[start:end], False
            start = end
        tail = data[start:]
        if len(tail) > limit:
            yield tail[:limit], True
            tail = b""
            skipping = True
    if tail:
        yield tail, False


def _content_end(line: bytes) -> int:
    if line.endswith(b"\r\n"):
        return len(line) - 2
    if line.endswith(b"\n"):
        return len(line) - 1
    return len(line)


def _split_records(lines: Iterator[Tuple[bytes, bool]], limit: int) -> Iterator[_RawRecord]:
    """Group physical lines into records and split records into fields."""
    too_long = f"record longer than {limit} bytes"
    for line, cut in lines:
        if cut:
            yield _RawRecord([], line, too_long)
            continue
        end = _content_end(line)
        if b'"' not in line:
            content = line[:end]
            yield _RawRecord(content.split(b","), content, None)
            continue
        fields: List[bytes] = []
        pending: List[bytes] = []
        parts = [line]
        size = len(line)
        in_quotes = _scan_line(line, False, fields, pending)
        while in_quotes:
            following = next(lines, None)
            if following is None:
                fields.append(b"".join(pending))
                yield _RawRecord(fields, b"".join(parts), _UNCLOSED_QUOTE)
                break
            line, cut = following
            parts.append(line)
            size += len(line)
            if cut or size > limit:
                yield _RawRecord([], b"".join(parts)[:limit], too_long)
                break
            in_quotes = _scan_line(line, True, fields, pending)
        else:
            text = b"".join(parts)
            yield _RawRecord(fields, text[: len(text) - len(line) + _content_end(line)], None)


def _scan_line(line: bytes, in_quotes: bool, fields: List[bytes], pending: List[bytes]) -> bool:
    """Split one physical line of a record into `fields`.

    `pending` holds the pieces of a quoted field that started on an earlier line.
    Returns whether the line ends inside a quoted field (the record goes on).
    """
    end = _content_end(line)
    find = line.find
    position = 0
    while True:
        if in_quotes:
            quote = find(b'"', position)
            if quote < 0:
                # The line break belongs to the quoted field.
                pending.append(line[position:])
                return True
            pending.append(line[position:quote])
            if quote + 1 < end and line[quote + 1] == _QUOTE:
                pending.append(b'"')
                position = quote + 2
                continue
            in_quotes = False
            comma = find(b",", quote + 1, end)
            pending.append(line[quote + 1 : end if comma < 0 else comma])
            fields.append(b"".join(pending))
            pending.clear()
            if comma < 0:
                return False
            position = comma + 1
        if position < end and line[position] == _QUOTE:
            in_quotes = True
            position += 1
            continue
        comma = find(b",", position, end)
        if comma < 0:
            fields.append(line[position:end])
            return False
        fields.append(line[position:comma])
        position = comma + 1
