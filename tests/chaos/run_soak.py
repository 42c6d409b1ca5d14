"""make soak: the deployed pipeline on the one-node sandbox with the producer at its maximum rate
for 30 minutes (issue 13, Load); not part of make test.

1. deploy.yml if the pipeline is not running (the inventory's settings: no rate limit; `-e
   NAME=VALUE` changes one, e.g. `-e customer_producer_kafka_client=confluent`);
2. for `--minutes`, objects of `--object-rows` generated rows are uploaded under the producer's
   prefix whenever fewer than `--backlog` objects' worth of rows wait to be published, so the
   producer never waits for work; every `--interval` seconds the run samples the resident size
   of the producer's and the job's main processes, their restart counts, the records committed
   to customers-raw and the job's lag (the topic's end offsets against the offsets of the job's
   last committed batch, read from its checkpoint over WebHDFS: no JVM started on the node);
3. then verify.yml until it reconciles: every row of every uploaded object once in the HDFS
   datasets;
4. the figures per stretch of the run, and the verdicts of tests/support/soak_plan.py: memory
   flat, lag bounded, no restart, verify exact. Exits 1 on any failed verdict;
5. unless `--keep`, the uploaded objects are deleted and reset.yml (reset_topics, reset_start)
   rebuilds the datasets from what the bucket holds, so that later tests and make demo do not
   carry gigabytes of soak rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT / "tests" / "support"), str(ROOT / "src"), str(ROOT / "bench")]

from flow_watch import FlowWatch  # noqa: E402
from run_chaos import BOOTSTRAP, BUCKET, PREFIX, deploy, verify_until_exact  # noqa: E402
from sandbox_faults import on_node, run_playbook, sample_units  # noqa: E402
from soak_plan import MAX_GROWTH, Sample, Verdict, figures, lag_verdict, memory_verdict, rate, restarts_verdict  # noqa: E402

from customer_pipeline.verify import source  # noqa: E402

PIPELINE = ("customer-producer", "customer-stream")  # the services whose memory is sampled
WEBHDFS = "http://127.0.0.1:9870/webhdfs/v1"
HDFS_USER = "maria_dev"
TOPIC = "customers-raw"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the producer is kept busy")
    parser.add_argument("--object-rows", type=int, default=200_000, help="rows of each uploaded object")
    parser.add_argument("--backlog", type=float, default=2.0,
                        help="objects' worth of rows kept waiting for the producer")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--max-growth", type=float, default=MAX_GROWTH,
                        help="memory growth from the middle to the last third still counted flat (0.10: 10 %%)")
    parser.add_argument("-e", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a deploy.yml setting for the soak (the inventory's otherwise)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the uploaded objects and their rows (no reset at the end)")
    args = parser.parse_args(argv)
    bad = [item for item in args.settings if "=" not in item]
    if bad:
        parser.error("-e takes NAME=VALUE, not %s" % ", ".join(bad))
    return args


def checkpoint_path() -> str:
    """The job's checkpoint folder as an HDFS path (stream.ini may hold a full hdfs:// URI)."""
    value = on_node("sed -n 's/^checkpoint_location *= *//p' /etc/customer-pipeline/stream.ini").strip()
    return urllib.parse.urlparse(value).path or value


class SameAddressRedirect(urllib.request.HTTPRedirectHandler):
    """WebHDFS's OPEN redirects to the DataNode by the node's hostname, which the controller
    does not know: the redirect goes to the same loopback address instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        parts = urllib.parse.urlparse(newurl)
        local = parts._replace(netloc="127.0.0.1:%d" % (parts.port or 9864)).geturl()
        return super().redirect_request(req, fp, code, msg, headers, local)


WEBHDFS_OPENER = urllib.request.build_opener(SameAddressRedirect)


def webhdfs(path: str, op: str) -> bytes:
    """One WebHDFS call as the job's user."""
    url = "%s%s?op=%s&user.name=%s" % (WEBHDFS, urllib.parse.quote(path), op, HDFS_USER)
    with WEBHDFS_OPENER.open(url, timeout=10) as response:
        return response.read()


def committed_offsets(checkpoint: str) -> Optional[int]:
    """The sum of customers-raw's offsets the job's last committed batch ended at, or None. The
    file is parsed as verify.yml's lag parses it (customer_pipeline.verify.source)."""
    try:
        listing = json.loads(webhdfs(checkpoint + "/commits", "LISTSTATUS"))["FileStatuses"]["FileStatus"]
        batches = [int(item["pathSuffix"]) for item in listing if item["pathSuffix"].isdigit()]
        if not batches:
            return 0
        text = webhdfs("%s/offsets/%d" % (checkpoint, max(batches)), "OPEN").decode()
        return sum(source.committed_offsets(text, TOPIC).values())
    except (OSError, ValueError, KeyError, IndexError) as error:
        print("soak: the job's checkpoint could not be read (%s: %s)" % (type(error).__name__, error), flush=True)
        return None


def node_processes() -> Tuple[List[Optional[int]], List[Optional[int]]]:
    """Resident size (KiB) of each service's main process, and its NRestarts; None where unknown."""
    try:
        samples = sample_units(PIPELINE)
    except Exception as error:  # noqa: BLE001 - a missed sample is a gap in the figures, not the end
        print("soak: no sample from the node (%s)" % error, flush=True)
        return [None, None], [None, None]
    return [samples[unit].rss_kib for unit in PIPELINE], [samples[unit].restarts for unit in PIPELINE]


class Feeder:
    """Uploads generated objects under the producer's prefix so that about `backlog` objects'
    worth of rows always wait to be published."""

    def __init__(self, object_rows: int, backlog: float, run_id: str) -> None:
        from sandbox_node import s3_client

        self.s3 = s3_client()  # the sandbox's admin identity: the producer's own may only read
        self.object_rows = object_rows
        self.backlog = backlog
        self.run_id = run_id
        self.uploaded: Dict[str, int] = {}

    def feed(self, published: int) -> None:
        from customer_pipeline.contract.sample_data import generate_bytes

        # Transaction markers make `published` a little larger than the rows: a little more is
        # uploaded than needed, never less.
        while sum(self.uploaded.values()) - published < self.backlog * self.object_rows:
            number = len(self.uploaded) + 1
            key = "%ssoak-%s-%04d.csv" % (PREFIX, self.run_id, number)
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=generate_bytes(self.object_rows, number))
            self.uploaded["s3://%s/%s" % (BUCKET, key)] = self.object_rows

    def delete(self) -> None:
        for uri in self.uploaded:
            self.s3.delete_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])


def soak(args: argparse.Namespace, feeder: Feeder, watch: FlowWatch, checkpoint: str) -> List[Sample]:
    duration = args.minutes * 60
    samples: List[Sample] = []
    start = time.monotonic()
    raw_at_start: Optional[int] = None
    next_report = 60.0
    while time.monotonic() - start < duration:
        at = time.monotonic() - start
        latest = watch.snapshot()[-1:]
        raw = latest[0][1] if latest else None
        if raw is not None:
            raw_at_start = raw if raw_at_start is None else raw_at_start
            feeder.feed(raw - raw_at_start)
        sizes, restarts = node_processes()
        consumed = committed_offsets(checkpoint)
        lag = raw - consumed if raw is not None and consumed is not None else None
        samples.append(Sample(at, sizes[0], sizes[1], lag, raw, (restarts[0], restarts[1])))
        if at >= next_report:
            speed = rate([s for s in samples if s.at >= at - 60])
            print("soak: %4.1f min: %s records/s into customers-raw, producer %s MiB, job %s MiB, lag %s" % (
                at / 60, "-" if speed is None else "%.0f" % speed,
                "-" if sizes[0] is None else sizes[0] // 1024, "-" if sizes[1] is None else sizes[1] // 1024,
                "-" if lag is None else lag), flush=True)
            next_report += 60
        time.sleep(max(0.0, args.interval - (time.monotonic() - start - at)))
    return samples


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    settings = dict(item.split("=", 1) for item in args.settings)
    running = on_node("systemctl is-active %s" % " ".join(PIPELINE), check=False).split() == ["active"] * 2
    if settings or not running:
        print("soak: deploy.yml%s%s" % (" (the whole playbook: the pipeline is not running)" if not running else "",
                                        "".join(" -e %s" % item for item in args.settings)), flush=True)
        deploy(settings, whole=not running)
    run_id = uuid.uuid4().hex[:6]
    feeder = Feeder(args.object_rows, args.backlog, run_id)
    checkpoint = checkpoint_path()
    watch = FlowWatch(BOOTSTRAP, interval=2.0)
    watch.start()
    print("soak: %.0f minutes, objects of %d rows under s3://%s/%ssoak-%s-*, samples every %.0f s" % (
        args.minutes, args.object_rows, BUCKET, PREFIX, run_id, args.interval), flush=True)
    try:
        samples = soak(args, feeder, watch, checkpoint)
    finally:
        watch.stop()
    duration = args.minutes * 60
    fed = time.monotonic()
    report = verify_until_exact(feeder.uploaded)
    drained = time.monotonic() - fed

    verdicts = [memory_verdict(samples, duration, "producer_kib", "producer memory", args.max_growth),
                memory_verdict(samples, duration, "job_kib", "job memory", args.max_growth),
                lag_verdict(samples, duration), restarts_verdict(samples[0], samples[-1])]
    exact = report is not None and report.get("ok") and all(
        item.get("duplicates") == 0 and item.get("usa") == item.get("usa_expected")
        and item.get("alerts") == item.get("alerts_expected") and item.get("rows") == feeder.uploaded[item["uri"]]
        for item in report["objects"] if item["uri"] in feeder.uploaded)
    rows = sum(feeder.uploaded.values())
    verdicts.append(Verdict("verify", bool(exact), "%d objects, %d rows: %s, %.0f s after the feeding ended"
                                      % (len(feeder.uploaded), rows, "exact" if exact else "NOT exact", drained)))
    print("\n" + figures(samples, duration))
    speed = rate(samples)
    print("\nsoak: %.0f minutes, %s records/s into customers-raw on average, %d rows uploaded" % (
        args.minutes, "-" if speed is None else "%.0f" % speed, rows))
    for verdict in verdicts:
        print("soak: %-16s %s: %s" % (verdict.name, "ok" if verdict.ok else "FAILED", verdict.detail))
    if not exact and report is not None:
        print("soak: verify.yml's problems: %s" % json.dumps(report.get("problems"))[:2000])

    if settings:
        print("soak: deploy.yml with the inventory's settings again", flush=True)
        deploy({})
    if not args.keep:
        print("soak: deleting the %d uploaded objects and rebuilding the datasets without them "
              "(reset.yml reset_topics=yes reset_start=yes; --keep leaves them)" % len(feeder.uploaded), flush=True)
        feeder.delete()
        result = run_playbook("playbooks/reset.yml", "-e", "reset_confirm=yes", "-e", "reset_topics=yes",
                              "-e", "reset_start=yes")
        if result.returncode != 0:
            print("soak: reset.yml failed (exit %d):\n%s" % (result.returncode, result.stdout[-2000:]))
            return 1
    return 0 if all(v.ok for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
