"""The pipeline on the three-node sandbox (make sandbox NODES=3; make test-cluster runs this).

Three nodes on 127.0.0.11-13: three Kafka brokers, HDFS with two DataNodes, YARN with two
NodeManagers, the producer on csp-node2 and the Spark gateway on csp-node3, whose service
submits the job to YARN in cluster mode. In file order: the cluster is what the inventory
says; inconsistent inventories are refused before anything changes; deploy → verify (exact)
→ a second deploy changes nothing → new objects while the producers scale 1 → 2 → 1 (the job
in client mode during the middle step) → an application killed from outside → reset →
verify; then a worker (broker,
DataNode, NodeManager and the producer at once) is powered off during an ingest and the
pipeline recovers with nothing lost or duplicated.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from sandbox_node import SANDBOX3_BOOTSTRAP as BOOTSTRAP
from sandbox_node import SANDBOX3_NODES as NODES
from sandbox_node import SANDBOX3_STATE as STATE

from conftest import ROOT, on_sandbox_node, play_recap, playbook_on, report_counts, run, verify_on
from customer_pipeline.contract.sample_data import generate_bytes

pytestmark = pytest.mark.cluster3

INVENTORY = "inventory/sandbox3"
RM = "http://127.0.0.11:8088"
NAMENODE = "http://127.0.0.11:9870"
SAMPLE = "s3://customers/incoming/customers.csv"


def on(node: str, command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """A shell command on one node over SSH, with the key Ansible uses."""
    return on_sandbox_node(STATE, NODES[node], command, check=check, timeout=timeout)


def playbook(name: str, *extra: str, check: bool = True, timeout: float = 1200) -> subprocess.CompletedProcess:
    return playbook_on(INVENTORY, name, *extra, check=check, timeout=timeout)


def http_json(url: str) -> dict:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8")
    # The ResourceManager writes an unknown CPU utilisation as a bare -INF, which is no JSON.
    return json.loads(re.sub(r"(?<=[:\[,])\s*-?INF\b", " null", text))


def yarn_apps(states: str = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING") -> List[dict]:
    apps = (http_json("%s/ws/v1/cluster/apps?states=%s" % (RM, states)).get("apps") or {}).get("app") or []
    return [app for app in apps if app["name"] == "customer-stream"]


def verify(tmp_path: Path, *extra: str, check: bool = True):
    return verify_on(INVENTORY, tmp_path, *extra, check=check)


counts = report_counts


@pytest.fixture(scope="module")
def s3():
    import boto3
    from botocore.config import Config

    secrets = STATE / "secrets"
    if not (secrets / "s3_secret_access_key").exists():
        pytest.fail("the three-node sandbox is not built: run make sandbox NODES=3 first")
    return boto3.client("s3", endpoint_url="http://127.0.0.11:8333", region_name="us-east-1",
                        aws_access_key_id=(secrets / "s3_access_key_id").read_text().split()[0],
                        aws_secret_access_key=(secrets / "s3_secret_access_key").read_text().split()[0],
                        config=Config(s3={"addressing_style": "path"}))


# -- the cluster ---------------------------------------------------------------------------

def test_each_node_has_its_name_address_and_services():
    expected = {
        "csp-node1": ["kafka", "hdfs-namenode", "yarn-resourcemanager", "seaweedfs"],
        "csp-node2": ["kafka", "hdfs-datanode", "yarn-nodemanager"],
        "csp-node3": ["kafka", "hdfs-datanode", "yarn-nodemanager"],
    }
    for node, units in expected.items():
        assert on(node, "hostname").stdout.strip() == node
        # Every node resolves every other node's name to its loopback address.
        for other, address in NODES.items():
            assert on(node, "getent hosts %s" % other).stdout.split()[0] == address
        assert on(node, "systemctl is-active %s" % " ".join(units)).stdout.split() == ["active"] * len(units)
        absent = {"kafka", "hdfs-namenode", "hdfs-datanode", "yarn-resourcemanager", "yarn-nodemanager",
                  "seaweedfs"} - set(units)
        assert on(node, "systemctl is-active %s" % " ".join(sorted(absent)), check=False).stdout.split() == \
            ["inactive"] * len(absent)


def test_three_brokers_two_datanodes_two_nodemanagers():
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        brokers = admin.describe_cluster()["brokers"]
    finally:
        admin.close()
    assert sorted((b["broker_id"], b["host"]) for b in brokers) == [(1, "127.0.0.11"), (2, "127.0.0.12"),
                                                                     (3, "127.0.0.13")]
    state = http_json("%s/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState" % NAMENODE)["beans"][0]
    assert state["NumLiveDataNodes"] == 2
    nodes = http_json("%s/ws/v1/cluster/nodes?states=RUNNING" % RM)["nodes"]["node"]
    assert sorted((n["nodeHostName"], n["state"]) for n in nodes) == [("csp-node2", "RUNNING"),
                                                                     ("csp-node3", "RUNNING")]


# -- inventories deploy.yml refuses ------------------------------------------------------

def broken_inventory(name: str, edit) -> str:
    """A copy of inventory/sandbox3 (same group_vars) with hosts.yml changed by edit(text)."""
    import yaml

    # Two levels below the repository, as inventory/sandbox3 is: its group_vars find .state/ and .cache/
    # from the inventory's folder.
    folder = ROOT / ".state" / ("test-inventory-" + name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "group_vars").symlink_to(ROOT / INVENTORY / "group_vars")
    hosts = yaml.safe_load((ROOT / INVENTORY / "hosts.yml").read_text())
    edit(hosts["all"]["children"])
    (folder / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return str(folder)


@pytest.mark.parametrize("name, edit, message", [
    ("two-gateways", lambda g: g["customer_stream_gateway"]["hosts"].update({"csp-node2": None}),
     "2 hosts in group customer_stream_gateway (csp-node2, csp-node3)"),
    ("no-producer", lambda g: g["customer_producers"].update({"hosts": {}}),
     "no producer: put at least one host in group customer_producers"),
    ("two-brokers", lambda g: g["kafka_brokers"]["hosts"].pop("csp-node3"),
     "kafka_topics_replication_factor 3 is more than the 2 hosts of group kafka_brokers"),
])
def test_an_inconsistent_inventory_is_refused_before_anything_changes(name, edit, message):
    inventory = broken_inventory(name, edit)
    result = run(["sh", "-c", 'exec "$0" "$@" </dev/null', "ansible-playbook", "-i", inventory,
                  "playbooks/deploy.yml", "-e", "kafka_topics_replication_factor=3"], check=False, timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in text, text[-3000:]
    assert all(counters.get("changed", 0) == 0 for counters in play_recap(result.stdout).values()), text[-2000:]


# -- deploy, verify, new objects while producers scale, reset -------------------------------

def test_deploy_places_each_service_on_its_group(tmp_path):
    result = playbook("playbooks/deploy.yml")
    recap = play_recap(result.stdout)
    assert all(counters["failed"] == 0 for counters in recap.values())
    assert on("csp-node2", "systemctl is-active customer-producer").stdout.strip() == "active"
    assert on("csp-node3", "systemctl is-active customer-stream").stdout.strip() == "active"
    for node, unit in (("csp-node1", "customer-producer"), ("csp-node3", "customer-producer"),
                       ("csp-node1", "customer-stream"), ("csp-node2", "customer-stream")):
        assert on(node, "systemctl is-active %s" % unit, check=False).stdout.strip() == "inactive", (node, unit)
    # The topics: three replicas, two in sync for acks=all.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        for topic in admin.describe_topics(["customers-raw", "customers-usa", "customers-alerts"]):
            assert {len(partition["replica_nodes"]) for partition in topic["partitions"]} == {3}, topic
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "customers-raw")])
        assert configs["topic"]["customers-raw"]["min.insync.replicas"]["value"] == "2"
    finally:
        admin.close()


def test_the_job_runs_as_one_yarn_application_in_cluster_mode(tmp_path):
    # RUNNING comes with the ApplicationMaster's container; the executors' follow within seconds.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not [a for a in yarn_apps()
                                               if a["state"] == "RUNNING" and a["runningContainers"] >= 2]:
        time.sleep(5)
    apps = yarn_apps()
    assert [app["state"] for app in apps] == ["RUNNING"], apps
    # The driver is the ApplicationMaster, on a NodeManager; executors in containers too.
    assert apps[0]["amHostHttpAddress"].split(":")[0] in ("csp-node2", "csp-node3")
    assert apps[0]["runningContainers"] >= 2, apps
    assert apps[0]["user"] == "maria_dev"


def test_verify_reconciles_exactly_across_the_nodes(tmp_path):
    result, report = verify(tmp_path, "-e", "verify_wait=600")
    assert report is not None and report["ok"] is True, result.stdout[-4000:]
    assert counts(report, SAMPLE) == (10_000, 6015, 1948, 2037, 0)
    # verify.yml names the YARN application and its state.
    assert "application_" in result.stdout and "RUNNING" in result.stdout, result.stdout[-3000:]


def test_a_second_deploy_changes_nothing_and_check_diff_is_clean():
    for extra in ((), ("--check", "--diff")):
        result = playbook("playbooks/deploy.yml", *extra)
        recap = play_recap(result.stdout)
        assert all(counters["changed"] == 0 and counters["failed"] == 0 for counters in recap.values()), \
            (extra, recap, result.stdout[-3000:])
    # No second application was started by it.
    assert len(yarn_apps()) == 1


def producer_log(node: str, since: float) -> str:
    return on(node, "journalctl -u customer-producer -o cat --no-pager --since @%d" % int(since), check=False).stdout


def open_object(log: str) -> Optional[str]:
    """The key a producer was reading when it last stopped ("stopping at row N of s3://...")."""
    stops = re.findall(r"stopping at row (\d+) of s3://customers/(\S+?);", log)
    return "%s after row %s" % (stops[-1][1], stops[-1][0]) if stops else None


def wait_for(what: str, test, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "waited %d s for %s" % (timeout, what)
        time.sleep(3)


# The producers 1 -> 2 -> 1 while objects are half-read, in three steps that share these.
# The producers are slowed to 20 rows/s during the first two steps, so each 4,000-row object
# takes 200 s: longer than a deploy, so every step change finds objects half-read.
SCALE: Dict[str, object] = {}
SLOW = ("-e", "customer_producer_rate_limit=20", "-e", "customer_producer_poll_interval_seconds=5")


def test_scale_step_1_one_producer_starts_on_new_objects(s3):
    from customer_pipeline.producer.sharding import owner

    run_id = uuid.uuid4().hex[:6]
    candidates = ["incoming/scale-%s-%02d.csv" % (run_id, i) for i in range(40)]
    # Two objects for each shard of two, so both producers of the next step have work.
    keys = [k for k in candidates if owner(k, 2) == 0][:2] + [k for k in candidates if owner(k, 2) == 1][:2]
    SCALE.update(keys=keys, started=time.time())
    playbook("playbooks/deploy.yml", *SLOW)
    for index, key in enumerate(keys):
        s3.put_object(Bucket="customers", Key=key, Body=generate_bytes(4000, 100 + index))
    wait_for("csp-node2 to start on a new object", lambda: "ingesting s3://customers/incoming/scale-%s" % run_id
             in producer_log("csp-node2", SCALE["started"]))


def test_scale_step_2_two_producers_and_the_job_in_client_mode():
    """csp-node1 joins the producers (shard 0 of 2, csp-node2 shard 1 of 2); the same deploy moves
    the job to client mode: the service's own Python process is the driver."""
    from customer_pipeline.producer.sharding import owner

    assert SCALE, "step 1 did not run"
    two = broken_inventory("producers-2", lambda g: g["customer_producers"]["hosts"].update({"csp-node1": None}))
    old_apps = {app["id"] for app in yarn_apps()}
    SCALE["middle"] = middle = time.time()
    run(["sh", "-c", 'exec "$0" "$@" </dev/null', "ansible-playbook", "-i", two, "playbooks/deploy.yml", *SLOW,
         "-e", "customer_stream_deploy_mode=client"], timeout=900)
    # csp-node2 stopped mid-object; the object's owner among two resumes it after the same row.
    stopped = open_object(producer_log("csp-node2", SCALE["started"]))
    assert stopped, producer_log("csp-node2", SCALE["started"])[-2000:]
    resumer = "csp-node1" if owner(stopped.split()[0], 2) == 0 else "csp-node2"
    wait_for("%s to resume %s" % (resumer, stopped),
             lambda: "resuming s3://customers/%s " % stopped in producer_log(resumer, middle))
    wait_for("both shards", lambda: "shard 0 of 2 owns" in producer_log("csp-node1", middle)
             and "shard 1 of 2 owns" in producer_log("csp-node2", middle))
    # csp-node1 must be mid-object when step 3 stops it.
    wait_for("csp-node1 to read an object", lambda: re.search(r"(ingesting|resuming) s3://customers/incoming/scale-",
                                                              producer_log("csp-node1", middle)))
    # Client mode: one new application, whose driver is the service's Python process on the gateway.
    app = wait_for_new_running_app(old_apps)
    driver = on("csp-node3", "systemctl show -p MainPID --value customer-stream; pgrep -u customer-stream -f "
                "'python[0-9.]* /opt/customer-pipeline/stream/run_stream_job.py'").stdout.split()
    assert len(driver) >= 2, driver
    assert "--deploy-mode client" in on("csp-node3", "cat /etc/systemd/system/customer-stream.service").stdout
    assert [a["id"] for a in yarn_apps()] == [app["id"]]
    SCALE["client_app"] = app["id"]


def test_scale_step_3_back_to_one_producer_and_cluster_mode_lands_every_row_once(tmp_path):
    """csp-node1 leaves customer_producers but stays in pipeline for this deploy
    (docs/scaling-producers.md), so its producer is stopped and disabled; csp-node2, alone again
    at full speed, resumes csp-node1's half-read object after its last committed row."""
    assert "client_app" in SCALE, "step 2 did not run"
    back = broken_inventory("producers-back", lambda g: g["pipeline"].update({"hosts": {"csp-node1": None}}))
    last = time.time()
    run(["sh", "-c", 'exec "$0" "$@" </dev/null', "ansible-playbook", "-i", back, "playbooks/deploy.yml"], timeout=900)
    assert on("csp-node1", "systemctl is-active customer-producer; systemctl is-enabled customer-producer",
              check=False).stdout.split() == ["inactive", "disabled"]
    stopped = open_object(producer_log("csp-node1", SCALE["middle"]))
    assert stopped, producer_log("csp-node1", SCALE["middle"])[-2000:]
    wait_for("csp-node2 to resume %s" % stopped,
             lambda: "resuming s3://customers/%s " % stopped in producer_log("csp-node2", last))
    # Back in cluster mode: the client-mode application ended with its driver, one new one runs.
    wait_for_new_running_app({SCALE["client_app"]})
    assert len(yarn_apps()) == 1
    keys = SCALE["keys"]
    result, report = verify(tmp_path, "-e", "verify_wait=600", check=False)
    deadline = time.monotonic() + 300
    while (report is None or not report["ok"]
           or not all(any(i["uri"] == "s3://customers/" + k for i in report["objects"]) for k in keys)):
        assert time.monotonic() < deadline, result.stdout[-4000:]
        time.sleep(10)
        result, report = verify(tmp_path, "-e", "verify_wait=300", check=False)
    for key in keys:
        rows, usa, alerts, out_of_scope, duplicates = counts(report, "s3://customers/" + key)
        assert (rows, duplicates) == (4000, 0), key
    assert counts(report, SAMPLE) == (10_000, 6015, 1948, 2037, 0)


def stream_restarts() -> int:
    return int(on("csp-node3", "systemctl show -p NRestarts --value customer-stream").stdout.strip())


def wait_for_new_running_app(old: set, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [app for app in yarn_apps() if app["state"] == "RUNNING" and app["id"] not in old]
        if running:
            return running[0]
        time.sleep(3)
    raise AssertionError("no new RUNNING application within %d s: %s" % (timeout, yarn_apps()))


def test_an_application_killed_by_someone_else_restarts_the_service(tmp_path):
    from urllib.request import Request, urlopen

    [app] = yarn_apps()
    restarts = stream_restarts()
    request = Request("%s/ws/v1/cluster/apps/%s/state?user.name=maria_dev" % (RM, app["id"]), method="PUT",
                      data=b'{"state": "KILLED"}', headers={"Content-Type": "application/json"})
    urlopen(request, timeout=10).read()
    new = wait_for_new_running_app({app["id"]})
    # The supervisor exited 1 naming the application; systemd restarted the service, which resubmitted.
    assert stream_restarts() == restarts + 1
    log = on("csp-node3", "journalctl -u customer-stream -o cat --no-pager | grep 'ERROR' | tail -n 3").stdout
    assert "YARN application %s ended KILLED" % app["id"] in log, log
    assert [a["id"] for a in yarn_apps()] == [new["id"]]


def test_reset_stops_everything_everywhere_and_the_rebuild_reconciles(tmp_path):
    before = yarn_apps()
    result = playbook("playbooks/reset.yml", "-e", "reset_confirm=yes", "-e", "reset_start=yes")
    assert result.returncode == 0, result.stdout[-4000:]
    # The old application was killed when its service stopped; one new one runs.
    final = {app["id"]: app["state"] for app in yarn_apps("KILLED,FINISHED,FAILED")}
    assert all(final.get(app["id"]) in ("KILLED", "FINISHED") for app in before), (before, final)
    result, report = verify(tmp_path, "-e", "verify_wait=600")
    assert report["ok"] is True, result.stdout[-4000:]
    assert counts(report, SAMPLE) == (10_000, 6015, 1948, 2037, 0)
    assert len(yarn_apps()) == 1


# -- losing a worker ------------------------------------------------------------------------

def machine(node: str, state: str) -> None:
    """Power a node off, or boot it again: only the boot (tag sandbox_node), no converge, so the
    node's enabled units must come back by themselves, in the order their units give."""
    if state == "stopped":
        run(["ansible-playbook", "-i", INVENTORY, "sandbox/sandbox_down.yml", "--limit", node], timeout=300)
    else:
        run(["ansible-playbook", "-i", INVENTORY, "sandbox/sandbox.yml", "--limit", node, "--tags", "sandbox_node"],
            timeout=600)


def test_losing_a_worker_loses_nothing(tmp_path, s3):
    """Power off csp-node2 (a broker, a DataNode, a NodeManager and the producer) mid-ingest."""
    key = "incoming/worker-loss-%s.csv" % uuid.uuid4().hex[:8]
    s3.put_object(Bucket="customers", Key=key, Body=generate_bytes(60_000, 23))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        log = on("csp-node2", "journalctl -u customer-producer -o cat --no-pager | tail -n 50").stdout
        if "ingesting s3://customers/%s" % key in log:
            break
        time.sleep(2)
    time.sleep(5)
    timings: Dict[str, float] = {}
    started = time.monotonic()
    machine("csp-node2", "stopped")
    timings["node2 powered off"] = time.monotonic() - started
    # Kafka (2 of 3 replicas in sync) and HDFS (one DataNode left) go on serving: the job
    # keeps committing batches of what was published before the loss.
    time.sleep(30)
    assert [a["state"] for a in yarn_apps()] in (["RUNNING"], ["ACCEPTED"], [], ["SUBMITTED"]), yarn_apps()
    machine("csp-node2", "started")
    timings["node2 booted"] = time.monotonic() - started
    assert on("csp-node2", "systemctl is-system-running --wait; systemctl is-active kafka hdfs-datanode "
              "yarn-nodemanager customer-producer", check=False).stdout.split() == ["running"] + ["active"] * 4
    result, report = verify(tmp_path, "-e", "verify_wait=900", check=False)
    deadline = time.monotonic() + 600
    while (report is None or not report["ok"] or not any(i["uri"] == "s3://customers/" + key
                                                         for i in report["objects"])) and time.monotonic() < deadline:
        time.sleep(15)
        result, report = verify(tmp_path, "-e", "verify_wait=300", check=False)
    timings["verify exact again"] = time.monotonic() - started
    print("worker loss timings (s): %s" % {name: round(value) for name, value in timings.items()})
    assert report is not None and report["ok"] is True, result.stdout[-4000:]
    rows, usa, alerts, out_of_scope, duplicates = counts(report, "s3://customers/" + key)
    assert (rows, duplicates) == (60_000, 0)
    assert len(yarn_apps()) == 1
