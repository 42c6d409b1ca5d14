"""The kafka_topic module against the sandbox's real Kafka broker (127.0.0.1:9092).

Runs `ansible localhost -m customer_streaming.pipeline.kafka_topic` exactly as a user would, parses the result, and checks
the broker with kafka-python's admin client. Topic names carry a random suffix and are deleted
at the end. Run after `make sandbox`.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from conftest import play_recap, run

pytestmark = pytest.mark.sandbox

BOOTSTRAP = "127.0.0.1:9092"
WEEK_MS = 7 * 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000
# The venv's own ansible, also when pytest runs without the venv on PATH (.venv/bin/python -m pytest).
BIN = Path(sys.executable).parent
RESULT_LINE = re.compile(r"^localhost \| (?P<status>[A-Z]+)!? => ", re.MULTILINE)


@contextmanager
def admin_client(timeout_ms: int = 20_000):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, bootstrap_timeout_ms=timeout_ms,
                             request_timeout_ms=timeout_ms)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(autouse=True)
def broker_answers():
    """Wait (up to 5 minutes) for the broker: CI powers the sandbox node off and on again."""
    deadline = time.monotonic() + 300
    while True:
        try:
            with admin_client(10_000) as admin:
                admin.list_topics()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            if time.monotonic() > deadline:
                pytest.fail("Kafka at %s does not answer after 5 minutes: %s" % (BOOTSTRAP, exc))
            time.sleep(10)


@pytest.fixture
def topic_name():
    """A factory of unique topic names; every topic it named is deleted at the end."""
    names: List[str] = []

    def make(label: str = "t") -> str:
        names.append("kafka-topic-test-%s-%s" % (label, uuid.uuid4().hex[:8]))
        return names[-1]

    yield make
    with admin_client() as admin:
        existing = set(admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            admin.delete_topics(doomed, raise_errors=False)


def kafka_topic(args: Dict[str, Any], check: bool = False, diff: bool = False,
                expect_failure: bool = False) -> Tuple[Dict[str, Any], str]:
    """Run `ansible localhost -m kafka_topic -a <json>`; the parsed result and the whole output."""
    args = dict({"bootstrap_servers": BOOTSTRAP}, **args)
    command = [str(BIN / "ansible"), "localhost", "-m", "customer_streaming.pipeline.kafka_topic", "-a", json.dumps(args)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    result = run(command, timeout=180, check=False)
    output = result.stdout
    matches = list(RESULT_LINE.finditer(output))
    match = matches[-1] if matches else None
    assert match is not None, "no result line in:\n%s\n%s" % (output[-3000:], result.stderr[-3000:])
    parsed, _ = json.JSONDecoder().raw_decode(output[match.end():])
    parsed["_status"] = match.group("status")
    if expect_failure:
        assert result.returncode != 0 and match.group("status") == "FAILED", output[-3000:]
    else:
        assert result.returncode == 0 and match.group("status") in ("CHANGED", "SUCCESS"), (
            output[-3000:] + result.stderr[-3000:])
    return parsed, output


@pytest.fixture(autouse=True)
def json_results(monkeypatch):
    """Results as JSON (ansible.cfg prints YAML), so kafka_topic() can parse them."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")


def partitions_of(name: str) -> Optional[int]:
    with admin_client() as admin:
        topic = admin.describe_topics([name])[0]
    if topic["error_code"] == 3:
        return None
    return len(topic["partitions"])


def configs_of(name: str) -> Dict[str, Dict[str, Any]]:
    from kafka.admin import ConfigResource, ConfigResourceType

    with admin_client() as admin:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all")
    return described["topic"][name]


def set_config_behind_ansibles_back(name: str, **configs: str) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    with admin_client() as admin:
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, dict(configs))])
    assert result == {"topic": {name: "OK"}}


def create(name: str, partitions: int = 3, **config: Any) -> Dict[str, Any]:
    result, _ = kafka_topic({"name": name, "partitions": partitions, "replication_factor": 1, "config": config})
    return result


def test_create_then_rerun_changes_nothing(topic_name):
    name = topic_name("create")
    first = create(name, 3, **{"retention.ms": WEEK_MS, "cleanup.policy": "delete", "min.insync.replicas": 1})
    assert first["changed"] is True
    assert first["topic"] == {"name": name, "state": "present", "partitions": 3, "replication_factor": 1,
                              "configs": {"cleanup.policy": "delete", "min.insync.replicas": "1",
                                          "retention.ms": "604800000"}}
    assert partitions_of(name) == 3
    configs = configs_of(name)
    assert configs["retention.ms"]["value"] == "604800000"
    assert configs["cleanup.policy"]["value"] == "delete"

    # Same settings, given as strings this time: nothing to do.
    again = create(name, 3, **{"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "1"})
    assert again["changed"] is False
    assert again["_status"] == "SUCCESS"
    assert again["changes"] == []


def test_partitions_are_raised_and_never_lowered(topic_name):
    name = topic_name("partitions")
    create(name, 3)
    raised = create(name, 4)
    assert raised["changed"] is True
    assert raised["changes"] == ["partitions of %s: 3 -> 4" % name]
    assert partitions_of(name) == 4

    refused, _ = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1}, expect_failure=True)
    assert refused["msg"] == ("topic %s has 4 partitions and Kafka cannot remove partitions: "
                              "refusing to lower them to 3" % name)
    assert partitions_of(name) == 4


def test_replication_factor_change_is_refused(topic_name):
    name = topic_name("rf")
    create(name, 1)
    refused, _ = kafka_topic({"name": name, "partitions": 1, "replication_factor": 2}, expect_failure=True)
    assert "topic %s has replication factor 1, 2 was asked" % name in refused["msg"]
    assert "not supported" in refused["msg"]


def test_config_drift_is_corrected_and_other_overrides_kept(topic_name):
    name = topic_name("drift")
    create(name, 1, **{"retention.ms": WEEK_MS, "cleanup.policy": "delete"})
    # Drift of a managed config, plus an override the module was never told about.
    set_config_behind_ansibles_back(name, **{"retention.ms": str(DAY_MS), "segment.ms": "3600000"})
    assert configs_of(name)["retention.ms"]["value"] == str(DAY_MS)

    corrected = create(name, 1, **{"retention.ms": WEEK_MS, "cleanup.policy": "delete"})
    assert corrected["changed"] is True
    assert corrected["config_api"] == "incremental"  # the sandbox runs Kafka 3.9
    assert corrected["changes"] == ["config retention.ms of %s: %d -> %d" % (name, DAY_MS, WEEK_MS)]
    configs = configs_of(name)
    assert configs["retention.ms"]["value"] == str(WEEK_MS)
    assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert configs["segment.ms"]["value"] == "3600000"  # not named, left alone

    assert create(name, 1, **{"retention.ms": WEEK_MS, "cleanup.policy": "delete"})["changed"] is False


def _load_module():
    """The collection's kafka_topic module, imported as Ansible's collection loader would."""
    from ansible_collections.customer_streaming.pipeline.plugins.modules import kafka_topic

    return kafka_topic


def test_legacy_alter_configs_path_keeps_other_overrides(topic_name, monkeypatch):
    """The AlterConfigs path of brokers before 2.3, forced against this broker (which still answers it)."""
    pytest.importorskip("ansible.module_utils.basic")
    kafka_topic_module = _load_module()
    monkeypatch.setattr(kafka_topic_module, "supports_incremental_alter", lambda admin: False)
    name = topic_name("legacy")
    create(name, 1, **{"retention.ms": WEEK_MS})
    set_config_behind_ansibles_back(name, **{"retention.ms": str(DAY_MS), "segment.ms": "3600000"})
    params = {"name": name, "state": "present", "partitions": 1, "replication_factor": 1,
              "config": {"retention.ms": WEEK_MS, "cleanup.policy": "compact"}, "timeout": 30}
    with admin_client() as admin:
        result = kafka_topic_module.ensure_topic(admin, params)
    assert result["changed"] is True
    assert result["config_api"] == "legacy"
    configs = configs_of(name)
    assert configs["retention.ms"]["value"] == str(WEEK_MS)
    assert configs["cleanup.policy"]["value"] == "compact"
    assert configs["segment.ms"]["value"] == "3600000"  # carried over, not reset to its default
    assert configs["segment.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"


def test_check_mode_reports_changes_and_applies_nothing(topic_name):
    name = topic_name("check")
    would_create, _ = kafka_topic({"name": name, "partitions": 3, "replication_factor": 1}, check=True)
    assert would_create["changed"] is True
    assert would_create["changes"][0].startswith("create topic %s with 3 partitions" % name)
    assert partitions_of(name) is None

    create(name, 3, **{"retention.ms": WEEK_MS})
    would_alter, _ = kafka_topic({"name": name, "partitions": 5, "replication_factor": 1,
                                  "config": {"retention.ms": DAY_MS}}, check=True)
    assert would_alter["changed"] is True
    assert would_alter["changes"] == ["partitions of %s: 3 -> 5" % name,
                                      "config retention.ms of %s: %d -> %d" % (name, WEEK_MS, DAY_MS)]
    assert partitions_of(name) == 3
    assert configs_of(name)["retention.ms"]["value"] == str(WEEK_MS)

    would_delete, _ = kafka_topic({"name": name, "state": "absent"}, check=True)
    assert would_delete["changed"] is True
    assert partitions_of(name) == 3


def test_diff_shows_partitions_and_configs_before_and_after(topic_name):
    name = topic_name("diff")
    create(name, 3, **{"retention.ms": WEEK_MS})
    result, output = kafka_topic({"name": name, "partitions": 4, "replication_factor": 1,
                                  "config": {"retention.ms": DAY_MS}}, diff=True)
    assert result["changed"] is True
    assert "--- before: topic %s" % name in output
    assert "+++ after: topic %s" % name in output
    assert '-    "partitions": 3,' in output
    assert '+    "partitions": 4,' in output
    assert '-        "retention.ms": "%d"' % WEEK_MS in output
    assert '+        "retention.ms": "%d"' % DAY_MS in output
    assert partitions_of(name) == 4


def test_absent_deletes_the_topic_once(topic_name):
    name = topic_name("absent")
    create(name, 1)
    deleted, _ = kafka_topic({"name": name, "state": "absent"})
    assert deleted["changed"] is True
    assert deleted["changes"] == ["delete topic %s" % name]
    assert partitions_of(name) is None
    again, _ = kafka_topic({"name": name, "state": "absent"})
    assert again["changed"] is False


def test_unreachable_brokers_fail_with_one_clear_message():
    result, _ = kafka_topic({"name": "never-created", "partitions": 1, "bootstrap_servers": "127.0.0.1:1",
                             "timeout": 3}, expect_failure=True)
    assert result["msg"].startswith("cannot reach Kafka at 127.0.0.1:1 within 3 s")
    assert "check bootstrap_servers" in result["msg"]


def test_role_creates_its_topics_then_changes_nothing(topic_name, tmp_path):
    names = [topic_name("role-data"), topic_name("role-progress")]
    (tmp_path / "vars.yml").write_text(
        "kafka_topics_replication_factor: 1\n"
        "kafka_topics_list:\n"
        "  - name: %s\n"
        "    partitions: \"{{ kafka_topics_partitions }}\"\n"
        "    replication_factor: \"{{ kafka_topics_replication_factor }}\"\n"
        "    config:\n"
        "      retention.ms: \"{{ kafka_topics_retention_ms }}\"\n"
        "      cleanup.policy: delete\n"
        "      min.insync.replicas: 1\n"
        "  - name: %s\n"
        "    partitions: 1\n"
        "    replication_factor: 1\n"
        "    config:\n"
        "      cleanup.policy: compact\n" % tuple(names))
    (tmp_path / "play.yml").write_text(
        "- name: Ensure test topics\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  roles:\n"
        "    - role: kafka_topics\n")
    command = [str(BIN / "ansible-playbook"), str(tmp_path / "play.yml"), "-e", "@%s" % (tmp_path / "vars.yml")]
    first = play_recap(run(command, timeout=300).stdout)
    assert first["localhost"]["changed"] == 1
    assert first["localhost"]["failed"] == 0
    assert partitions_of(names[0]) == 3
    assert partitions_of(names[1]) == 1
    assert configs_of(names[1])["cleanup.policy"]["value"] == "compact"
    second = play_recap(run(command, timeout=300).stdout)
    assert second["localhost"]["changed"] == 0
