"""Kafka message formats: the raw message of `customers-raw`, and the output messages.

The producer publishes one raw message per data record of a source object (blank lines
and headers are never published). A raw message is one flat UTF-8 JSON object holding
every field of `RAW_MESSAGE_FIELDS`, always all of them, null where there is no value:

- every known column as its raw, untrimmed string from the CSV (null when the column is
  absent from the header, and for a malformed record);
- `source_uri` (`s3://bucket/key`), `source_etag` (as S3 gave it), `source_row`
  (1-based, as the contract defines it), `record_id` (see `rules.record_id`), and
  `ingested_at` (ISO-8601 UTC, always `YYYY-MM-DDTHH:MM:SS.ffffffZ`);
- `malformed` (true or false), `raw_line` (the record's original text, only when
  malformed) and `malformed_reason` (a human-readable detail, only when malformed).

Its Kafka key is the record id. The Spark job reads it with `RAW_MESSAGE_SCHEMA_DDL`
and applies the contract's rules to the strings itself, so the producer never trims,
validates or drops anything but blank lines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from json.encoder import encode_basestring as _escape  # the C function json.dumps(ensure_ascii=False) uses
from typing import Any, Dict, Mapping, Optional, Tuple

from customer_pipeline.contract.csv_reader import SourceRecord
from customer_pipeline.contract.rules import (
    DEFAULT_TARGET_COUNTRY,
    KNOWN_COLUMNS,
    RECORD_ID_HEX_CHARS,
    Outcome,
    OutputRecord,
    format_timestamp,
    normalise_etag,
    parse_timestamp,
    process,
    record_id,
)

# (name, Spark SQL type), in the order the JSON object carries them.
RAW_MESSAGE_FIELDS: Tuple[Tuple[str, str], ...] = (
    *((column, "STRING") for column in KNOWN_COLUMNS),
    ("source_uri", "STRING"),
    ("source_etag", "STRING"),
    ("source_row", "INT"),
    ("record_id", "STRING"),
    ("ingested_at", "STRING"),
    ("malformed", "BOOLEAN"),
    ("raw_line", "STRING"),
    ("malformed_reason", "STRING"),
)
RAW_MESSAGE_SCHEMA_DDL = ", ".join(f"{name} {kind}" for name, kind in RAW_MESSAGE_FIELDS)
# Spark reads `ingested_at` with this pattern (`to_timestamp(ingested_at, ...)`).
INGESTED_AT_SPARK_PATTERN = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSX"


@dataclass(frozen=True)
class RawMessage:
    """One message of `customers-raw`."""

    values: Dict[str, Optional[str]]
    source_uri: str
    source_etag: str
    source_row: int
    record_id: str
    ingested_at: dt.datetime
    malformed: bool = False
    raw_line: Optional[str] = None
    malformed_reason: Optional[str] = None

    @classmethod
    def from_source_record(
        cls,
        record: SourceRecord,
        *,
        source_uri: str,
        source_etag: str,
        ingested_at: dt.datetime,
    ) -> RawMessage:
        return cls(
            values={column: record.values.get(column) for column in KNOWN_COLUMNS},
            source_uri=source_uri,
            source_etag=source_etag,
            source_row=record.source_row,
            record_id=record_id(source_uri, source_etag, record.source_row),
            ingested_at=ingested_at,
            malformed=record.malformed,
            raw_line=record.raw_line if record.malformed else None,
            malformed_reason=record.malformed_reason,
        )

    @property
    def key(self) -> bytes:
        return message_key(self.record_id)

    def to_json_dict(self) -> Dict[str, Any]:
        message: Dict[str, Any] = {column: self.values.get(column) for column in KNOWN_COLUMNS}
        message.update(
            source_uri=self.source_uri,
            source_etag=self.source_etag,
            source_row=self.source_row,
            record_id=self.record_id,
            ingested_at=format_timestamp(self.ingested_at),
            malformed=self.malformed,
            raw_line=self.raw_line,
            malformed_reason=self.malformed_reason,
        )
        return message


def message_key(record_id: str) -> bytes:
    """The Kafka key of every message about a record: its id."""
    return record_id.encode("ascii")


def encode_raw_message(message: RawMessage) -> bytes:
    return _encode(message.to_json_dict())


class RawMessageEncoder:
    """The producer's hot path: key and value of each record of one object, the same bytes as
    `message_key` and `encode_raw_message` of `RawMessage.from_source_record` give.

    Those build a dataclass and two dicts per row and run json.dumps twice (the record id's
    array, then the message), each time making a new JSONEncoder. Here what is the same for
    every row of an object is done once: the id's hash is fed the object's part of its array
    and copied per row, and the message's source fields are one JSON fragment. A row costs a
    hash update, one escaping per column (the C encoder json.dumps uses) and a join.
    """

    def __init__(self, source_uri: str, source_etag: str) -> None:
        # rules.record_id hashes the compact JSON of [uri, etag, row]: all but the row, once.
        head = json.dumps([source_uri, normalise_etag(source_etag)], ensure_ascii=False, separators=(",", ":"))
        self._id_hash = hashlib.sha256((head[:-1] + ",").encode("utf-8"))
        self._source = ',"source_uri":%s,"source_etag":%s,"source_row":' % (
            _escape(source_uri), _escape(source_etag))

    def encode(self, record: SourceRecord, ingested_at: dt.datetime) -> Tuple[bytes, bytes]:
        """(key, value) of the raw message of `record`."""
        digest = self._id_hash.copy()
        digest.update(b"%d]" % record.source_row)
        record_id = digest.hexdigest()[:RECORD_ID_HEX_CHARS]
        values = record.values
        columns = ",".join('"%s":%s' % (column, "null" if values.get(column) is None else _escape(values[column]))
                           for column in KNOWN_COLUMNS)
        if record.malformed:
            tail = ',"malformed":true,"raw_line":%s,"malformed_reason":%s}' % (
                _json_or_null(record.raw_line), _json_or_null(record.malformed_reason))
        else:
            tail = ',"malformed":false,"raw_line":null,"malformed_reason":null}'
        text = '{%s%s%d,"record_id":"%s","ingested_at":"%s"%s' % (
            columns, self._source, record.source_row, record_id, format_timestamp(ingested_at), tail)
        return record_id.encode("ascii"), text.encode("utf-8")


def _json_or_null(value: Optional[str]) -> str:
    return "null" if value is None else _escape(value)


def decode_raw_message(data: bytes) -> RawMessage:
    """Parse a raw message; ValueError names the first field that is wrong."""
    try:
        message = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"raw message is not UTF-8 JSON: {error}") from error
    if not isinstance(message, dict):
        raise ValueError("raw message is not a JSON object")
    values = {column: _optional_str(message, column) for column in KNOWN_COLUMNS}
    source_row = message.get("source_row")
    if not isinstance(source_row, int) or isinstance(source_row, bool) or source_row < 1:
        raise ValueError(f"raw message field source_row is not a positive integer: {source_row!r}")
    malformed = message.get("malformed", False)
    if not isinstance(malformed, bool):
        raise ValueError(f"raw message field malformed is not a boolean: {malformed!r}")
    return RawMessage(
        values=values,
        source_uri=_str(message, "source_uri"),
        source_etag=_str(message, "source_etag"),
        source_row=source_row,
        record_id=_str(message, "record_id"),
        ingested_at=parse_timestamp(_str(message, "ingested_at")),
        malformed=malformed,
        raw_line=_optional_str(message, "raw_line"),
        malformed_reason=_optional_str(message, "malformed_reason"),
    )


def process_raw_message(message: RawMessage, *, target_country: str = DEFAULT_TARGET_COUNTRY) -> Outcome:
    """What the Spark job must make of one raw message."""
    return process(
        message.values,
        source_uri=message.source_uri,
        source_row=message.source_row,
        record_id=message.record_id,
        ingested_at=message.ingested_at,
        malformed=message.malformed,
        raw_line=message.raw_line,
        target_country=target_country,
    )


def encode_output_message(record: OutputRecord) -> bytes:
    """A message of `customers-usa` or `customers-alerts` (key: `message_key`)."""
    return _encode(record.to_json_dict())


def _encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _str(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str):
        raise ValueError(f"raw message field {name} is not a string: {value!r}")
    return value


def _optional_str(message: Mapping[str, Any], name: str) -> Optional[str]:
    value = message.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"raw message field {name} is not a string or null: {value!r}")
    return value
