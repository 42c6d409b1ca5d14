"""Unit tests of plugins/module_utils/kafka_topic_diff.py: what the kafka_topic module must change, no broker."""

from __future__ import annotations

import pytest

from ansible_collections.customer_streaming.pipeline.plugins.module_utils import kafka_topic_diff

topic_diff = kafka_topic_diff.topic_diff
TopicChangeRefused = kafka_topic_diff.TopicChangeRefused

WEEK_MS = 7 * 24 * 3600 * 1000


def existing(partitions=3, replication_factor=1, **configs):
    """A topic as the module reads it: every config the brokers describe, as strings."""
    described = {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "1",
                 "segment.bytes": "1073741824"}
    described.update(configs)
    return {"partitions": partitions, "replication_factor": replication_factor, "configs": described}


def test_missing_topic_is_created_with_every_setting():
    plan = topic_diff("customers-raw", "present", None, partitions=3, replication_factor=1,
                      config={"retention.ms": WEEK_MS, "cleanup.policy": "delete"})
    assert plan["changed"] is True
    assert plan["create"] == {"partitions": 3, "replication_factor": 1,
                              "config": {"retention.ms": "604800000", "cleanup.policy": "delete"}}
    assert plan["delete"] is False
    assert plan["partitions"] is None
    assert plan["before"] == {"name": "customers-raw", "state": "absent"}
    assert plan["after"] == {"name": "customers-raw", "state": "present", "partitions": 3, "replication_factor": 1,
                             "configs": {"cleanup.policy": "delete", "retention.ms": "604800000"}}
    assert plan["changes"] == ["create topic customers-raw with 3 partitions, replication factor 1, "
                               "cleanup.policy=delete, retention.ms=604800000"]


def test_missing_topic_without_numbers_uses_the_brokers_defaults():
    plan = topic_diff("t", "present", None)
    assert plan["create"] == {"partitions": -1, "replication_factor": -1, "config": {}}
    assert plan["after"] == {"name": "t", "state": "present", "configs": {}}


def test_matching_topic_is_a_no_op():
    plan = topic_diff("customers-raw", "present", existing(), partitions=3, replication_factor=1,
                      config={"retention.ms": "604800000", "cleanup.policy": "delete"})
    assert plan["changed"] is False
    assert plan["create"] is None
    assert plan["partitions"] is None
    assert plan["config"] == {}
    assert plan["changes"] == []
    assert plan["before"] == plan["after"]
    assert plan["after"] == {"name": "customers-raw", "state": "present", "partitions": 3, "replication_factor": 1,
                             "configs": {"cleanup.policy": "delete", "retention.ms": "604800000"}}


def test_omitted_numbers_leave_the_topic_alone():
    plan = topic_diff("t", "present", existing(partitions=5, replication_factor=3))
    assert plan["changed"] is False
    assert plan["after"]["partitions"] == 5
    assert plan["after"]["replication_factor"] == 3


def test_more_partitions_are_added():
    plan = topic_diff("customers-raw", "present", existing(partitions=3), partitions=4, replication_factor=1)
    assert plan["changed"] is True
    assert plan["partitions"] == 4
    assert plan["config"] == {}
    assert plan["changes"] == ["partitions of customers-raw: 3 -> 4"]
    assert plan["before"]["partitions"] == 3
    assert plan["after"]["partitions"] == 4


def test_fewer_partitions_are_refused_naming_topic_and_both_numbers():
    with pytest.raises(TopicChangeRefused) as refused:
        topic_diff("customers-raw", "present", existing(partitions=4), partitions=3)
    message = str(refused.value)
    assert "customers-raw" in message
    assert "has 4 partitions" in message
    assert "to 3" in message
    assert "cannot remove partitions" in message


def test_another_replication_factor_is_refused():
    with pytest.raises(TopicChangeRefused) as refused:
        topic_diff("customers-raw", "present", existing(replication_factor=1), replication_factor=3)
    message = str(refused.value)
    assert "customers-raw has replication factor 1, 3 was asked" in message
    assert "not supported" in message


def test_both_refusals_are_reported_together():
    with pytest.raises(TopicChangeRefused) as refused:
        topic_diff("t", "present", existing(partitions=4, replication_factor=1), partitions=2, replication_factor=3)
    assert "refusing to lower them to 2" in str(refused.value)
    assert "replication factor 1, 3 was asked" in str(refused.value)


@pytest.mark.parametrize("partitions, replication_factor", [(0, None), (None, 0), (-1, None)])
def test_numbers_below_one_are_refused(partitions, replication_factor):
    with pytest.raises(TopicChangeRefused):
        topic_diff("t", "present", None, partitions=partitions, replication_factor=replication_factor)


def test_config_drift_alters_only_the_differing_named_configs():
    actual = existing(**{"retention.ms": "86400000", "segment.bytes": "1048576"})
    plan = topic_diff("customers-raw", "present", actual, partitions=3,
                      config={"retention.ms": WEEK_MS, "cleanup.policy": "delete"})
    assert plan["changed"] is True
    assert plan["config"] == {"retention.ms": "604800000"}  # segment.bytes was not named: left alone
    assert plan["partitions"] is None
    assert plan["changes"] == ["config retention.ms of customers-raw: 86400000 -> 604800000"]
    assert plan["before"]["configs"] == {"cleanup.policy": "delete", "retention.ms": "86400000"}
    assert plan["after"]["configs"] == {"cleanup.policy": "delete", "retention.ms": "604800000"}


def test_partitions_and_configs_change_together():
    plan = topic_diff("t", "present", existing(partitions=3, **{"cleanup.policy": "delete"}), partitions=6,
                      config={"cleanup.policy": "compact"})
    assert plan["partitions"] == 6
    assert plan["config"] == {"cleanup.policy": "compact"}
    assert len(plan["changes"]) == 2


@pytest.mark.parametrize("given, described", [
    (604800000, "604800000"),
    ("604800000", "604800000"),
    (1, "1"),
    (True, "true"),
    (False, "false"),
    (0.5, "0.5"),
    (2.0, "2"),
    (["compact", "delete"], "compact,delete"),
])
def test_config_given_as_int_bool_or_list_equals_the_brokers_string(given, described):
    key = "some.config"
    plan = topic_diff("t", "present", existing(**{key: described}), config={key: given})
    assert plan["changed"] is False, plan["changes"]
    assert plan["config"] == {}


def test_unknown_config_is_refused_for_an_existing_topic():
    with pytest.raises(TopicChangeRefused) as refused:
        topic_diff("t", "present", existing(), config={"retention.msec": 1})
    assert "no topic config named retention.msec" in str(refused.value)


def test_config_without_a_value_is_refused():
    with pytest.raises(TopicChangeRefused) as refused:
        topic_diff("t", "present", existing(), config={"retention.ms": None})
    assert "config retention.ms has no value" in str(refused.value)


def test_absent_topic_that_exists_is_deleted():
    plan = topic_diff("old", "absent", existing(partitions=2), partitions=9, config={"retention.ms": 1})
    assert plan["changed"] is True
    assert plan["delete"] is True
    assert plan["create"] is None
    assert plan["changes"] == ["delete topic old"]
    assert plan["before"]["state"] == "present"
    assert plan["before"]["partitions"] == 2
    assert plan["after"] == {"name": "old", "state": "absent"}


def test_absent_topic_that_is_missing_is_a_no_op():
    plan = topic_diff("old", "absent", None)
    assert plan["changed"] is False
    assert plan["delete"] is False
    assert plan["before"] == plan["after"] == {"name": "old", "state": "absent"}


def test_unknown_state_is_an_error():
    with pytest.raises(ValueError):
        topic_diff("t", "gone", None)


def test_legacy_alter_set_carries_the_other_dynamic_configs_over():
    dynamic = {"retention.ms": "86400000", "segment.bytes": "1048576", "secret.thing": None}
    full = kafka_topic_diff.legacy_alter_set(dynamic, {"retention.ms": WEEK_MS, "cleanup.policy": "delete"})
    assert full == {"retention.ms": "604800000", "segment.bytes": "1048576", "cleanup.policy": "delete"}


@pytest.mark.parametrize("counts, expected", [
    ([], 0),
    ([1, 1, 1], 1),
    ([3, 3, 4], 3),  # one partition mid-reassignment lists an extra replica
    ([2, 3], 2),
])
def test_replication_factor_is_the_most_common_replica_count(counts, expected):
    assert kafka_topic_diff.replication_factor_of(counts) == expected
