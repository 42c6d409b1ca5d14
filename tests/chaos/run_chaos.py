"""make chaos: faults injected into the deployed pipeline on the one-node sandbox during a
1,000,000-row ingest; then nothing may be lost or duplicated (issue 13). `--nodes 3` (make chaos
NODES=3) runs the three-node sandbox's kinds instead (tests/chaos/cluster3_faults.py: the YARN
ApplicationMaster killed, one broker of three down for 60 s, ...).

1. deploy.yml with the producer rate-limited, so that the ingest lasts as long as the faults,
   and a short restart back-off (5 s doubling to 30 s, healthy after 60 s: the default's 300 s
   ceiling would turn sixteen faults in ten minutes into long waits; test_deploy checks the
   default back-off);
2. the rows uploaded as a few objects under the producer's prefix;
3. every fault kind of tests/chaos/sandbox_faults.py, each twice, in an order drawn from the
   printed seed (`--seed N` replays it), 20-40 s apart (from the end of one to the start of the
   next), while a thread samples the topics to time each recovery (until rows flow again);
4. deploy.yml with the inventory's settings again (the rest of the ingest at full speed), then
   verify.yml until it reconciles: every row of every object exactly once in the HDFS datasets
   (0 lost, 0 duplicated), every service active.

Prints the table (fault, when, recovery, verdict) and exits 1 on any failed verdict. Bounded:
18 faults, each wait has a timeout, about 20 minutes in all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT / "tests" / "support"), str(ROOT / "src"), str(ROOT / "bench")]

from chaos_plan import Fault, measure_recovery, schedule, table, verdict  # noqa: E402
from flow_watch import FlowWatch  # noqa: E402
from sandbox_faults import ONE_NODE, OVERWRITTEN, FaultFailed, Sandbox, run_playbook, sample_units  # noqa: E402

BOOTSTRAP = ONE_NODE.bootstrap
BUCKET = "customers"
PREFIX = "incoming/"
# How long each kind keeps its fault, roughly: the rate limit is chosen so that the ingest
# lasts until the last fault.
NOMINAL_SECONDS = {"object store stopped": 35, "hdfs datasets unwritable": 40, "node reboot": 70,
                   "one kafka broker of three down": 65}
TAIL_SECONDS = 30
CHAOS_SETTINGS = {
    "customer_producer_restart_sec": 5, "customer_producer_restart_max_sec": 30,
    "customer_producer_restart_healthy_sec": 60,
    "customer_stream_restart_sec": 5, "customer_stream_restart_max_sec": 30,
    "customer_stream_restart_healthy_sec": 60,
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="replays a run's order and gaps (default: new)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=4, help="the rows split into this many objects")
    parser.add_argument("--repeats", type=int, default=2, help="times each fault kind happens")
    parser.add_argument("--min-gap", type=float, default=20.0)
    parser.add_argument("--max-gap", type=float, default=40.0)
    parser.add_argument("--nodes", type=int, choices=(1, 3), default=1,
                        help="the one-node sandbox, or the three-node one (YARN, three brokers; its own fault kinds)")
    parser.add_argument("--kinds", default=None, help="comma-separated subset of the sandbox's kinds (default: all): "
                        "one node: %s; three nodes: %s" % (", ".join(ONE_NODE.faults), ", ".join(sandbox(3).faults)))
    parser.add_argument("--recover-timeout", type=float, default=300.0,
                        help="seconds a fault may take to recover from before its verdict is NOT recovered")
    args = parser.parse_args(argv)
    faults = sandbox(args.nodes).faults
    args.kinds = args.kinds or ",".join(faults)
    unknown = [kind for kind in args.kinds.split(",") if kind not in faults]
    if unknown:
        parser.error("unknown fault kind(s) on %d node(s): %s" % (args.nodes, ", ".join(unknown)))
    return args


def sandbox(nodes: int) -> Sandbox:
    if nodes == 3:
        from cluster3_faults import THREE_NODES

        return THREE_NODES
    return ONE_NODE


def deploy(settings: Dict[str, object], whole: bool = False) -> None:
    """deploy.yml with `settings` as extra vars: only the two services' roles (what the chaos
    settings change; a minute less each time), or the whole playbook for a node without them."""
    extra: List[str] = [] if whole else ["--tags", "customer_producer,customer_stream"]
    for name, value in settings.items():
        extra += ["-e", "%s=%s" % (name, value)]
    result = run_playbook("playbooks/deploy.yml", *extra)
    if result.returncode != 0:
        raise SystemExit("chaos: deploy.yml %s failed:\n%s" % (" ".join(extra), result.stdout[-3000:]))


def upload(box: Sandbox, rows: int, objects: int, run_id: str, seed: int) -> Dict[str, int]:
    from customer_pipeline.contract.sample_data import generate_bytes

    s3: Any = box.s3_client()  # the sandbox's admin identity: the producer's own may only read
    uploaded: Dict[str, int] = {}
    for number in range(objects):
        count = rows // objects + (1 if number < rows % objects else 0)
        key = "%schaos-%s-%d.csv" % (PREFIX, run_id, number + 1)
        s3.put_object(Bucket=BUCKET, Key=key, Body=generate_bytes(count, seed + number))
        uploaded["s3://%s/%s" % (BUCKET, key)] = count
    return uploaded


def wait_for_flows(watch: FlowWatch, timeout: float = 180) -> None:
    """Until the producer publishes the new objects and the job writes them (the producer lists
    its prefix every 30 s)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        time.sleep(5)
        recent = [s for s in watch.snapshot() if s[0] >= time.monotonic() - 10 and None not in s]
        if len(recent) >= 2 and recent[-1][1] > recent[0][1] and recent[-1][2] > recent[0][2]:
            return
    raise SystemExit("chaos: no rows flowed within %.0f s of the upload: is the pipeline deployed and running? "
                     "(last error sampling the topics: %s)" % (timeout, watch.last_error or "none"))


def inject(box: Sandbox, fault: Fault) -> None:
    fault.injected_at = time.monotonic()
    try:
        fault.note = box.faults[fault.kind]()
    except (FaultFailed, subprocess.TimeoutExpired) as error:
        fault.error = str(error).splitlines()[0][:300]
    fault.restored_at = time.monotonic()


def wait_for_recovery(faults: Sequence[Fault], watch: FlowWatch, timeout: float) -> None:
    """Measures every fault's recovery, waiting up to `timeout` after the last one was undone."""
    deadline = time.monotonic() + timeout
    while True:
        samples = watch.snapshot()
        for fault in faults:
            if fault.injected_at is not None and fault.restored_at is not None:
                measure_recovery(fault, samples)
        if all(f.recovered_after is not None or f.error for f in faults) or time.monotonic() > deadline:
            return
        time.sleep(5)


def verify_until_exact(uploaded: Dict[str, int], timeout: float = 1200) -> Optional[dict]:
    """verify.yml (waiting for the job's lag to reach 0) until the run's objects are all in its
    report, finished by the producer, and it is exact, or the timeout: the last report. verify.yml
    reconciles only the objects the producer finished, so one still being read would pass
    uncounted."""
    deadline = time.monotonic() + timeout
    report: Optional[dict] = None
    while time.monotonic() < deadline:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "verify.json"
            # Restarts are what this run causes: verify's flapping threshold does not apply.
            result = run_playbook("playbooks/verify.yml", "-e", "verify_wait=600", "-e", "verify_report=%s" % path,
                              "-e", "pipeline_verify_max_restarts=1000")
            report = json.loads(path.read_text()) if path.exists() else None
        done = {item["uri"] for item in (report or {}).get("objects", []) if item.get("state") == "done"}
        if report is not None and report.get("ok") and set(uploaded) <= done:
            return report
        # Its problems, or (no report) its last lines: a long wait says what it waits for.
        why = json.dumps((report or {}).get("problems"))[:1500] if report else result.stdout.strip()[-1500:]
        print("chaos: verify.yml not exact yet (exit %d), again in 15 s: %s" % (result.returncode, why), flush=True)
        time.sleep(15)
    return report


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    box = sandbox(args.nodes)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    faults = schedule(args.kinds.split(","), seed, args.repeats, args.min_gap, args.max_gap)
    for fault in faults:
        fault.must_serve = fault.kind in box.served_through
    planned = sum(f.gap_seconds + NOMINAL_SECONDS.get(f.kind, 5) for f in faults)
    # The ingest must outlast the last fault, or a flow that ended with the ingest would count as
    # not resumed: faults the pipeline serves through (one broker of three down) do not slow the
    # producer, so nothing else makes it last longer than planned.
    rate = max(200, round(args.rows / (planned + TAIL_SECONDS)))
    run_id = uuid.uuid4().hex[:6]
    print("chaos: %s, seed %d (make chaos%s SEED=%d replays this order), %d faults over about %.0f s, %d rows in "
          "%d objects, the producer limited to %d rows/s" % (box.name, seed, "" if args.nodes == 1 else " NODES=3", seed,
                                                             len(faults), planned, args.rows, args.objects, rate),
          flush=True)
    for number, fault in enumerate(faults, 1):
        print("  %2d. after %4.1f s: %s" % (number, fault.gap_seconds, fault.kind))
    running = all(box.on(node)("systemctl is-active %s" % unit, check=False).strip() == "active"
                  for unit, node in box.pipeline.items())
    if not running:
        print("chaos: the pipeline is not running on %s: the whole deploy.yml first" % box.name)
    deploy(dict(CHAOS_SETTINGS, customer_producer_rate_limit=rate), whole=not running)
    watch = FlowWatch(box.bootstrap)
    watch.start()
    uploaded = upload(box, args.rows, args.objects, run_id, seed)
    started = time.monotonic()
    wait_for_flows(watch)
    print("chaos: rows flowing %.0f s after the upload; faults start" % (time.monotonic() - started), flush=True)
    started = time.monotonic()
    try:
        for number, fault in enumerate(faults, 1):
            time.sleep(fault.gap_seconds)
            inject(box, fault)
            print("chaos: %2d. %.0f s: %s%s, undone after %.0f s%s" % (
                number, fault.injected_at - started, fault.kind, " (%s)" % fault.note if fault.note else "",
                fault.restored_at - fault.injected_at, "; FAILED: " + fault.error if fault.error else ""), flush=True)
        wait_for_recovery(faults, watch, args.recover_timeout)
    except BaseException:
        # Interrupted (Ctrl-C, a timeout): what happened so far, before the traceback.
        wait_for_recovery(faults, watch, 0)
        print("\n" + table(faults, started), flush=True)
        raise
    finally:
        watch.stop()
    faults_ended = time.monotonic()
    # Counted before the deploy below, whose restarts reset them.
    restarts = ", ".join("%s%s %s" % ("" if box is ONE_NODE else node + " ", unit,
                                      "?" if sample.restarts is None else sample.restarts)
                         for node, units in box.services.items()
                         for unit, sample in sample_units(units, node=box.on(node)).items())

    deploy({})  # the inventory's settings again; the producer finishes at full speed
    report = verify_until_exact(uploaded)
    states = {(node, unit): state for node, units in box.services.items() for unit, state in zip(
        units, box.on(node)("systemctl is-active %s" % " ".join(units), check=False).split() + ["unknown"] * len(units))}

    print("\n" + table(faults, started))
    problems = ["%s at %.0f s: %s" % (f.kind, (f.injected_at or started) - started, verdict(f))
                for f in faults if verdict(f) != "recovered"]
    inactive = ["%s (%s)" % (unit, state) if box is ONE_NODE else "%s on %s (%s)" % (unit, node, state)
                for (node, unit), state in states.items() if state != "active"]
    if inactive:
        problems.append("services not active: %s" % ", ".join(inactive))
    unfinished = sorted(uri for uri in uploaded if not any(
        item["uri"] == uri and item.get("state") == "done" for item in (report or {}).get("objects", [])))
    if report is None or not report.get("ok"):
        problems.append("verify.yml did not reconcile: %s" % json.dumps(report)[-1500:])
    elif unfinished:
        problems.append("the producer did not finish: %s" % ", ".join(unfinished))
    else:
        # An object overwritten mid-read is reconciled as its new version; the rows its old version
        # gave before the change stay in HDFS, counted apart by verify.yml (earlier versions).
        current_rows = dict(uploaded, **OVERWRITTEN)
        for item in report["objects"]:
            if item["uri"] in uploaded:
                # usa and alerts: distinct rows in HDFS; *_expected: what CONTRACT.md makes of the object.
                lost = item["usa_expected"] - item["usa"] + item["alerts_expected"] - item["alerts"]
                earlier = item.get("earlier", 0)
                print("%s: %d rows in the object (%d %s); in HDFS usa %d of %d, alerts %d of %d (out of scope "
                      "%d), %d of earlier versions: %d lost, %d duplicated" % (
                          item["uri"], item["rows"], current_rows[item["uri"]],
                          "in its new version" if item["uri"] in OVERWRITTEN else "uploaded", item["usa"],
                          item["usa_expected"], item["alerts"], item["alerts_expected"], item["out_of_scope"],
                          earlier, lost, item["duplicates"]))
                if lost or item["duplicates"] or item["rows"] != current_rows[item["uri"]]:
                    problems.append("%s: %d lost, %d duplicated" % (item["uri"], lost, item["duplicates"]))
                if earlier and item["uri"] not in OVERWRITTEN:
                    problems.append("%s: %d rows of an earlier version, but it was not overwritten" % (
                        item["uri"], earlier))
    print("chaos: seed %d; faults %.0f s, then deploy and verify %.0f s; automatic restarts by systemd: %s"
          % (seed, faults_ended - started, time.monotonic() - faults_ended, restarts))
    if problems:
        print("chaos: FAILED\n  " + "\n  ".join(problems))
        return 1
    print("chaos: passed: %d faults, every one recovered; %d rows, 0 lost, 0 duplicated; every service active"
          % (len(faults), sum(uploaded.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
