"""The pipeline on the HDP profile of the sandbox (make sandbox PROFILE=hdp; make test-hdp runs this).

One node built the way an HDP 3.1 sandbox is where it matters to the pipeline: host name
sandbox-hdp.hortonworks.com (on 127.0.0.21), Kafka 1.1.1 on ZooKeeper 3.4 and port 6667,
HDFS and YARN of Hadoop 3.1.1, the client commands under /usr/hdp/current, user maria_dev.
The playbooks run with inventory/hdp-example's own settings (inventory/sandbox-hdp links
them): deploy.yml installs Spark 3.5 beside the cluster, the job runs on YARN in client mode,
and deploy → verify → reset → verify reconciles exactly; a virtualenv left by another Python
is made again, and a deploy after a deploy changes nothing.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import List
from urllib.request import urlopen

import pytest

from conftest import ROOT, on_sandbox_node, play_recap, playbook_on, report_counts, verify_on

pytestmark = pytest.mark.hdp

INVENTORY = "inventory/sandbox-hdp"
STATE = ROOT / ".state" / "sandbox-hdp"
HOST = "sandbox-hdp.hortonworks.com"
ADDRESS = "127.0.0.21"
STACK = "/usr/hdp/3.1.0.0-78"
SAMPLE = "s3://customers/incoming/customers.csv"
# The sample's 10,000 rows as the contract routes them: USA, alerts, out of scope, duplicates.
SAMPLE_COUNTS = (10_000, 6015, 1948, 2037, 0)


def on(command: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    return on_sandbox_node(STATE, ADDRESS, command, check=check, timeout=timeout)


def yarn_apps(states: str) -> List[dict]:
    with urlopen("http://%s:8088/ws/v1/cluster/apps?states=%s" % (ADDRESS, states), timeout=10) as response:
        apps = (json.loads(response.read().decode("utf-8")).get("apps") or {}).get("app") or []
    return [app for app in apps if app["name"] == "customer-stream"]


@pytest.fixture(scope="module", autouse=True)
def built():
    if not (STATE / "ssh" / "id_ed25519").exists():
        pytest.fail("the HDP sandbox is not built: run make sandbox PROFILE=hdp first")


def test_the_node_is_laid_out_as_hdp_3_1():
    assert on("hostname").stdout.strip() == HOST
    # This machine resolves the host name too, as the example's settings need.
    assert socket.gethostbyname(HOST) == ADDRESS
    for unit in ("zookeeper", "kafka", "hdfs-namenode", "hdfs-datanode", "yarn-resourcemanager",
                 "yarn-nodemanager", "seaweedfs"):
        assert on("systemctl is-active %s" % unit, check=False).stdout.strip() == "active", unit
    # HDP's client commands, through hdp-select's links, and their versions.
    assert on("readlink -f /usr/bin/hdfs").stdout.strip() == STACK + "/hadoop/bin/hdfs"
    assert on("hdfs version").stdout.splitlines()[0] == "Hadoop 3.1.1"
    assert on("readlink -f /usr/bin/yarn").stdout.strip() == STACK + "/hadoop-yarn/bin/yarn"
    assert on("yarn version").stdout.splitlines()[0] == "Hadoop 3.1.1"
    libs = on("ls /usr/hdp/current/kafka-broker/libs").stdout.split()
    assert "kafka_2.11-1.1.1.jar" in libs and "zookeeper-3.4.10.jar" in libs
    assert on("id -un maria_dev").stdout.strip() == "maria_dev"
    # ZooKeeper answers on HDP's port, and the broker registered in it under HDP's port.
    with socket.create_connection((ADDRESS, 2181), timeout=5) as zookeeper:
        zookeeper.sendall(b"ruok")
        assert zookeeper.recv(16) == b"imok"
    versions = on("/usr/hdp/current/kafka-broker/bin/kafka-broker-api-versions.sh --bootstrap-server %s:6667"
                  % HOST).stdout
    assert versions.startswith("%s:6667 (id: 1 rack: null)" % HOST), versions[:300]
    # A client of today finds a 1.1 broker (kafka-python infers it from the API versions offered).
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers="%s:6667" % HOST)
    try:
        assert str(admin.get_broker_version_data(1)) == "<BrokerVersionData 1.1>"
    finally:
        admin.close()


def test_deploy_with_the_example_settings_runs_the_job_on_yarn(tmp_path):
    result = playbook_on(INVENTORY, "playbooks/deploy.yml")
    recap = play_recap(result.stdout)
    assert recap[HOST]["failed"] == 0, result.stdout[-3000:]
    # Spark 3.5 beside the cluster, where the example puts it, off PATH.
    assert on("/opt/spark3/bin/spark-submit --version 2>&1 | grep -o 'version 3\\.5\\.[0-9]*'").stdout.strip() \
        == "version 3.5.9"
    assert on("command -v spark-submit", check=False).returncode != 0
    for unit in ("customer-producer", "customer-stream"):
        assert on("systemctl is-active %s" % unit, check=False).stdout.strip() == "active", unit
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not yarn_apps("RUNNING"):
        time.sleep(5)
    running = yarn_apps("RUNNING")
    assert len(running) == 1 and running[0]["user"] == "maria_dev", running
    result, report = verify_on(INVENTORY, tmp_path, "-e", "verify_wait=600")
    assert report is not None and report["ok"] is True, result.stdout[-4000:]
    assert report_counts(report, SAMPLE) == SAMPLE_COUNTS


def test_a_virtualenv_of_another_python_is_made_again_and_then_deploy_changes_nothing():
    """The node's Python changed since the last deploy (on HDP: the SCL's Python upgraded, or
    pipeline_python_interpreter set to another): the producer's virtualenv is made again for it."""
    venv = "/opt/customer-pipeline/producer/venv"
    on("sed -i 's/^version = .*/version = 3.9.18/' %s/pyvenv.cfg" % venv)
    result = playbook_on(INVENTORY, "playbooks/deploy.yml")
    assert "changed: [%s] => (item=%s (Python 3.9))" % (HOST, venv) in result.stdout, result.stdout[-3000:]
    assert on("sed -n 's/^version = //p' %s/pyvenv.cfg" % venv).stdout.startswith("3.11.")
    assert on("%s/bin/python -c 'import customer_pipeline.producer, boto3, kafka'" % venv).returncode == 0
    assert on("systemctl is-active customer-producer", check=False).stdout.strip() == "active"
    # And the deploy after it changes nothing.
    result = playbook_on(INVENTORY, "playbooks/deploy.yml")
    recap = play_recap(result.stdout)
    assert all(counters["changed"] == 0 and counters["failed"] == 0 for counters in recap.values()), \
        (recap, result.stdout[-3000:])


def test_reset_then_verify_reconciles_again(tmp_path: Path):
    before = {app["id"] for app in yarn_apps("RUNNING")}
    result = playbook_on(INVENTORY, "playbooks/reset.yml", "-e", "reset_confirm=yes", "-e", "reset_start=yes",
                         check=False)
    assert result.returncode == 0, result.stdout[-4000:]
    result, report = verify_on(INVENTORY, tmp_path, "-e", "verify_wait=600")
    assert report is not None and report["ok"] is True, result.stdout[-4000:]
    assert report_counts(report, SAMPLE) == SAMPLE_COUNTS
    # The job was stopped with its application, and runs again as one new one.
    running = yarn_apps("RUNNING")
    assert len(running) == 1 and running[0]["id"] not in before, (before, running)
