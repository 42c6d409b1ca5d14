"""deploy.yml's own time: on a node without the pipeline (cold) and again (warm), with and without pipelining.

    python bench/deploy_time.py [--warm-only]

Needs the one-node sandbox (make sandbox). A cold run starts from a node whose pipeline
was removed by the bench (its two services stopped and their units, settings, virtualenvs,
jars and the node's artifact copies deleted; Kafka, HDFS, S3 and their data stay), with the
controller's artifact cache as it is: the downloads from PyPI and Maven are not timed, the
copies to the node, the installs and the first starts are. A warm run follows on the node the
cold run left: nothing to change, so it must report changed=0. Each kind of run is done
with Ansible's SSH pipelining (the project's setting) and without (ANSIBLE_PIPELINING=False),
and the ratio is taken against the run without, in the same command. The pipeline is left
deployed and running.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from typing import Dict, Tuple

from sandbox_node import ROOT, on_node

# What deploy.yml puts on the node, besides the topics and the HDFS folders it only creates.
PIPELINE_FILES = ("/opt/customer-pipeline", "/etc/customer-pipeline", "/var/cache/customer-pipeline",
                  "/etc/systemd/system/customer-producer.service", "/etc/systemd/system/customer-producer.service.d",
                  "/etc/systemd/system/customer-stream.service", "/etc/systemd/system/customer-stream.service.d")
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def remove_pipeline() -> None:
    on_node("systemctl disable --now customer-producer customer-stream >/dev/null 2>&1 || true; "
            "rm -rf %s; systemctl daemon-reload; systemctl reset-failed customer-producer customer-stream "
            ">/dev/null 2>&1 || true" % " ".join(PIPELINE_FILES))


def deploy(pipelining: bool) -> Tuple[float, int]:
    """(seconds, changed) of one deploy.yml run."""
    env = dict(os.environ, ANSIBLE_PIPELINING=str(pipelining), ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PYTHONPATH=str(ROOT / "src"))
    env["PATH"] = "%s:%s" % (os.path.dirname(sys.executable), env.get("PATH", ""))
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "playbooks/deploy.yml"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1800)
    seconds = time.monotonic() - started
    recaps = RECAP.findall(result.stdout)
    if result.returncode != 0 or not recaps:
        raise SystemExit("deploy.yml failed (exit %d):\n%s" % (result.returncode, result.stdout[-3000:]))
    return seconds, sum(int(changed) for _, changed, _, _ in recaps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-only", action="store_true", help="time only the warm runs (the smoke test's)")
    args = parser.parse_args()
    kinds = ("warm",) if args.warm_only else ("cold", "warm")
    times: Dict[Tuple[str, bool], Tuple[float, int]] = {}
    # The node starts deployed and up to date, whatever it was. With --warm-only (the smoke test,
    # on a node the tests before it deployed) the first warm run is that deploy when it finds
    # nothing to change, and is run again when it did change something.
    prepared = not args.warm_only
    if prepared:
        deploy(True)
    for pipelining in (False, True):
        for kind in kinds:
            if kind == "cold":
                remove_pipeline()
            times[(kind, pipelining)] = deploy(pipelining)
            if kind == "warm" and not prepared and times[(kind, pipelining)][1] != 0:
                print("the node was not up to date (changed=%d): the warm run again" % times[(kind, pipelining)][1])
                times[(kind, pipelining)] = deploy(pipelining)
            prepared = True
            if kind == "warm" and times[(kind, pipelining)][1] != 0:
                raise SystemExit("a warm deploy.yml changed %d thing(s): it is not idempotent"
                                 % times[(kind, pipelining)][1])
    print("deploy.yml on the one-node sandbox (one run each, this machine):")
    print("| run | without pipelining (baseline) | with pipelining (the project's setting) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for kind in kinds:
        (off, off_changed), (on, on_changed) = times[(kind, False)], times[(kind, True)]
        label = "cold (node without the pipeline)" if kind == "cold" else "warm (nothing to change)"
        print("| %s | %.1f s, changed=%d | %.1f s, changed=%d | %.2f |" % (label, off, off_changed, on, on_changed,
                                                                          on / off))
    return 0


if __name__ == "__main__":
    sys.exit(main())
