"""verify.yml's view of the source side, run on a node in the producer's virtualenv.

    python -m customer_pipeline.verify.source --config producer.ini expected [--target-country USA]
    python -m customer_pipeline.verify.source --config producer.ini lag --checkpoint-offsets FILE

`expected` prints, as one JSON object, every object the producer knows (from its progress
topic) with the counts per class that the reference implementation of CONTRACT.md gives
for it, read again from S3 at the ETag the producer ingested. `lag` compares the Spark
job's committed checkpoint offsets (the last line of `<checkpoint>/offsets/<batch>`) with
the end offsets of `customers-raw` under read_committed, and prints the lag per partition.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence

from customer_pipeline.contract.counts import count_object
from customer_pipeline.contract.csv_reader import CsvObjectError
from customer_pipeline.contract.rules import DEFAULT_TARGET_COUNTRY
from customer_pipeline.producer import progress as progress_topic
from customer_pipeline.producer.config import ProducerSettings, load
from customer_pipeline.producer.s3_source import ObjectChangedError, SourceObject, make_client, open_object
from customer_pipeline.settings import EXIT_BAD_SETTINGS, SettingsError


def expected(settings: ProducerSettings, target_country: str) -> Dict[str, Any]:
    state = progress_topic.load(settings.kafka.client_options(), settings.kafka.progress_topic)
    client = make_client(settings.s3)
    objects: List[Dict[str, Any]] = []
    for uri in sorted(state):
        item = state[uri]
        entry: Dict[str, Any] = {"uri": uri, "etag": item.etag, "state": item.state, "records": item.records,
                                 "last_row": item.last_row}
        if item.state == progress_topic.DONE:
            bucket, _, key = uri[len("s3://"):].partition("/")
            source = SourceObject(key=key, etag=item.etag, size=0, bucket=bucket)
            try:
                # The producer's own record size limit: a longer record is malformed for both.
                counts = count_object(open_object(client, source), target_country=target_country,
                                      max_record_bytes=settings.max_record_bytes)
                entry["expected"] = {"usa": counts.usa, "alerts": counts.alerts,
                                     "out_of_scope": counts.out_of_scope, "rows": counts.total}
            except ObjectChangedError as error:
                entry["problem"] = str(error)
            except CsvObjectError as error:
                entry["problem"] = f"the object no longer reads as it did: {error}"
        objects.append(entry)
    return {"objects": objects}


def end_offsets(settings: ProducerSettings, topic: str) -> Dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(isolation_level="read_committed", enable_auto_commit=False, group_id=None,
                             **settings.kafka.client_options())
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def committed_offsets(checkpoint_offsets: Optional[str], topic: str) -> Dict[int, int]:
    """partition -> next offset of `topic` in a Structured Streaming `offsets/<batch>` file
    (v1, the batch's metadata, then one line per source); {} for no file."""
    if not checkpoint_offsets:
        return {}
    # The Kafka source's line is the last: {"topic": {"partition": next offset, ...}}.
    last = [line for line in checkpoint_offsets.splitlines() if line.strip()][-1]
    return {int(p): int(o) for p, o in json.loads(last).get(topic, {}).items()}


def lag(settings: ProducerSettings, checkpoint_offsets: Optional[str]) -> Dict[str, Any]:
    """Committed checkpoint offsets against the topic's end; a missing checkpoint reads nothing."""
    topic = settings.kafka.topic
    committed = committed_offsets(checkpoint_offsets, topic)
    ends = end_offsets(settings, topic)
    partitions = {str(p): {"end": ends[p], "committed": committed.get(p, 0), "lag": max(ends[p] - committed.get(p, 0), 0)}
                  for p in sorted(ends)}
    return {"topic": topic, "partitions": partitions, "lag": sum(item["lag"] for item in partitions.values())}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_pipeline.verify.source", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    expected_parser = sub.add_parser("expected")
    expected_parser.add_argument("--target-country", default=DEFAULT_TARGET_COUNTRY)
    lag_parser = sub.add_parser("lag")
    lag_parser.add_argument("--checkpoint-offsets", help="file with the job's last committed offsets ('' or absent: none)")
    args = parser.parse_args(argv)
    try:
        settings = load(args.config)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    if args.command == "expected":
        result = expected(settings, args.target_country)
    else:
        text = None
        if args.checkpoint_offsets:
            with open(args.checkpoint_offsets, encoding="utf-8") as handle:
                text = handle.read()
        result = lag(settings, text or None)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
