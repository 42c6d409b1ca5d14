#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module kafka_topic: ensure a Kafka topic exists with given partitions, replication factor and configs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_topic
short_description: Ensure a Kafka topic is present with given partitions, replication factor and configs, or absent
description:
  - Creates, alters or deletes a Kafka topic through the Kafka Admin API with the
    C(kafka-python) admin client (C(KafkaAdminClient)); no ZooKeeper access, so it works
    with ZooKeeper and KRaft clusters alike, Kafka 1.1 through 4.x. The client negotiates
    the API versions with the brokers.
  - Reads the topic first, computes the difference to the desired state (partitions,
    replication factor, the configs named in O(config)), then applies only that difference.
  - Raises the number of partitions when O(partitions) is higher than the topic has.
    Kafka cannot remove partitions, so a lower O(partitions) fails with a message naming
    the topic and both numbers, and changes nothing.
  - Refuses a different O(replication_factor) for an existing topic (reassigning replicas
    is a job for C(kafka-reassign-partitions.sh)), and changes nothing.
  - Corrects config drift of the configs named in O(config) only; configs not named keep
    whatever value they have. On brokers 2.3 and later the differing configs are set with
    C(IncrementalAlterConfigs). On older brokers the legacy C(AlterConfigs) request replaces
    a topic's whole set of overrides, so the module sends the topic's current dynamic
    (non-default) configs together with the named ones, which keeps the other overrides.
  - Runs where it is executed; delegate it to a host that reaches the brokers (usually
    the controller, C(delegate_to=localhost) with C(run_once=true)).
version_added: "1.0.0"
author:
  - customer pipeline project
options:
  name:
    description: Name of the topic.
    type: str
    required: true
  state:
    description:
      - V(present) creates the topic if it is missing and corrects its partitions and configs.
      - V(absent) deletes the topic if it exists and waits until the brokers forget it.
    type: str
    choices: [present, absent]
    default: present
  partitions:
    description:
      - Number of partitions. Raised when the topic has fewer; a lower number than the
        topic has fails (Kafka cannot remove partitions).
      - Omit it to leave an existing topic's partitions alone and create a missing topic
        with the brokers' C(num.partitions) (brokers 2.4 and later only).
    type: int
  replication_factor:
    description:
      - Replication factor of a new topic. For an existing topic it must match the topic's
        replication factor; a different one fails.
      - Omit it to create a missing topic with the brokers' C(default.replication.factor)
        (brokers 2.4 and later only).
    type: int
  config:
    description:
      - Topic configs to ensure, for example C(retention.ms) or C(cleanup.policy).
      - Values are compared as the brokers describe them, as strings, so V(604800000) and
        V("604800000") are equal, V(true) is C("true"), a list is joined with commas.
      - Only the configs named here are compared and altered; the others keep their values.
        Removing a key from this dict does not reset the config to its default.
    type: dict
    default: {}
  bootstrap_servers:
    description: Brokers to bootstrap from, C(host:port), as a list or a comma-separated string.
    type: list
    elements: str
    required: true
  security_protocol:
    description: Protocol used to talk to the brokers.
    type: str
    choices: [PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL]
    default: PLAINTEXT
  sasl_mechanism:
    description: SASL mechanism, with O(security_protocol=SASL_PLAINTEXT) or O(security_protocol=SASL_SSL).
    type: str
    choices: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  sasl_username:
    description: SASL user name (PLAIN and SCRAM).
    type: str
  sasl_password:
    description: SASL password (PLAIN and SCRAM). Never logged.
    type: str
  ssl_cafile:
    description: CA bundle (PEM) that verifies the brokers' certificates, with O(security_protocol=SSL) or O(security_protocol=SASL_SSL).
    type: path
  timeout:
    description:
      - Seconds to wait for the brokers to answer when connecting and for each request,
        and for a new topic's partitions to get leaders (or a deleted topic to disappear).
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description: Reads the topic and reports what would change (C(changed), C(changes), the diff); changes nothing.
  diff_mode:
    support: full
    description: Shows the topic's state, partitions, replication factor and the named configs before and after.
requirements:
  - kafka-python >= 3.0 (on the host that runs the module, usually the controller)
notes:
  - A topic being deleted can linger for a moment on the brokers; the module waits up to
    O(timeout) seconds for a deletion to finish.
  - The legacy C(AlterConfigs) path (brokers before 2.3) reads and rewrites the topic's
    overrides in two requests; another client altering the same topic in between can lose
    its change. Brokers 2.3 and later use C(IncrementalAlterConfigs), which has no such race.
seealso:
  - name: Kafka topic configs
    description: Every topic config, its type and its default.
    link: https://kafka.apache.org/documentation/#topicconfigs
"""

EXAMPLES = r"""
- name: Ensure Kafka topic customers-raw
  customer_streaming.pipeline.kafka_topic:
    name: customers-raw
    partitions: 3
    replication_factor: 1
    config:
      retention.ms: 604800000
      cleanup.policy: delete
      min.insync.replicas: 1
    bootstrap_servers: 127.0.0.1:9092
  delegate_to: localhost
  run_once: true

- name: Ensure compacted Kafka topic customers-raw-progress over SASL_SSL
  customer_streaming.pipeline.kafka_topic:
    name: customers-raw-progress
    partitions: 1
    replication_factor: 3
    config:
      cleanup.policy: compact
    bootstrap_servers:
      - broker1.example.com:9093
      - broker2.example.com:9093
    security_protocol: SASL_SSL
    sasl_mechanism: SCRAM-SHA-512
    sasl_username: pipeline-admin
    sasl_password: "{{ vault_kafka_admin_password }}"
    ssl_cafile: /etc/pki/kafka/ca.pem
  delegate_to: localhost
  run_once: true

- name: Delete Kafka topic customers-old
  customer_streaming.pipeline.kafka_topic:
    name: customers-old
    state: absent
    bootstrap_servers: 127.0.0.1:9092
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
name:
  description: Name of the topic.
  returned: always
  type: str
  sample: customers-raw
state:
  description: The state asked for.
  returned: always
  type: str
  sample: present
topic:
  description:
    - The topic after the module ran (in check mode, as it would be), as the diff shows it.
    - C(state) is C(present) or C(absent); C(partitions), C(replication_factor) and C(configs)
      (the configs named in O(config)) are there when the topic is present and they are known.
  returned: always
  type: dict
  sample:
    name: customers-raw
    state: present
    partitions: 3
    replication_factor: 1
    configs:
      cleanup.policy: delete
      retention.ms: "604800000"
changes:
  description: One line per change made (in check mode, that would be made); empty when the topic already matched.
  returned: always
  type: list
  elements: str
  sample:
    - "partitions of customers-raw: 3 -> 4"
    - "config retention.ms of customers-raw: 86400000 -> 604800000"
config_api:
  description:
    - Admin API that altered (or in check mode would alter) the topic's configs,
      C(incremental) (IncrementalAlterConfigs, brokers 2.3+) or C(legacy) (AlterConfigs).
    - Empty when no config of an existing topic changes.
  returned: always
  type: str
  sample: incremental
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.customer_streaming.pipeline.plugins.module_utils.kafka_topic_diff import (
    TopicChangeRefused,
    legacy_alter_set,
    replication_factor_of,
    topic_diff,
)

try:
    import kafka.errors as kafka_errors
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.protocol.api_key import ApiKey
except ImportError:  # handled in main()
    KafkaAdminClient = None
    kafka_errors = None

DYNAMIC_TOPIC_CONFIG = "DYNAMIC_TOPIC_CONFIG"
UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION


class KafkaTopicError(Exception):
    """A failure the module reports with fail_json and this message."""


def servers_text(bootstrap_servers):
    return ",".join(bootstrap_servers)


def admin_settings(params):
    """Keyword arguments of KafkaAdminClient from the module's options (API versions negotiated)."""
    timeout_ms = int(params["timeout"]) * 1000
    settings = {
        "bootstrap_servers": list(params["bootstrap_servers"]),
        "client_id": "ansible-kafka_topic",
        "security_protocol": params["security_protocol"],
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
    }
    if params["sasl_mechanism"]:
        settings["sasl_mechanism"] = params["sasl_mechanism"]
        settings["sasl_plain_username"] = params["sasl_username"]
        settings["sasl_plain_password"] = params["sasl_password"]
    if params["ssl_cafile"]:
        settings["ssl_cafile"] = params["ssl_cafile"]
    return settings


def connect(params):
    """A connected admin client, or KafkaTopicError naming the bootstrap servers."""
    try:
        return KafkaAdminClient(**admin_settings(params))
    except (kafka_errors.KafkaError, OSError) as exc:
        raise KafkaTopicError(
            "cannot reach Kafka at %s within %d s (security_protocol %s): %s; check bootstrap_servers, "
            "the security settings and that the brokers are running"
            % (servers_text(params["bootstrap_servers"]), params["timeout"], params["security_protocol"], exc)
        ) from exc


def error_name(code):
    return kafka_errors.for_code(code).__name__


def describe_topic(admin, name):
    """The topic's metadata dict, or None when the brokers do not know it."""
    described = admin.describe_topics([name])
    topic = next((item for item in described if item.get("name") == name), None)
    if topic is None or topic.get("error_code") == UNKNOWN_TOPIC:
        return None
    if topic.get("error_code"):
        raise KafkaTopicError("cannot describe topic %s: %s" % (name, error_name(topic["error_code"])))
    return topic


def read_topic(admin, name):
    """The topic as topic_diff wants it (partitions, replication_factor, configs, dynamic), or None."""
    topic = describe_topic(admin, name)
    if topic is None:
        return None
    partitions = topic.get("partitions") or []
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="all"
    )
    configs = (described.get("topic") or {}).get(name) or {}
    return {
        "partitions": len(partitions),
        "replication_factor": replication_factor_of([len(p.get("replica_nodes") or []) for p in partitions]),
        "configs": {key: entry.get("value") for key, entry in configs.items()},
        "dynamic": {
            key: entry.get("value")
            for key, entry in configs.items()
            if entry.get("config_source") == DYNAMIC_TOPIC_CONFIG
        },
    }


def supports_incremental_alter(admin):
    """Whether the brokers answer IncrementalAlterConfigs (Kafka 2.3 and later)."""
    return ApiKey.IncrementalAlterConfigs in admin.api_versions()


def create_topic(admin, name, create, timeout_ms):
    result = admin.create_topics(
        {
            name: {
                "num_partitions": create["partitions"],
                "replication_factor": create["replication_factor"],
                "configs": create["config"],
            }
        },
        timeout_ms=timeout_ms,
        raise_errors=False,
    )
    for topic in result.get("topics", []):
        if topic.get("error_code"):
            raise KafkaTopicError(
                "cannot create topic %s: %s: %s"
                % (name, error_name(topic["error_code"]), topic.get("error_message") or "")
            )
    admin.wait_for_topics([name], timeout_ms=timeout_ms)


def delete_topic(admin, name, timeout_ms):
    result = admin.delete_topics([name], timeout_ms=timeout_ms, raise_errors=False)
    for topic in result.get("topics", []):
        if topic.get("error_code") and topic["error_code"] != UNKNOWN_TOPIC:
            raise KafkaTopicError(
                "cannot delete topic %s: %s: %s"
                % (name, error_name(topic["error_code"]), topic.get("error_message") or "")
            )
    deadline = time.monotonic() + timeout_ms / 1000.0
    while describe_topic(admin, name) is not None:
        if time.monotonic() >= deadline:
            raise KafkaTopicError("topic %s is still listed %d s after its deletion" % (name, timeout_ms // 1000))
        time.sleep(0.2)


def add_partitions(admin, name, total, timeout_ms):
    response = admin.create_partitions({name: total}, timeout_ms=timeout_ms, raise_errors=False)
    for result in response.results:
        if result.error_code:
            raise KafkaTopicError(
                "cannot raise the partitions of topic %s to %d: %s: %s"
                % (name, total, error_name(result.error_code), result.error_message or "")
            )


def alter_configs(admin, name, configs, incremental):
    resource = ConfigResource(ConfigResourceType.TOPIC, name, dict(configs))
    result = admin.alter_configs([resource], raise_on_unknown=False, incremental=incremental)
    outcome = (result.get("topic") or {}).get(name, "no answer for the topic")
    if outcome != "OK":
        raise KafkaTopicError(
            "cannot alter configs %s of topic %s: %s" % (", ".join(sorted(configs)), name, outcome)
        )


def ensure_topic(admin, params, check_mode=False):
    """Bring the topic to the desired state (unless check_mode); the module's result."""
    name = params["name"]
    timeout_ms = int(params["timeout"]) * 1000
    actual = read_topic(admin, name)
    plan = topic_diff(
        name,
        params["state"],
        actual,
        partitions=params["partitions"],
        replication_factor=params["replication_factor"],
        config=params["config"],
    )
    config_api = ""
    if plan["config"]:
        config_api = "incremental" if supports_incremental_alter(admin) else "legacy"
    if plan["changed"] and not check_mode:
        if plan["delete"]:
            delete_topic(admin, name, timeout_ms)
        elif plan["create"] is not None:
            create_topic(admin, name, plan["create"], timeout_ms)
        else:
            if plan["partitions"] is not None:
                add_partitions(admin, name, plan["partitions"], timeout_ms)
            if config_api == "incremental":
                alter_configs(admin, name, plan["config"], incremental=True)
            elif config_api == "legacy":
                alter_configs(admin, name, legacy_alter_set(actual["dynamic"], params["config"]), incremental=False)
    return {
        "changed": plan["changed"],
        "name": name,
        "state": params["state"],
        "topic": plan["after"],
        "changes": plan["changes"],
        "config_api": config_api,
        "diff": {
            "before_header": "topic %s" % name,
            "after_header": "topic %s" % name,
            "before": plan["before"],
            "after": plan["after"],
        },
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "partitions": {"type": "int"},
            "replication_factor": {"type": "int"},
            "config": {"type": "dict", "default": {}},
            "bootstrap_servers": {"type": "list", "elements": "str", "required": True},
            "security_protocol": {
                "type": "str",
                "choices": ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
                "default": "PLAINTEXT",
            },
            "sasl_mechanism": {"type": "str", "choices": ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]},
            "sasl_username": {"type": "str"},
            "sasl_password": {"type": "str", "no_log": True},
            "ssl_cafile": {"type": "path"},
            "timeout": {"type": "int", "default": 30},
        },
        required_if=[
            ("security_protocol", "SASL_PLAINTEXT", ("sasl_mechanism", "sasl_username", "sasl_password")),
            ("security_protocol", "SASL_SSL", ("sasl_mechanism", "sasl_username", "sasl_password")),
        ],
        supports_check_mode=True,
    )
    if KafkaAdminClient is None:
        module.fail_json(msg=missing_required_lib("kafka-python"))
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg="timeout must be 1 second or more, got %d" % params["timeout"])
    admin = None
    try:
        admin = connect(params)
        result = ensure_topic(admin, params, module.check_mode)
    except (KafkaTopicError, TopicChangeRefused) as exc:
        module.fail_json(msg=str(exc), name=params["name"])
    except kafka_errors.KafkaError as exc:
        module.fail_json(
            msg="Kafka request for topic %s at %s failed: %s"
            % (params["name"], servers_text(params["bootstrap_servers"]), exc),
            name=params["name"],
        )
    finally:
        if admin is not None:
            admin.close()
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
