"""The pipeline_preflight role refuses an inconsistent inventory before deploy.yml changes anything.

Each test writes a small inventory to tmp_path, every host on ansible_connection=local, and runs
the role by its FQCN through the project's ansible.cfg, as deploy.yml's first play would. The
inventory checks need no node (the reachability probes are skipped with their tag); the probes
run against 127.0.0.1: a socket the test listens on answers, a free port does not. The Python
check asks this machine's interpreters (the test's own, or a stand-in that answers 3.6.8).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLE = "customer_streaming.pipeline.pipeline_preflight"
PLAYBOOK = """\
- name: Refuse an inconsistent inventory
  hosts: pipeline:customer_producers:customer_stream_gateway
  gather_facts: false
  any_errors_fatal: true
  roles:
    - role: %s
""" % ROLE
# The hosts of a consistent pipeline: one gateway, two producers, both groups children of pipeline.
PLACEMENT = {"customer_stream_gateway": ["gw1"], "customer_producers": ["p1", "p2"]}
# Addresses nothing is asked to reach while the probes are skipped.
BASE_VARS = {"cluster_kafka_bootstrap_servers": "b1:9092,b2:9092,b3:9092",
             "cluster_hdfs_uri": "hdfs://nn1:8020",
             "kafka_topics_replication_factor": 1,
             "pipeline_python_interpreter": sys.executable}

if not (BIN / "ansible-playbook").exists():
    pytest.skip("ansible-playbook is not beside %s: run the tests from the project's venv" % sys.executable,
                allow_module_level=True)


def write_inventory(folder: Path, groups: Dict[str, List[str]],
                    pipeline_children=("customer_producers", "customer_stream_gateway"),
                    host_vars: Optional[Dict[str, dict]] = None, **variables) -> Path:
    """hosts.yml with the groups given (absent ones stay absent) and all.vars = BASE_VARS + variables.

    host_vars replace a host's own variables (None as a value leaves that variable out).
    """
    hosts = sorted({host for members in groups.values() for host in members})
    children = {name: {"hosts": {host: None for host in members}} for name, members in groups.items()}
    children["pipeline"] = {"children": {name: None for name in pipeline_children if name in groups}}
    own = {host: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable} for host in hosts}
    for host, values in (host_vars or {}).items():
        own[host].update(values)
        own[host] = {name: value for name, value in own[host].items() if value is not None}
    inventory = {"all": {
        "hosts": own,
        "vars": dict(BASE_VARS, **variables),
        "children": children}}
    path = folder / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


def run_preflight(folder: Path, inventory: Path, *args: str, probes: bool = False) -> subprocess.CompletedProcess:
    playbook = folder / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_LOCAL_TEMP=str(folder / "tmp"), PATH="%s:%s" % (BIN, env.get("PATH", "")))
    command = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
    if not probes:
        command += ["--skip-tags", "pipeline_preflight_reachability"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def failures(result: subprocess.CompletedProcess) -> Dict[str, str]:
    """The message of each failed host, from the default callback's JSON results."""
    found = {}
    for host, payload in re.findall(r"^fatal: \[([^\]]+)\]: FAILED! => (\{.*\})$", result.stdout, flags=re.M):
        found[host] = json.loads(payload)["msg"]
    return found


def only_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout[-3000:]
    found = failures(result)
    assert len(found) == 1, (found, result.stdout[-3000:], result.stderr[-2000:])
    return " ".join(next(iter(found.values())).split())


def passed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-2000:])
    assert failures(result) == {}
    return result.stdout


@pytest.fixture
def listening():
    """A TCP port on 127.0.0.1 that accepts connections (the kernel's backlog answers for us)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on: a connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Inventory checks: no connection to any node.

def test_a_consistent_inventory_passes(tmp_path):
    groups = dict(PLACEMENT, kafka_brokers=["b1", "b2", "b3"], yarn_resourcemanager=["rm1"])
    inventory = write_inventory(tmp_path, groups, kafka_topics_replication_factor=3,
                                kafka_topics_min_insync_replicas=2, customer_stream_master="yarn",
                                customer_stream_deploy_mode="cluster")
    output = passed(run_preflight(tmp_path, inventory))
    recap = output.split("PLAY RECAP")[1]
    assert sorted(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", recap, flags=re.M)) == [
        "gw1", "p1", "p2"]
    assert "is not checked against a broker count" not in output


def test_two_gateways_fail_naming_both(tmp_path):
    inventory = write_inventory(tmp_path, dict(PLACEMENT, customer_stream_gateway=["gw1", "gw2"]))
    message = only_failure(run_preflight(tmp_path, inventory))
    assert message.startswith("2 hosts in group customer_stream_gateway (gw1, gw2): ")
    assert "two Spark jobs would share one checkpoint" in message
    assert message.endswith("Keep exactly one host in customer_stream_gateway.")


def test_no_gateway_fails(tmp_path):
    inventory = write_inventory(tmp_path, {"customer_producers": ["p1"]})
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        "no Spark gateway: put one host in group customer_stream_gateway (the host whose customer-stream.service "
        "submits the Spark job).")


@pytest.mark.parametrize("producers", [None, []], ids=["group absent", "group empty"])
def test_no_producer_fails(tmp_path, producers):
    groups = {"customer_stream_gateway": ["gw1"]}
    if producers is not None:
        groups["customer_producers"] = producers
    inventory = write_inventory(tmp_path, groups)
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        "no producer: put at least one host in group customer_producers (the hosts that run "
        "customer-producer.service).")


def test_a_producer_outside_pipeline_fails(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, pipeline_children=("customer_stream_gateway",))
    message = only_failure(run_preflight(tmp_path, inventory))
    assert message.startswith("p1, p2 in customer_producers or customer_stream_gateway but not in group pipeline: "
                              "verify.yml and reset.yml run over pipeline and would miss them.")


def test_replication_factor_above_the_brokers_fails(tmp_path):
    inventory = write_inventory(tmp_path, dict(PLACEMENT, kafka_brokers=["b1", "b2"]),
                                kafka_topics_replication_factor=3)
    message = only_failure(run_preflight(tmp_path, inventory))
    assert message.startswith("kafka_topics_replication_factor 3 is more than the 2 hosts of group kafka_brokers "
                              "(b1, b2): ")
    assert message.endswith("Lower kafka_topics_replication_factor or list every broker in kafka_brokers.")


def test_without_kafka_brokers_the_replication_factor_is_not_counted_but_said_so(tmp_path):
    """Three bootstrap servers of a bigger cluster: their number says nothing about the brokers."""
    inventory = write_inventory(tmp_path, PLACEMENT, kafka_topics_replication_factor=5)
    output = passed(run_preflight(tmp_path, inventory))
    assert ("group kafka_brokers is absent or empty: kafka_topics_replication_factor 5 is not checked against a "
            "broker count") in output


def test_min_insync_replicas_above_the_replication_factor_fails(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, kafka_topics_replication_factor=2,
                                kafka_topics_min_insync_replicas=3)
    assert only_failure(run_preflight(tmp_path, inventory)).startswith(
        "kafka_topics_min_insync_replicas 3 and kafka_topics_replication_factor 2: both must be at least 1 and "
        "min.insync.replicas at most the replication factor")


def test_cluster_mode_with_a_local_master_fails(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, customer_stream_master="local[2]",
                                customer_stream_deploy_mode="cluster")
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        "customer_stream_deploy_mode cluster needs customer_stream_master yarn, not local[2]: a local master runs "
        "the driver inside customer-stream.service itself (set customer_stream_deploy_mode client, or "
        "customer_stream_master yarn).")


def test_an_unknown_deploy_mode_fails(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, customer_stream_deploy_mode="yarn-cluster")
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        'customer_stream_deploy_mode is "yarn-cluster": spark-submit knows client or cluster.')


@pytest.mark.parametrize("mode", ["client", "cluster"])
def test_yarn_needs_a_resourcemanager_or_the_word_that_yarn_is_elsewhere(tmp_path, mode):
    inventory = write_inventory(tmp_path, PLACEMENT, customer_stream_master="yarn", customer_stream_deploy_mode=mode)
    message = only_failure(run_preflight(tmp_path, inventory))
    assert message.startswith("customer_stream_master yarn needs YARN, but group yarn_resourcemanager is absent or "
                              "empty: put the ResourceManager's host in yarn_resourcemanager, or set "
                              "pipeline_preflight_yarn_managed_elsewhere true")
    passed(run_preflight(tmp_path, inventory, "-e", '{"pipeline_preflight_yarn_managed_elsewhere": true}'))


def test_malformed_bootstrap_servers_fail(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, cluster_kafka_bootstrap_servers="b1:9092, b2")
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        'cluster_kafka_bootstrap_servers "b1:9092, b2" has entries that are not host:port: b2: set it to the '
        "brokers' host:port, comma-separated.")


def test_fallbacks_are_the_other_roles_defaults():
    """The role reads kafka_topics', customer_stream's and pipeline_python's variables, falling back to their own defaults."""
    preflight = yaml.safe_load((ROOT / "roles/pipeline_preflight/defaults/main.yml").read_text())
    for name, role, variable in [
            ("pipeline_preflight_replication_factor", "kafka_topics", "kafka_topics_replication_factor"),
            ("pipeline_preflight_min_insync_replicas", "kafka_topics", "kafka_topics_min_insync_replicas"),
            ("pipeline_preflight_stream_master", "customer_stream", "customer_stream_master"),
            ("pipeline_preflight_stream_deploy_mode", "customer_stream", "customer_stream_deploy_mode"),
            ("pipeline_preflight_python_interpreter", "pipeline_python", "pipeline_python_interpreter")]:
        owner = yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text())
        fallback = re.fullmatch(r"\{\{ %s \| default\((.*)\) \}\}" % variable, preflight[name]).group(1)
        assert yaml.safe_load(fallback) == owner[variable], name


# Python: both interpreters of each host, asked with raw before any module runs there.

HINT = ("The pipeline needs Python 3.8 or newer on every pipeline host: ansible-core runs its modules with "
        "ansible_python_interpreter, and the producer's virtualenv is made from pipeline_python_interpreter. Set "
        "both, in the inventory (group_vars, or host_vars of %s), to a Python 3.8 or newer on the node. On CentOS 7 "
        "(HDP 3.1) install it with `yum install centos-release-scl && yum install rh-python38`, then set "
        "ansible_python_interpreter and pipeline_python_interpreter to /opt/rh/rh-python38/root/usr/bin/python3.")


@pytest.fixture
def python36(tmp_path) -> str:
    """A stand-in for CentOS 7's /usr/bin/python3: whatever it is asked, it answers 3.6.8."""
    path = tmp_path / "centos7" / "python3.6"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\necho 3.6.8\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("check", [False, True], ids=["run", "check mode"])
def test_an_old_pipeline_python_fails_naming_the_host_the_path_and_the_version(tmp_path, python36, check):
    inventory = write_inventory(tmp_path, PLACEMENT, host_vars={"p2": {"pipeline_python_interpreter": python36}})
    message = only_failure(run_preflight(tmp_path, inventory, *(["--check"] if check else [])))
    assert message == "p2: pipeline_python_interpreter %s is Python 3.6.8. %s" % (python36, HINT % "p2")


def test_a_missing_ansible_python_fails_before_any_module_runs(tmp_path):
    inventory = write_inventory(tmp_path, PLACEMENT, host_vars={"gw1": {"ansible_python_interpreter": "/nowhere/python3"}})
    result = run_preflight(tmp_path, inventory)
    assert only_failure(result) == (
        "gw1: ansible_python_interpreter /nowhere/python3 is not there or does not run. %s" % HINT % "gw1")


def test_both_interpreters_old_are_named_in_one_message(tmp_path, python36):
    inventory = write_inventory(tmp_path, PLACEMENT, host_vars={
        "p1": {"ansible_python_interpreter": python36, "pipeline_python_interpreter": python36}})
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        "p1: pipeline_python_interpreter %s is Python 3.6.8; ansible_python_interpreter %s is Python 3.6.8. %s"
        % (python36, python36, HINT % "p1"))


def test_without_ansible_python_interpreter_the_discovered_one_is_checked(tmp_path, python36):
    """Unset, Ansible takes the first of its fallback list found on the node (CentOS 7: /usr/bin/python3, 3.6)."""
    inventory = write_inventory(tmp_path, PLACEMENT, host_vars={"p1": {
        "ansible_python_interpreter": None,
        "ansible_interpreter_python_fallback": ["python3.99-absent", python36, sys.executable]}})
    assert only_failure(run_preflight(tmp_path, inventory)) == (
        "p1: ansible_python_interpreter is not set, and interpreter discovery would take %s, which is Python 3.6.8. %s"
        % (python36, HINT % "p1"))
    passed(run_preflight(tmp_path, write_inventory(tmp_path, PLACEMENT, host_vars={"p1": {
        "ansible_python_interpreter": None, "ansible_interpreter_python_fallback": ["python3.99-absent", sys.executable]}})))


# Reachability: probes from each producer and the gateway (here the controller itself).

def probe(tmp_path, bootstrap: str, hdfs_uri: str, groups: Optional[dict] = None) -> subprocess.CompletedProcess:
    inventory = write_inventory(tmp_path, groups or {"customer_stream_gateway": ["gw1"], "customer_producers": ["p1"]},
                                cluster_kafka_bootstrap_servers=bootstrap, cluster_hdfs_uri=hdfs_uri,
                                pipeline_preflight_connect_timeout=1)
    return run_preflight(tmp_path, inventory, probes=True)


def test_an_unreachable_broker_fails_from_every_host_naming_it(tmp_path, listening, free_port):
    result = probe(tmp_path, "127.0.0.1:%d" % free_port, "hdfs://127.0.0.1:%d" % listening)
    assert result.returncode != 0
    found = {host: " ".join(message.split()) for host, message in failures(result).items()}
    assert sorted(found) == ["gw1", "p1"], result.stdout[-3000:]
    for host, needs in (("gw1", "Spark job"), ("p1", "producer")):
        assert found[host] == (
            "%s reaches none of the Kafka brokers of cluster_kafka_bootstrap_servers within 1 s: 127.0.0.1:%d did "
            "not answer. Its %s needs at least one; check the addresses, that the brokers run, and the firewall "
            "between them." % (host, free_port, needs))


def test_one_answering_broker_is_enough(tmp_path, listening, free_port):
    output = passed(probe(tmp_path, "127.0.0.1:%d,PLAINTEXT://127.0.0.1:%d" % (free_port, listening),
                          "hdfs://127.0.0.1:%d" % listening))
    assert ("127.0.0.1:%d of cluster_kafka_bootstrap_servers did not answer gw1 within 1 s; its clients use the "
            "others." % free_port) in " ".join(output.split())


def test_an_unreachable_namenode_fails_from_the_gateway(tmp_path, listening, free_port):
    message = only_failure(probe(tmp_path, "127.0.0.1:%d" % listening, "hdfs://127.0.0.1:%d" % free_port))
    assert message.startswith(
        "the Spark gateway gw1 reaches no HDFS NameNode of cluster_hdfs_uri hdfs://127.0.0.1:%d within 1 s: "
        "127.0.0.1:%d did not answer." % (free_port, free_port))


def test_an_ha_nameservice_is_not_probed_but_said_so(tmp_path, listening):
    output = passed(probe(tmp_path, "127.0.0.1:%d" % listening, "hdfs://mycluster"))
    assert ("cluster_hdfs_uri hdfs://mycluster names no host:port (an HA nameservice?): the gateway does not probe "
            "HDFS") in " ".join(output.split())
