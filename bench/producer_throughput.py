"""The producer's throughput against Kafka's own ProducerPerformance, in one run, on the sandbox.

    PYTHONPATH=src python bench/producer_throughput.py [--rows 1000000]      (make bench-producer)

Needs the one-node sandbox (make sandbox): its S3 store, its broker and its Kafka jars. The
script uploads one generated object of --rows customer rows (the sample data's mix) under a
prefix of its own, then for each client library of the producer (kafka-python and
confluent-kafka) runs the real service (`python -m customer_pipeline.producer`, production
settings: transactions of 5,000 rows, acks=all, idempotence) until it has published the
object into a topic of its own (3 partitions), and reads its rate from the time between its
"ingesting" and "finished" lines. The baseline, in the same run: Kafka's ProducerPerformance,
from the broker's own jars on the node, publishing as many records of the same average size
with acks=all in transactions. It prints, as a Markdown table, records/s, MB/s, the peak RSS
of each producer process and the ratio to the baseline (docs/benchmarks.md keeps one).
A figure is only compared with the baseline of its own run: machines differ, ratios less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, Tuple

from sandbox_node import BOOTSTRAP, create_topic, delete_topics, on_node, s3_client, start_producer

CLIENTS = ("kafka-python", "confluent-kafka")
# --matrix: (client, compression, batch_size, linger_ms) besides the defaults of each client.
MATRIX = [
    *(("kafka-python", compression, batch, linger)
      for compression in ("none", "gzip") for batch in (16 * 1024, 1024 * 1024) for linger in (5, 50)),
    *(("confluent-kafka", compression, 1024 * 1024, 20) for compression in ("gzip", "lz4", "zstd")),
    ("confluent-kafka", "none", 64 * 1024, 5),
]


def average_message_bytes(body: bytes, uri: str) -> float:
    """The mean size of the raw messages the producer makes of these rows (first 10,000)."""
    import io

    from customer_pipeline.contract.csv_reader import open_csv_object
    from customer_pipeline.contract.messages import RawMessage, encode_raw_message

    now = dt.datetime.now(dt.timezone.utc)
    sizes = []
    for record in open_csv_object(io.BytesIO(body)):
        message = RawMessage.from_source_record(record, source_uri=uri, source_etag="0" * 32, ingested_at=now)
        sizes.append(len(encode_raw_message(message)))
        if len(sizes) == 10_000:
            break
    return sum(sizes) / len(sizes)


def high_water_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), 0 once it is gone.

    Read while it runs: getrusage's ru_maxrss of a child also counts the memory of this
    script when it forked, which holds the generated object."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_producer(client: str, prefix: str, run_id: str, workdir: Path,
                 batching: Tuple[str, ...] = ()) -> Tuple[float, int, int]:
    """(seconds from "ingesting" to "finished", records, peak RSS in KiB) of one producer run;
    `batching`: [kafka] settings lines (compression, batch_size, linger_ms) besides the defaults."""
    name = "-".join([client, *(line.split(" = ")[1] for line in batching)])
    topic, progress = "bench-raw-%s-%s" % (run_id, name), "bench-progress-%s-%s" % (run_id, name)
    create_topic(topic)
    process = start_producer(workdir / ("%s.ini" % name), prefix, kafka=[
        "topic = %s" % topic, "progress_topic = %s" % progress, "transactional_id = bench-%s-%s" % (run_id, name),
        "client = %s" % client, *batching,
    ], producer=["exit_when_idle = true", "progress_every_records = 1000000000"])
    assert process.stdout is not None
    started = finished = None
    records = 0
    lines = []
    peak_kib = 0
    for line in process.stdout:
        lines.append(line)
        peak_kib = max(peak_kib, high_water_kib(process.pid))
        if " ingesting s3://" in line:
            started = time.monotonic()
        match = re.search(r"finished s3://\S+: (\d+) records published", line)
        if match:
            finished, records = time.monotonic(), int(match.group(1))
    process.wait()
    delete_topics([topic, progress])
    if process.returncode != 0 or started is None or finished is None:
        raise SystemExit("the %s producer failed (exit %s):\n%s" % (client, process.returncode, "".join(lines[-20:])))
    return finished - started, records, peak_kib


def producer_performance(records: int, record_size: int, run_id: str) -> Tuple[float, float]:
    """(records/s, MB/s) of Kafka's ProducerPerformance on the node, acks=all, in transactions."""
    topic = "bench-perf-%s" % run_id
    create_topic(topic)
    try:
        out = on_node(
            "java -Xmx512m -cp '/opt/kafka/libs/*' -Dlog4j.configuration=file:/etc/kafka/tools-log4j.properties "
            "org.apache.kafka.tools.ProducerPerformance --topic %s --num-records %d --record-size %d "
            "--throughput -1 --transaction-duration-ms 2000 --transactional-id bench-perf-%s "
            "--producer-props bootstrap.servers=%s acks=all enable.idempotence=true linger.ms=20"
            % (topic, records, record_size, run_id, BOOTSTRAP))
    finally:
        delete_topics([topic])
    final = [line for line in out.splitlines() if "records sent" in line][-1]
    match = re.search(r"([\d.]+) records/sec \(([\d.]+) MB/sec\)", final)
    if not match:
        raise SystemExit("ProducerPerformance printed no rate: %s" % final)
    return float(match.group(1)), float(match.group(2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--matrix", action="store_true",
                        help="also run each client with other compression, batch size and linger settings")
    args = parser.parse_args()

    from customer_pipeline.contract.sample_data import generate_bytes

    run_id = uuid.uuid4().hex[:8]
    prefix = "bench-%s/" % run_id
    body = generate_bytes(args.rows)
    uri = "s3://customers/%scustomers.csv" % prefix
    size = average_message_bytes(body, uri)
    s3 = s3_client()
    s3.put_object(Bucket="customers", Key=prefix + "customers.csv", Body=body)
    try:
        baseline_rate, baseline_mb = producer_performance(args.rows, round(size), run_id)
        results: Dict[str, Tuple[float, int, int]] = {}
        with tempfile.TemporaryDirectory() as workdir:
            for client in CLIENTS:
                results[client] = run_producer(client, prefix, run_id, Path(workdir))
            if args.matrix:
                matrix = {"%s, compression %s, batch_size %d, linger_ms %d" % variant: run_producer(
                    variant[0], prefix, run_id, Path(workdir), ("compression = %s" % variant[1],
                                                                 "batch_size = %d" % variant[2],
                                                                 "linger_ms = %d" % variant[3]))
                          for variant in MATRIX}
    finally:
        s3.delete_object(Bucket="customers", Key=prefix + "customers.csv")

    rows = ["| what | records/s | MB/s | peak RSS | ratio to ProducerPerformance |",
            "| --- | ---: | ---: | ---: | ---: |",
            "| Kafka's ProducerPerformance (baseline; %d-byte records, acks=all, transactions) | %.0f | %.1f | | 1.00 |"
            % (round(size), baseline_rate, baseline_mb)]
    for client, (seconds, records, rss_kib) in results.items():
        if records != args.rows:
            raise SystemExit("the %s producer published %d records of %d" % (client, records, args.rows))
        rate = records / seconds
        rows.append("| the producer, %s (S3 to Kafka, transactions of 5,000) | %.0f | %.1f | %.0f MiB | %.2f |"
                    % (client, rate, rate * size / 1e6, rss_kib / 1024, rate / baseline_rate))
    if args.matrix:
        for name, (seconds, records, rss_kib) in matrix.items():
            rate = records / seconds
            rows.append("| the producer, %s | %.0f | %.1f | %.0f MiB | %.2f |"
                        % (name, rate, rate * size / 1e6, rss_kib / 1024, rate / baseline_rate))
    table = "\n".join(rows)
    print("producer throughput, %d rows of %.0f bytes on average (one run, this machine):\n%s" % (args.rows, size, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
