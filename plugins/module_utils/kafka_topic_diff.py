# -*- coding: utf-8 -*-
"""What must change to bring a Kafka topic to its desired state: pure functions, no I/O.

The kafka_topic module reads the topic from the brokers, passes what it read here and
applies the returned plan unless it runs in check mode. Nothing here imports Ansible or
kafka-python, so the rules are unit tested on their own (tests/unit/test_kafka_topic_diff.py).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional


class TopicChangeRefused(ValueError):
    """The desired state cannot be reached by altering the topic (fewer partitions, other replication factor)."""


def config_value(value: Any) -> Optional[str]:
    """A topic config value as the brokers describe it: a string (True -> 'true', 604800000 -> '604800000').

    Lists become Kafka's comma-separated form (['compact', 'delete'] -> 'compact,delete').
    None stays None (a config without a value, for example a sensitive one).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(config_value(item) or "" for item in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def normalize_config(config: Optional[Mapping[str, Any]]) -> Dict[str, Optional[str]]:
    """Every value of a config dict as a broker string (see config_value)."""
    return {str(key): config_value(value) for key, value in (config or {}).items()}


def replication_factor_of(replica_counts: List[int]) -> int:
    """The replication factor of a topic from the replica count of each partition.

    The most common count wins (a partition that is being reassigned briefly lists more
    replicas); on a tie, the smaller count. 0 for a topic without partitions.
    """
    if not replica_counts:
        return 0
    return min(set(replica_counts), key=lambda count: (-replica_counts.count(count), count))


def topic_view(name: str, actual: Optional[Mapping[str, Any]], config_keys: List[str]) -> Dict[str, Any]:
    """The topic as the diff shows it: state, partitions, replication factor and the given config keys."""
    if actual is None:
        return {"name": name, "state": "absent"}
    configs = actual.get("configs") or {}
    return {
        "name": name,
        "state": "present",
        "partitions": int(actual["partitions"]),
        "replication_factor": int(actual["replication_factor"]),
        "configs": {key: configs.get(key) for key in sorted(config_keys)},
    }


def topic_diff(
    name: str,
    state: str,
    actual: Optional[Mapping[str, Any]],
    partitions: Optional[int] = None,
    replication_factor: Optional[int] = None,
    config: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """What must change to bring topic name from actual to the desired state.

    actual is None when the topic does not exist, else a dict with 'partitions' (int),
    'replication_factor' (int) and 'configs' (every config of the topic the brokers
    describe, name -> value string). partitions, replication_factor and config are the
    desired values; None (or a missing config key) leaves that setting as it is.

    Returns a dict:
      changed: whether anything must change;
      create: None, or {'partitions', 'replication_factor', 'config'} for a missing topic;
      delete: True when the topic must be deleted;
      partitions: None, or the new total number of partitions;
      config: the configs that differ, name -> desired value string (empty when none);
      changes: one line per change, for humans;
      before, after: the topic as topic_view shows it, for Ansible's --diff.

    Raises TopicChangeRefused, naming the topic and both numbers, when partitions is lower
    than the topic has (Kafka cannot remove partitions) or replication_factor differs
    (reassigning replicas is a job for kafka-reassign-partitions, not this module), and
    when a config key is not among the topic's configs (when actual lists any).
    """
    if state not in ("present", "absent"):
        raise ValueError("state must be present or absent, got %r" % (state,))
    if partitions is not None and int(partitions) < 1:
        raise TopicChangeRefused("topic %s: partitions must be 1 or more, got %s" % (name, partitions))
    if replication_factor is not None and int(replication_factor) < 1:
        raise TopicChangeRefused(
            "topic %s: replication_factor must be 1 or more, got %s" % (name, replication_factor)
        )
    desired_config = normalize_config(config)
    keys = sorted(desired_config)
    empty = [key for key in keys if desired_config[key] is None]
    if empty and state == "present":
        raise TopicChangeRefused(
            "topic %s: config %s has no value (null); give a value, or leave the key out to keep the "
            "topic's current value" % (name, ", ".join(empty))
        )
    plan: Dict[str, Any] = {
        "changed": False,
        "create": None,
        "delete": False,
        "partitions": None,
        "config": {},
        "changes": [],
        "before": topic_view(name, actual, keys),
    }

    if state == "absent":
        if actual is not None:
            plan.update(changed=True, delete=True, changes=["delete topic %s" % name])
        plan["after"] = {"name": name, "state": "absent"}
        return plan

    if actual is None:
        create = {
            "partitions": int(partitions) if partitions is not None else -1,
            "replication_factor": int(replication_factor) if replication_factor is not None else -1,
            "config": desired_config,
        }
        plan.update(changed=True, create=create)
        plan["changes"] = [
            "create topic %s with %s partitions, replication factor %s%s"
            % (
                name,
                partitions if partitions is not None else "the brokers' default",
                replication_factor if replication_factor is not None else "the brokers' default",
                "".join(", %s=%s" % (key, desired_config[key]) for key in keys),
            )
        ]
        after: Dict[str, Any] = {"name": name, "state": "present", "configs": dict(sorted(desired_config.items()))}
        if partitions is not None:
            after["partitions"] = int(partitions)
        if replication_factor is not None:
            after["replication_factor"] = int(replication_factor)
        plan["after"] = after
        return plan

    current_partitions = int(actual["partitions"])
    current_rf = int(actual["replication_factor"])
    current_configs = actual.get("configs") or {}
    refusals = []
    if partitions is not None and int(partitions) < current_partitions:
        refusals.append(
            "topic %s has %d partitions and Kafka cannot remove partitions: refusing to lower them to %d"
            % (name, current_partitions, int(partitions))
        )
    if replication_factor is not None and int(replication_factor) != current_rf:
        refusals.append(
            "topic %s has replication factor %d, %d was asked: changing the replication factor of an "
            "existing topic is not supported by this module (reassign its partitions with "
            "kafka-reassign-partitions.sh)" % (name, current_rf, int(replication_factor))
        )
    unknown = [key for key in keys if current_configs and key not in current_configs]
    if unknown:
        refusals.append(
            "topic %s: the brokers know no topic config named %s" % (name, ", ".join(unknown))
        )
    if refusals:
        raise TopicChangeRefused("; ".join(refusals))

    changes = []
    if partitions is not None and int(partitions) > current_partitions:
        plan["partitions"] = int(partitions)
        changes.append("partitions of %s: %d -> %d" % (name, current_partitions, int(partitions)))
    for key in keys:
        current = config_value(current_configs.get(key))
        if current != desired_config[key]:
            plan["config"][key] = desired_config[key]
            changes.append("config %s of %s: %s -> %s" % (key, name, current, desired_config[key]))
    plan["changes"] = changes
    plan["changed"] = bool(changes)
    after = topic_view(name, actual, keys)
    if plan["partitions"] is not None:
        after["partitions"] = plan["partitions"]
    after["configs"].update(plan["config"])
    plan["after"] = after
    return plan


def legacy_alter_set(
    dynamic_configs: Mapping[str, Any], config: Optional[Mapping[str, Any]]
) -> Dict[str, Optional[str]]:
    """The full config set to send with the legacy AlterConfigs request (brokers before 2.3).

    AlterConfigs replaces a topic's whole set of overrides: a dynamic config it does not
    name goes back to its default. So the request carries the topic's current dynamic
    (non-default) configs, with the explicitly set ones on top. Dynamic configs without a
    value (sensitive ones the brokers do not describe) cannot be carried over and are left out.
    """
    full = {key: value for key, value in normalize_config(dynamic_configs).items() if value is not None}
    full.update(normalize_config(config))
    return full
