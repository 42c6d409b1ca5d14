"""What the benches share: the one-node sandbox's node (SSH), its S3 store and its broker.

The benches run from the controller with `python bench/NAME.py`, so this folder is on
sys.path and they import it as `sandbox_node`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List, Sequence

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state" / "sandbox"
BOOTSTRAP = "127.0.0.1:9092"
S3_ENDPOINT = "http://127.0.0.1:8333"
# The deployed pipeline's services, stopped by the benches that need the two cores.
SERVICES = ("customer-producer", "customer-stream")
# The three-node sandbox (make sandbox NODES=3): its state folder, and its nodes' loopback
# addresses as inventory/sandbox3/hosts.yml gives them (the chaos run and test_cluster3.py).
SANDBOX3_STATE = ROOT / ".state" / "sandbox3"
SANDBOX3_NODES = {"csp-node1": "127.0.0.11", "csp-node2": "127.0.0.12", "csp-node3": "127.0.0.13"}
SANDBOX3_BOOTSTRAP = ",".join("%s:9092" % address for address in SANDBOX3_NODES.values())


def ssh_command(command: str, state: Path = STATE, address: str = "127.0.0.1") -> List[str]:
    """ssh as root to a sandbox node: the one-node sandbox's by default, or the node at `address`
    of the sandbox whose state folder (SSH key, known hosts) is `state`."""
    # ConnectTimeout: a node that is down (tests/chaos reboots it) fails the call in seconds.
    # accept-new: the sandbox's own known_hosts learns a node's key the first time (a node of a
    # sandbox just built), and a changed key is still refused.
    ssh = state / "ssh"
    return ["ssh", "-i", str(ssh / "id_ed25519"), "-p", "2222",
            "-o", "UserKnownHostsFile=%s" % (ssh / "known_hosts"), "-o", "StrictHostKeyChecking=accept-new",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@%s" % address, command]


def on_node(command: str, timeout: float = 900, stdin: str = "") -> str:
    """Runs `command` as root on the node; its output, or the bench stops with its error."""
    result = subprocess.run(ssh_command(command), input=stdin, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit("on the sandbox node, %s failed: %s" % (command, result.stderr.strip()[-500:]))
    return result.stdout


def secret(name: str, state: Path = STATE) -> str:
    path = state / "secrets" / name
    if not path.exists():
        raise SystemExit("the sandbox of %s is not built: run make sandbox first" % state.name)
    return path.read_text().split()[0]


def s3_client(state: Path = STATE, endpoint: str = S3_ENDPOINT) -> Any:
    """The store's admin identity (the producer's own may only read), of the one-node sandbox by
    default."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=secret("s3_access_key_id", state),
                        aws_secret_access_key=secret("s3_secret_access_key", state),
                        config=Config(s3={"addressing_style": "path"}))


def create_topic(name: str, partitions: int = 3) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def delete_topics(names: List[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.delete_topics([name for name in names if name in admin.list_topics()])
    finally:
        admin.close()


def start_producer(settings: Path, prefix: str, kafka: Sequence[str], producer: Sequence[str] = ()) -> subprocess.Popen:
    """Starts the producer service on the controller (its source in src/) reading the
    sandbox's bucket under `prefix`, with the [kafka] and [producer] settings lines given;
    its settings file is written to `settings`, its output (stderr too) is its stdout."""
    settings.write_text("\n".join([
        "[s3]", "endpoint_url = %s" % S3_ENDPOINT, "bucket = customers", "prefix = %s" % prefix,
        "addressing_style = path",
        "[kafka]", "bootstrap_servers = %s" % BOOTSTRAP, *kafka,
        "[producer]", "poll_interval_seconds = 1", *producer,
    ]) + "\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"),
               AWS_ACCESS_KEY_ID=secret("s3_access_key_id"), AWS_SECRET_ACCESS_KEY=secret("s3_secret_access_key"))
    return subprocess.Popen([sys.executable, "-m", "customer_pipeline.producer", "--config", str(settings)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def services_stopped() -> Iterator[None]:
    """The deployed services that run are stopped for the time of the block (two cores: they
    would compete with the bench), then started again."""
    active = [name for name in SERVICES if on_node("systemctl is-active %s || true" % name).strip() == "active"]
    if active:
        on_node("systemctl stop %s" % " ".join(active))
    try:
        yield
    finally:
        if active:
            # reset-failed: a unit of an earlier release (with a start limit) counts this
            # stop and start as a crash loop's restarts; a few benches would leave it refused.
            on_node("systemctl reset-failed %s; systemctl start %s" % ((" ".join(active),) * 2))
