"""The Spark job's sustained rate on a backlog against a plain batch job, and its fixed cost per batch.

    PYTHONPATH=src python bench/stream_job.py [--rows 1000000]            (make bench)

Needs the one-node sandbox with the pipeline deployed (make sandbox deploy). The script
fills a raw topic of its own (3 partitions, as customers-raw) with --rows raw messages of
generated customers (the sample data's mix), stops the deployed services for the time of
the runs (two cores: they would compete) and starts them again at the end. On the node,
with the deployed job's own spark-submit line (jars, package, master, memory, settings
file), it runs:

1. **the ceiling**: bench/stream_ceiling.py, a plain batch job that reads the whole topic,
   applies the same rules and writes the same two Parquet datasets;
2. **the job** on the backlog (available_now, the deployed max_offsets_per_trigger):
   rows/s from the start of its first micro-batch to the end of its last, and the time of
   each step of its batches (the job logs them);
3. **the fixed cost**: the job on a topic of one partition holding 6 messages with
   max_offsets_per_trigger=1: six batches of one row, the median of batches 1-5.

Outputs go to topics and HDFS folders of the run, removed at the end. It prints a
Markdown table of each figure with the ratio to the ceiling of the same run.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from sandbox_node import BOOTSTRAP, ROOT, create_topic, delete_topics, on_node, services_stopped, ssh_command

JOB_SCRIPT = "run_stream_job.py"
CEILING_ON_NODE = "/tmp/stream_ceiling.py"
BATCH = re.compile(r"batch (\d+): (\d+) rows in, usa (\d+), alerts (\d+), out_of_scope (\d+), unreadable (\d+), "
                   r"(\d+) ms \(([^)]*)\)")
STEP = re.compile(r"(\w+) (\d+)")


@dataclass
class Batch:
    batch_id: int
    rows: int
    usa: int
    alerts: int
    millis: int
    ended: float  # monotonic time of the bench when its line arrived
    steps: Dict[str, int] = field(default_factory=dict)


def fill_topic(topic: str, rows: int, partitions: int = 3) -> None:
    """`rows` raw messages as the producer makes them (one object, generated rows)."""
    import datetime as dt
    import io

    from confluent_kafka import Producer

    from customer_pipeline.contract.csv_reader import open_csv_object
    from customer_pipeline.contract.messages import RawMessageEncoder
    from customer_pipeline.contract.sample_data import generate_bytes

    create_topic(topic, partitions)
    uri = "s3://customers/bench/%s.csv" % topic
    encoder = RawMessageEncoder(uri, "0" * 32)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 50, "batch.size": 1 << 20, "queue.buffering.max.messages": 500_000})
    now = dt.datetime.now(dt.timezone.utc)
    for record in open_csv_object(io.BytesIO(generate_bytes(rows))):
        key, value = encoder.encode(record, now)
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise SystemExit("could not fill %s: messages left unsent" % topic)


def deployed_command() -> Tuple[List[str], Dict[str, str]]:
    """The job's spark-submit argv and environment, as the deployed unit starts it."""
    argv_line = on_node("systemctl show customer-stream -p ExecStart --value")
    match = re.search(r"argv\[\]=(.*?) ;", argv_line)
    if not match or JOB_SCRIPT not in match.group(1):
        raise SystemExit("customer-stream.service is not deployed (make deploy): %s" % argv_line.strip())
    environment = dict(item.split("=", 1) for item in
                       shlex.split(on_node("systemctl show customer-stream -p Environment --value")))
    argv = shlex.split(match.group(1))
    if argv[0].endswith("/restart-backoff"):
        # The unit's restart back-off runs the command after "--": the bench runs the command.
        argv = argv[argv.index("--") + 1:]
    return argv, environment


def on_node_as_job(argv: List[str], environment: Dict[str, str], timeout: float = 1800) -> subprocess.Popen:
    """Starts `argv` on the node as the job's user with the job's environment; output streamed."""
    user = on_node("systemctl show customer-stream -p User --value").strip()
    workdir = environment.get("HOME", "/tmp")
    env = " ".join(shlex.quote("%s=%s" % item) for item in sorted(environment.items()))
    command = "cd %s && runuser -u %s -- env %s %s 2>&1" % (
        shlex.quote(workdir), user, env, " ".join(shlex.quote(arg) for arg in argv))
    return subprocess.Popen(ssh_command(command), stdout=subprocess.PIPE, text=True)


def with_settings(argv: List[str], script: Optional[str], settings: Dict[str, str]) -> List[str]:
    """The deployed argv with another script in place of the job's (optional) and --set overrides."""
    at = next(index for index, arg in enumerate(argv) if arg.endswith(JOB_SCRIPT))
    head, tail = argv[:at], argv[at + 1:]
    overrides = [item for name, value in settings.items() for item in ("--set", "%s=%s" % (name, value))]
    return head + [script or argv[at]] + tail + overrides


def run_job(argv: List[str], environment: Dict[str, str]) -> Tuple[List[Batch], List[str]]:
    process = on_node_as_job(argv, environment)
    assert process.stdout is not None
    batches: List[Batch] = []
    lines: List[str] = []
    for line in process.stdout:
        lines.append(line)
        match = BATCH.search(line)
        if match:
            numbers = [int(value) for value in match.groups()[:7]]
            steps = {name: int(ms) for name, ms in STEP.findall(match.group(8))}
            batches.append(Batch(numbers[0], numbers[1], numbers[2], numbers[3], numbers[6], time.monotonic(), steps))
    if process.wait() != 0 or not any("caught up with" in line for line in lines):
        raise SystemExit("the job failed (exit %s):\n%s" % (process.returncode, "".join(lines[-30:])))
    return batches, lines


def run_ceiling(argv: List[str], environment: Dict[str, str]) -> Tuple[int, float]:
    process = on_node_as_job(argv, environment)
    out, _ = process.communicate()
    match = re.search(r"ceiling: (\d+) rows, usa \d+, alerts \d+ in ([\d.]+) s", out)
    if process.returncode != 0 or not match:
        raise SystemExit("the ceiling job failed (exit %s):\n%s" % (process.returncode, out[-3000:]))
    return int(match.group(1)), float(match.group(2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None,
                        help="records per micro-batch (default: the deployed setting)")
    args = parser.parse_args()

    run_id = uuid.uuid4().hex[:8]
    raw, one, usa_topic, alerts_topic = ("bench-%s-%s" % (name, run_id) for name in ("raw", "one", "usa", "alerts"))
    base = "/user/maria_dev/bench-%s" % run_id
    argv, environment = deployed_command()
    on_node("cat > %s" % CEILING_ON_NODE, stdin=(ROOT / "bench" / "stream_ceiling.py").read_text())
    on_node("chmod 0644 %s" % CEILING_ON_NODE)
    try:
        fill_topic(raw, args.rows)
        fill_topic(one, 6, partitions=1)
        create_topic(usa_topic)
        create_topic(alerts_topic)
        with services_stopped():
            outputs = {"kafka.usa_topic": usa_topic, "kafka.alerts_topic": alerts_topic}
            ceiling_rows, ceiling_seconds = run_ceiling(with_settings(argv, CEILING_ON_NODE, {
                "kafka.raw_topic": raw, "hdfs.usa_path": base + "/ceiling/usa", "hdfs.alerts_path": base + "/ceiling/alerts",
                **outputs}), environment)
            backlog = {"kafka.raw_topic": raw, "hdfs.usa_path": base + "/job/usa", "hdfs.alerts_path": base + "/job/alerts",
                       "hdfs.checkpoint_location": base + "/job/checkpoint", "job.available_now": "true", **outputs}
            if args.max_offsets_per_trigger:
                backlog["kafka.max_offsets_per_trigger"] = str(args.max_offsets_per_trigger)
            batches, _ = run_job(with_settings(argv, None, backlog), environment)
            small, _ = run_job(with_settings(argv, None, {
                "kafka.raw_topic": one, "hdfs.usa_path": base + "/one/usa", "hdfs.alerts_path": base + "/one/alerts",
                "hdfs.checkpoint_location": base + "/one/checkpoint", "job.available_now": "true",
                "kafka.max_offsets_per_trigger": "1", **outputs}), environment)
    finally:
        on_node("HADOOP_USER_NAME=maria_dev hdfs dfs -rm -r -f -skipTrash %s >/dev/null 2>&1 || true" % base)
        delete_topics([raw, one, usa_topic, alerts_topic])

    job_rows = sum(batch.rows for batch in batches)
    if job_rows != args.rows or ceiling_rows != args.rows:
        raise SystemExit("rows read: the job %d, the ceiling %d, of %d" % (job_rows, ceiling_rows, args.rows))
    first = batches[0]
    job_seconds = batches[-1].ended - (first.ended - first.millis / 1000)
    job_rate, ceiling_rate = job_rows / job_seconds, ceiling_rows / ceiling_seconds
    fixed = statistics.median(batch.millis for batch in small[1:]) / 1000
    steps: Dict[str, int] = {}
    for batch in batches:
        for name, millis in batch.steps.items():
            steps[name] = steps.get(name, 0) + millis
    busy = sum(batch.millis for batch in batches)
    print("Spark job, %d raw messages, %d micro-batches of at most %s (one run, this machine):" % (
        args.rows, len(batches), args.max_offsets_per_trigger or "the deployed setting's"))
    print("| what | rows/s | seconds | ratio to the ceiling |\n| --- | ---: | ---: | ---: |")
    print("| plain batch job, same rules, same two Parquet datasets (ceiling) | %.0f | %.1f | 1.00 |"
          % (ceiling_rate, ceiling_seconds))
    print("| the streaming job on the backlog (first batch's start to last batch's end) | %.0f | %.1f | %.2f |"
          % (job_rate, job_seconds, job_rate / ceiling_rate))
    print("| fixed cost of a micro-batch (a batch of 1 row, median of 5) | | %.2f | |" % fixed)
    print("\nwhere the backlog's batches spent their time (sum over %d batches, %.1f s):" % (len(batches), busy / 1000))
    print("| step | seconds | share |\n| --- | ---: | ---: |")
    for name, millis in steps.items():
        print("| %s | %.1f | %.2f |" % (name, millis / 1000, millis / busy))
    print("| other (persist, unpersist, the log line) | %.1f | %.2f |"
          % ((busy - sum(steps.values())) / 1000, (busy - sum(steps.values())) / busy))
    one_row = small[len(small) // 2]
    print("\na batch of 1 row: %d ms (%s ms)" % (one_row.millis, ", ".join(
        "%s %d" % item for item in one_row.steps.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
