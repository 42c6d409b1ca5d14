"""The faults of the chaos run on the one-node sandbox: each injects one real failure into the
node's real services (over SSH, as root) and undoes it, returning a note for the table.

Every kind is a fault a cluster has: processes killed, daemons restarted, a store gone for
a while, the whole machine restarted, permissions taken away, a source object overwritten
while the producer reads it. None is simulated: the services see exactly what they would see
on a cluster node.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

# bench/ is on sys.path (run_chaos.py puts it there): the benches' SSH command for the node.
from sandbox_node import s3_client, ssh_command

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ("/user/maria_dev/customers_usa", "/user/maria_dev/customers_alerts")
OUTAGE_SECONDS = 30
# The new version an overwritten object gets: its own rows, drawn from another seed.
NEW_VERSION_ROWS = 20_000
# uri -> rows of the version each overwrite left (run_chaos reconciles those objects with them).
OVERWRITTEN: Dict[str, int] = {}


class FaultFailed(Exception):
    """The fault could not be injected or undone (not the pipeline's failure: the run's)."""


def on_node(command: str, timeout: float = 300, check: bool = True,
            ssh: Callable[[str], List[str]] = ssh_command) -> str:
    """`command` as root on the one-node sandbox's node, or on the node `ssh` builds the command
    line for (another sandbox's); its output, or FaultFailed when it fails and `check`."""
    argv = ssh(command)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise FaultFailed("%s (%s): exit %d, %s" % (command, argv[-2], result.returncode,
                                                     result.stderr.strip()[-300:]))
    return result.stdout


def run_playbook(*arguments: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """ansible-playbook from the repository root (the Makefile exports the sandbox inventory)."""
    return subprocess.run(["ansible-playbook", *arguments], cwd=ROOT, env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def playbook(*arguments: str) -> None:
    result = run_playbook(*arguments, timeout=900)
    if result.returncode != 0:
        raise FaultFailed("ansible-playbook %s: exit %d\n%s" % (" ".join(arguments), result.returncode,
                                                                 result.stdout[-2000:]))


class UnitSample(NamedTuple):
    """One unit's main process as systemd and /proc show it; None (or "") where there is none."""

    pid: Optional[int]
    command: str  # the main process's name (comm): java, python3, sh during a back-off
    rss_kib: Optional[int]
    restarts: Optional[int]  # NRestarts: automatic restarts since the unit was last started by hand


def sample_units(units: Sequence[str], timeout: float = 30,
                 node: Optional[Callable[..., str]] = None) -> Dict[str, UnitSample]:
    """MainPID, its name and resident size, and NRestarts of each unit on `node` (a function that
    runs a command there; the one node's on_node by default), in one SSH call: make soak samples
    every 10 s; the chaos run counts restarts and finds the process to kill."""
    script = ("for unit in %s; do pid=$(systemctl show -p MainPID --value $unit);"
              " comm=$(cat /proc/$pid/comm 2>/dev/null);"
              " rss=$(awk '/^VmRSS:/ {print $2}' /proc/$pid/status 2>/dev/null);"
              " echo \"$unit ${pid:-0} ${comm:--} ${rss:--} $(systemctl show -p NRestarts --value $unit)\"; done"
              ) % " ".join(units)
    return parse_unit_samples((node or on_node)(script, timeout=timeout), units)


def parse_unit_samples(output: str, units: Sequence[str]) -> Dict[str, UnitSample]:
    """sample_units' lines, "unit pid comm rss restarts" ("-" for unknown), by unit."""
    def number(text: str) -> Optional[int]:
        return int(text) if text.isdigit() else None

    samples = {unit: UnitSample(None, "", None, None) for unit in units}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] in samples:
            pid = number(parts[1])
            samples[parts[0]] = UnitSample(pid or None, "" if parts[2] == "-" else parts[2], number(parts[3]),
                                           number(parts[4]))
    return samples


def main_process(unit: str, command: str, timeout: float = 120, node: Optional[Callable[..., str]] = None) -> int:
    """The unit's main PID once it is `command` (java for the driver, python for the producer),
    not the restart back-off's shell still waiting: a kill must hit the real process."""
    deadline = time.monotonic() + timeout
    while True:
        sample = sample_units([unit], node=node)[unit]
        if sample.pid and sample.command.startswith(command):
            return sample.pid
        if time.monotonic() > deadline:
            raise FaultFailed("%s has no running %s process after %.0f s" % (unit, command, timeout))
        time.sleep(1)


def kill_spark_driver() -> str:
    # Local master: the driver is spark-submit's JVM, the unit's main process; the Python side
    # of the job loses its gateway with it.
    pid = main_process("customer-stream", "java")
    on_node("kill -9 %d" % pid)
    return "driver PID %d" % pid


def kill_producer(node: Callable[..., str] = on_node) -> str:
    pid = main_process("customer-producer", "python", node=node)
    # Its last progress line says which object and row it is at: mid-object unless it is between two.
    position = producer_position(node)
    node("kill -9 %d" % pid)
    where = "%s of %s" % (position[1], position[0]) if position else "between objects"
    return "PID %d, %s" % (pid, where.replace("s3://customers/", ""))


def overwrite_object_being_read(timeout: float = 60) -> str:
    """The object the producer is reading, overwritten with new content (CONTRACT.md: a new
    object). The producer reads an object with one GET, which the store goes on serving from the
    old version (measured on SeaweedFS): it finishes the old version and ingests the new one at
    its next listing. Had it to open the key again (a restart mid-object), the ETag it asks for
    (IfMatch) would be gone and it would drop the old version there. Either way the old
    version's rows stay in HDFS, counted by verify.yml as an earlier version. Between two
    objects, the fault waits for the next one to start."""
    deadline = time.monotonic() + timeout
    position = producer_position()
    while position is None:
        if time.monotonic() > deadline:
            raise FaultFailed("the producer started no object within %.0f s: the ingest ended before this fault "
                              "(more --rows)" % timeout)
        time.sleep(1)
        position = producer_position()
    uri, where = position
    from customer_pipeline.contract.sample_data import generate_bytes

    bucket, _, key = uri[len("s3://"):].partition("/")
    s3_client().put_object(Bucket=bucket, Key=key, Body=generate_bytes(NEW_VERSION_ROWS, len(OVERWRITTEN) + 777))
    OVERWRITTEN[uri] = NEW_VERSION_ROWS
    return "%s at %s, new version %d rows" % (key.rpartition("/")[2], where, NEW_VERSION_ROWS)


def producer_position(node: Callable[..., str] = on_node) -> Optional[Tuple[str, str]]:
    """(uri, where) of the object the producer is reading, from its journal; None between objects."""
    last = node("journalctl -u customer-producer -o cat --no-pager -n 300 | grep -E "
                   "'now at row [0-9]+ of |(ingesting|resuming|finished) s3://' | tail -n 1", check=False).strip()
    return object_being_read(last)


def object_being_read(line: str) -> Optional[Tuple[str, str]]:
    """(uri, where) from one of the producer's progress lines (service.py's wording, after the
    level name the journal shows with it); None after a "finished" line: between objects."""
    message = re.sub(r"^(DEBUG|INFO|WARNING|ERROR) ", "", line)
    progress = re.search(r"now at (row \d+) of (s3://.+)$", message)
    if progress:
        return progress.group(2), progress.group(1)
    if message.startswith("ingesting s3://"):
        return message[len("ingesting "):].rsplit(" (", 1)[0], "its start"
    if message.startswith("resuming s3://"):
        uri, _, row = message[len("resuming "):].partition(" after row ")
        return uri, "row %s" % row.split()[0]
    if message.startswith("finished s3://"):
        return None
    raise FaultFailed("no object being read in the producer's journal: %r" % line[-200:])


def restart(unit: str, node: Callable[..., str] = on_node) -> Callable[[], str]:
    def fault() -> str:
        node("systemctl restart %s" % unit, timeout=300)
        return ""
    return fault


def stop_object_store() -> str:
    on_node("systemctl stop seaweedfs")
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        on_node("systemctl start seaweedfs")
    return "%d s" % OUTAGE_SECONDS


def reboot_node() -> str:
    # The sandbox's node has no nspawn supervisor that boots it again after `systemctl reboot`:
    # power off cleanly (sandbox_down.yml), boot (only the boot tag, no converge), then every
    # enabled unit has to come back by itself, in the order of its After= lines.
    playbook("sandbox/sandbox_down.yml")
    playbook("sandbox/sandbox.yml", "--tags", "sandbox_node")
    state = on_node("systemctl is-system-running --wait", check=False, timeout=600).strip()
    return "system %s after the boot" % state


def hdfs(command: str) -> str:
    return on_node("HADOOP_USER_NAME=hdfs hdfs dfs %s" % command, timeout=180)


def take_away_hdfs_write() -> str:
    """The job's two datasets unwritable for OUTAGE_SECONDS (every folder and file, a-w), then
    write given back to their owner (u+w). Nothing in them is group- or world-writable before
    (test_verify checks), so u+w restores every mode."""
    modes_before = hdfs("-ls -R %s | awk '{print $1}' | sort | uniq -c" % " ".join(DATASETS))
    hdfs("-chmod -R a-w %s" % " ".join(DATASETS))
    try:
        time.sleep(OUTAGE_SECONDS)
    finally:
        hdfs("-chmod -R u+w %s" % " ".join(DATASETS))
    modes_after = hdfs("-ls -R %s | awk '{print $1}' | sort -u" % " ".join(DATASETS))
    writable = [mode for mode in modes_after.split() if mode[5:6] == "w" or mode[8:9] == "w"]
    if writable:
        raise FaultFailed("after the restore some dataset entries are group- or world-writable: %s (before: %s)"
                          % (writable, modes_before))
    return "%d s" % OUTAGE_SECONDS


FAULTS: Dict[str, Callable[[], str]] = {
    "kill -9 spark driver": kill_spark_driver,
    "kill -9 producer": kill_producer,
    "kafka broker restart": restart("kafka"),
    "hdfs datanode restart": restart("hdfs-datanode"),
    "hdfs namenode restart": restart("hdfs-namenode"),
    "object store stopped": stop_object_store,
    "node reboot": reboot_node,
    "hdfs datasets unwritable": take_away_hdfs_write,
    "object overwritten mid-read": overwrite_object_being_read,
}
SERVICES: List[str] = ["kafka", "hdfs-namenode", "hdfs-datanode", "seaweedfs", "customer-producer", "customer-stream"]


class Sandbox(NamedTuple):
    """What the chaos run needs of a sandbox: its brokers, its fault kinds, where its services
    run, how to reach its nodes and its object store."""

    name: str
    bootstrap: str
    faults: Dict[str, Callable[[], str]]
    services: Dict[str, List[str]]  # node -> the units that must be active on it at the end
    pipeline: Dict[str, str]  # customer-producer and customer-stream -> the node that runs it
    on: Callable[..., Callable[..., str]]  # node -> a function that runs a command there
    s3_client: Callable[[], object]  # the store's admin identity (uploads, overwrites)
    # Kinds the rest of the sandbox must serve through: rows flow on while they last.
    served_through: Tuple[str, ...] = ()


def _one_node(node: str) -> Callable[..., str]:
    return on_node


ONE_NODE = Sandbox(name="the one-node sandbox", bootstrap="127.0.0.1:9092", faults=FAULTS,
                   services={"node": SERVICES}, pipeline={"customer-producer": "node", "customer-stream": "node"},
                   on=_one_node, s3_client=s3_client)
