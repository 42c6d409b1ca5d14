"""The filter pipeline_reset_targets refuses every path a reset must not delete."""

from __future__ import annotations

import pytest

pytest.importorskip("ansible.errors")

from ansible_collections.customer_streaming.pipeline.plugins.filter.pipeline_reset_targets import (  # noqa: E402
    FilterModule,
    reset_targets,
)


def test_path_filter_refuses_what_it_must():
    prefixes = ["/user/maria_dev/", "file:/var/lib/customer-stream/"]
    problems = {value: reset_targets({"v": value}, prefixes)[0]["problem"] for value in (
        "", "/", "/user/maria_dev", "/user/maria_dev/", "/user/maria_dev/../x", "/user/maria_dev/*",
        "/user/other/x", "user/maria_dev/x", "s3a://bucket/user/maria_dev/x", "file:/user/maria_dev/x")}
    assert all(problems.values()), problems
    fine = reset_targets({"a": "/user/maria_dev/x", "b": "hdfs://nn:8020/user/maria_dev/y/",
                          "c": "file:///var/lib/customer-stream/checkpoint"}, prefixes)
    assert [(t["filesystem"], t["uri"], t["problem"]) for t in fine] == [
        ("hdfs", "/user/maria_dev/x", ""), ("hdfs", "hdfs://nn:8020/user/maria_dev/y", ""),
        ("local", "/var/lib/customer-stream/checkpoint", "")]


def test_filter_is_exported_under_its_documented_name():
    assert FilterModule().filters()["pipeline_reset_targets"] is reset_targets


def test_filter_refuses_a_mapping_that_is_not_a_dict():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        reset_targets(["/user/maria_dev/x"], ["/user/maria_dev/"])
