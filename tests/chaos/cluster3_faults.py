"""The faults of make chaos NODES=3, on the three-node sandbox (inventory/sandbox3): the faults
that need a cluster, beside two of the one-node run's kinds on the node that runs them.

- the Spark job's YARN ApplicationMaster killed with kill -9 on whichever NodeManager runs it.
  In cluster mode the driver lives in it: YARN starts a second attempt (its default
  yarn.resourcemanager.am.max-attempts is 2), which restarts the query from its checkpoint;
  after the last attempt the application fails, the gateway's supervisor exits naming it, and
  systemd restarts the service, which submits the job again;
- one Kafka broker of three stopped for 60 s while the other two serve (every topic has three
  replicas and needs two in sync for acks=all): csp-node2's, then csp-node3's. csp-node1's
  broker is also the sandbox's only KRaft controller, a single point a production cluster does
  not have (three or five controllers), so it is not the one stopped;
- kill -9 of the producer mid-object on csp-node2, and a DataNode restart (csp-node2's, then
  csp-node3's): with two DataNodes each block has a replica on the other.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, Dict, Iterator, List, Tuple

import sandbox_node
from sandbox_faults import FaultFailed, Sandbox, kill_producer, on_node, restart
from sandbox_node import SANDBOX3_BOOTSTRAP, ssh_command
from sandbox_node import SANDBOX3_NODES as NODES
from sandbox_node import SANDBOX3_STATE as STATE

WORKERS = ("csp-node2", "csp-node3")  # a broker, a DataNode and a NodeManager each
BROKER_DOWN_SECONDS = 60
AM_CLASS = "org.apache.spark.deploy.yarn.ApplicationMaster"


def on(node: str) -> Callable[..., str]:
    """A function that runs a shell command as root on `node` over SSH (the key Ansible uses)."""
    def run(command: str, timeout: float = 300, check: bool = True) -> str:
        return on_node(command, timeout, check, ssh=lambda line: ssh_command(line, STATE, NODES[node]))
    return run


def s3_client() -> object:
    return sandbox_node.s3_client(STATE, "http://%s:8333" % NODES["csp-node1"])


def application_master(timeout: float = 300) -> Tuple[str, int]:
    """(node, PID) of the job's ApplicationMaster JVM: after a kill YARN starts the next attempt
    (or the service resubmits), so this waits for one to run."""
    deadline = time.monotonic() + timeout
    while True:
        for node in WORKERS:
            # The container's java (its first word), not the bash -c that launched it, whose
            # command line holds the java's.
            pids = on(node)("pgrep -f -x '[^ ]*/bin/java .*%s( .*)?' || true" % AM_CLASS.replace(".", "[.]")).split()
            if pids:
                return node, int(pids[0])
        if time.monotonic() > deadline:
            raise FaultFailed("no ApplicationMaster of the job runs on %s after %.0f s" % (" or ".join(WORKERS), timeout))
        time.sleep(2)


def kill_application_master() -> str:
    node, pid = application_master()
    on(node)("kill -9 %d" % pid)
    return "PID %d on %s" % (pid, node)


def in_turn(nodes: Tuple[str, ...], fault: Callable[[str], str]) -> Callable[[], str]:
    """The fault on each of `nodes` in turn, so that a kind that happens twice hits both."""
    turns: Iterator[str] = itertools.cycle(nodes)

    def injected() -> str:
        node = next(turns)
        note = fault(node)
        return "%s%s" % (node, ", " + note if note else "")
    return injected


def broker_down(node: str) -> str:
    on(node)("systemctl stop kafka")
    try:
        time.sleep(BROKER_DOWN_SECONDS)
    finally:
        on(node)("systemctl start kafka")
    return "%d s" % BROKER_DOWN_SECONDS


FAULTS: Dict[str, Callable[[], str]] = {
    "kill -9 yarn application master": kill_application_master,
    "one kafka broker of three down": in_turn(WORKERS, broker_down),
    "kill -9 producer": lambda: kill_producer(on("csp-node2")),
    "hdfs datanode restart": in_turn(WORKERS, lambda node: restart("hdfs-datanode", on(node))()),
}
SERVICES: Dict[str, List[str]] = {
    "csp-node1": ["kafka", "hdfs-namenode", "yarn-resourcemanager", "seaweedfs"],
    "csp-node2": ["kafka", "hdfs-datanode", "yarn-nodemanager", "customer-producer"],
    "csp-node3": ["kafka", "hdfs-datanode", "yarn-nodemanager", "customer-stream"],
}
THREE_NODES = Sandbox(name="the three-node sandbox", bootstrap=SANDBOX3_BOOTSTRAP,
                      faults=FAULTS, services=SERVICES,
                      pipeline={"customer-producer": "csp-node2", "customer-stream": "csp-node3"},
                      on=on, s3_client=s3_client, served_through=("one kafka broker of three down",))
