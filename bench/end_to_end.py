"""End to end: an object uploaded to S3 until its last row is in HDFS, and each row's latency.

    PYTHONPATH=src python bench/end_to_end.py [--rows 100000,1000000,3000000] [--client confluent-kafka]

Needs the one-node sandbox with the pipeline deployed (make sandbox deploy). For each size,
with topics, HDFS folders and a bucket prefix of its own, it starts the two parts as
production runs them and lets them wait: the deployed job's own spark-submit line on the
node (streaming, the deployed trigger interval and micro-batch size) and the producer
service (`python -m customer_pipeline.producer`, transactions of 5,000 rows, acks=all,
watching the prefix every second; on the controller, which shares the node's network and
cores, so that either client can be measured). Then it uploads one object of generated
customers (the sample data's mix) and times, from the start of the upload:

- **upload to HDFS**: until the job logs the micro-batch that brings its rows in to the
  object's row count (its datasets are committed when it logs the batch);
- **latency**: for every row, from its `ingested_at` (the producer stamps it when it reads
  the row) to the end of the micro-batch that wrote it: the batch's offsets are read from
  the job's checkpoint, each row's offset and `ingested_at` from the raw topic.

The deployed services are stopped for the time of the runs (two cores) and started again.
It prints a Markdown table; the cost of a row at each size against the smallest size's, in
the same run, shows whether it grows linearly.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from sandbox_node import BOOTSTRAP, create_topic, delete_topics, on_node, s3_client, services_stopped, start_producer
from stream_job import BATCH, deployed_command, on_node_as_job, with_settings

INGESTED_AT = re.compile(rb'"ingested_at":"([^"]+)"')


@dataclass
class Result:
    rows: int
    seconds: float
    batches: int
    p50: float
    p95: float
    client: str
    producer_seconds: float  # from the upload's start to the producer's "finished" line
    job_busy: float  # seconds the job spent in micro-batches


class Lines:
    """The lines of a process's output with the wall-clock time each arrived, read in a thread."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: List[Tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line))

    def wait_for(self, text: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for _, line in list(self.lines)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = "".join(line for _, line in self.lines[-30:])
                raise SystemExit("%s did not log %r (exit %s):\n%s" % (what, text, self.process.poll(), tail))
            time.sleep(0.2)


def batch_ends(checkpoint: str, batch_ids: List[int]) -> Dict[int, Dict[int, int]]:
    """Each micro-batch's end offsets per partition, from the checkpoint's offset log."""
    out = on_node("for id in %s; do echo \"== $id\"; HADOOP_USER_NAME=maria_dev hdfs dfs -cat %s/offsets/$id; done"
                  % (" ".join(map(str, batch_ids)), checkpoint))
    ends: Dict[int, Dict[int, int]] = {}
    for block in out.split("== ")[1:]:
        lines = block.strip().splitlines()
        offsets = json.loads(lines[-1])
        ends[int(lines[0])] = {int(partition): end for topic in offsets.values() for partition, end in topic.items()}
    return ends


def row_times(raw: str, rows: int) -> List[Tuple[int, int, float]]:
    """(partition, offset, ingested_at as epoch seconds) of every committed raw message."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "bench-e2e-%s" % raw,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False})
    consumer.subscribe([raw])
    found: List[Tuple[int, int, float]] = []
    deadline = time.monotonic() + 600
    try:
        while len(found) < rows and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 1.0):
                if message.error():
                    continue
                stamp = INGESTED_AT.search(message.value()).group(1).decode()
                ingested = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                found.append((message.partition(), message.offset(), ingested))
    finally:
        consumer.close()
    if len(found) != rows:
        raise SystemExit("read %d raw messages back of %d" % (len(found), rows))
    return found


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_once(rows: int, client: str, argv: List[str], environment: Dict[str, str]) -> Result:
    from customer_pipeline.contract.sample_data import generate_bytes

    run_id = uuid.uuid4().hex[:8]
    raw, usa, alerts = ("bench-e2e-%s-%s" % (name, run_id) for name in ("raw", "usa", "alerts"))
    base = "/user/maria_dev/bench-e2e-%s" % run_id
    prefix = "bench-e2e-%s/" % run_id
    body = generate_bytes(rows)
    s3 = s3_client()
    job = producer = None
    for topic in (raw, usa, alerts):
        create_topic(topic)
    try:
        job = Lines(on_node_as_job(with_settings(argv, None, {
            "kafka.raw_topic": raw, "kafka.usa_topic": usa, "kafka.alerts_topic": alerts,
            "hdfs.usa_path": base + "/usa", "hdfs.alerts_path": base + "/alerts",
            "hdfs.checkpoint_location": base + "/checkpoint"}), environment))
        job.wait_for("started: reading", 300, "the job")
        with tempfile.TemporaryDirectory() as workdir:
            producer = Lines(start_producer(Path(workdir) / "producer.ini", prefix, kafka=[
                "topic = %s" % raw, "progress_topic = bench-e2e-progress-%s" % run_id,
                "transactional_id = bench-e2e-%s" % run_id, "client = %s" % client]))
            producer.wait_for("watching s3://", 120, "the producer")
            started = time.time()
            s3.put_object(Bucket="customers", Key=prefix + "customers.csv", Body=body)
            deadline = time.monotonic() + 3600
            done = None
            while done is None:
                seen = 0
                for arrived, line in list(job.lines):
                    match = BATCH.search(line)
                    if match:
                        seen += int(match.group(2))
                        if seen >= rows:
                            done = arrived
                            break
                if done is None:
                    if job.process.poll() is not None or producer.process.poll() is not None \
                            or time.monotonic() > deadline:
                        raise SystemExit("the run stopped at %d rows of %d:\n%s%s" % (
                            seen, rows, "".join(line for _, line in job.lines[-20:]),
                            "".join(line for _, line in producer.lines[-20:])))
                    time.sleep(0.5)
            producer.process.send_signal(signal.SIGTERM)
            producer.process.wait(120)
        on_node("pkill -TERM -f 'run_stream_jo[b].py .*%s' || true" % run_id)
        job.process.wait(300)
        batches = {int(match.group(1)): arrived for arrived, line in job.lines
                   for match in [BATCH.search(line)] if match and int(match.group(2)) > 0}
        ends = batch_ends(base + "/checkpoint", sorted(batches))
        # Per partition, the batches' end offsets in order: a row belongs to the first batch
        # whose end is past its offset.
        order = sorted(batches)
        bounds = {partition: [ends[batch_id].get(partition, 0) for batch_id in order]
                  for partition in {p for end in ends.values() for p in end}}
        latencies = []
        for partition, offset, ingested in row_times(raw, rows):
            batch_id = order[bisect.bisect_right(bounds[partition], offset)]
            latencies.append(batches[batch_id] - ingested)
        finished = next(arrived for arrived, line in producer.lines if " finished s3://" in line)
        busy = sum(int(match.group(7)) for _, line in job.lines for match in [BATCH.search(line)] if match) / 1000
        return Result(rows, done - started, len(batches), statistics.median(latencies),
                      percentile(latencies, 0.95), client, finished - started, busy)
    finally:
        for process in (producer.process if producer else None, job.process if job else None):
            if process is not None and process.poll() is None:
                process.kill()
        # Each clean-up step on its own: one that fails leaves the others to run.
        for step in (
            lambda: on_node("pkill -KILL -f 'run_stream_jo[b].py .*%s' || true; HADOOP_USER_NAME=maria_dev "
                            "hdfs dfs -rm -r -f -skipTrash %s >/dev/null 2>&1 || true" % (run_id, base)),
            lambda: s3.delete_object(Bucket="customers", Key=prefix + "customers.csv"),
            lambda: delete_topics([raw, usa, alerts, "bench-e2e-progress-%s" % run_id]),
        ):
            try:
                step()
            except (Exception, SystemExit) as error:  # noqa: BLE001 - reported, the next step still runs
                print("clean-up of run %s: %s" % (run_id, error), file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000,3000000", help="comma-separated sizes of the object")
    parser.add_argument("--client", default="confluent-kafka", choices=("kafka-python", "confluent-kafka"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]

    argv, environment = deployed_command()
    with services_stopped():
        results = [run_once(rows, args.client, argv, environment) for rows in sizes]

    first = results[0]
    print("end to end, the producer with %s, the job as deployed (one run each, this machine):" % args.client)
    print("| rows | upload to the last row in HDFS | rows/s | producer done after | job busy in micro-batches "
          "| micro-batches | latency p50 | latency p95 | seconds per 1,000,000 rows | ratio to the %d-row run |"
          % first.rows)
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        per_million = result.seconds / result.rows * 1e6
        print("| %d | %.1f s | %.0f | %.1f s | %.1f s | %d | %.1f s | %.1f s | %.1f | %.2f |" % (
            result.rows, result.seconds, result.rows / result.seconds, result.producer_seconds, result.job_busy,
            result.batches, result.p50, result.p95, per_million, per_million / (first.seconds / first.rows * 1e6)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
