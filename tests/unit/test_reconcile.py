"""verify.yml's verdict, from gathered facts: counts per object and class, duplicates, lag."""

from __future__ import annotations

import copy
import json

from customer_pipeline.verify.reconcile import main, reconcile, table

URI = "s3://customers/incoming/a.csv"
FACTS = {
    "max_restarts": 0,
    "services": [{"name": "customer-producer", "show": ["ActiveState=active", "NRestarts=0"]},
                 {"name": "customer-stream", "show": ["NRestarts=0", "ActiveState=active"]}],
    "topics": [{"name": "customers-raw", "changes": []}],
    "lag": {"topic": "customers-raw", "lag": 0, "partitions": {"0": {"end": 5, "committed": 5, "lag": 0}}},
    "expected": {"objects": [
        {"uri": URI, "etag": '"e"', "state": "done", "records": 10,
         "expected": {"usa": 6, "alerts": 3, "out_of_scope": 1, "rows": 10}},
        {"uri": "s3://customers/incoming/empty.csv", "etag": '"x"', "state": "empty", "records": 0},
    ]},
    "written": {"usa": {URI: {"rows": 6, "duplicates": 0}}, "alerts": {URI: {"rows": 3, "duplicates": 0}}},
}


def test_a_complete_pipeline_is_ok():
    report = reconcile(copy.deepcopy(FACTS))
    assert report["ok"] is True and report["problems"] == []
    assert report["totals"] == {"rows": 10, "usa": 6, "alerts": 3, "out_of_scope": 1, "duplicates": 0,
                                "earlier": 0}
    text = table(report)
    assert "verdict: OK" in text
    assert URI in text and "6/6" in text and "3/3" in text


def test_missing_rows_duplicates_and_lag_are_named_by_object_and_class():
    facts = copy.deepcopy(FACTS)
    facts["written"]["usa"][URI] = {"rows": 5, "duplicates": 1}
    facts["lag"] = {"topic": "customers-raw", "lag": 7, "partitions": {"0": {"end": 12, "committed": 5, "lag": 7}}}
    report = reconcile(facts)
    assert report["ok"] is False
    assert report["problems"] == [
        "the Spark job is 7 message(s) behind customers-raw (partition 0: 7)",
        URI + ": class usa has 4 row(s) in HDFS, expected 6 (2 missing)",
        URI + ": class usa holds 1 duplicated record_id(s)",
    ]


def test_rows_of_an_overwritten_objects_earlier_version_are_counted_apart_and_checked_for_duplicates():
    """CONTRACT.md: a key overwritten with new content is a new object. The rows the old version
    gave (all of them, or those read before it changed mid-read) stay in HDFS under the same
    uri: the current version reconciles exactly, the earlier rows are counted apart."""
    facts = copy.deepcopy(FACTS)
    facts["written"]["usa"][URI] = {"rows": 6, "duplicates": 0, "earlier_rows": 40, "earlier_duplicates": 0}
    facts["written"]["alerts"][URI] = {"rows": 3, "duplicates": 0, "earlier_rows": 2, "earlier_duplicates": 0}
    report = reconcile(facts)
    assert report["ok"] is True, report["problems"]
    row = next(item for item in report["objects"] if item["uri"] == URI)
    assert (row["usa"], row["alerts"], row["earlier"], row["duplicates"]) == (6, 3, 42, 0)
    assert report["totals"]["earlier"] == 42
    assert "earlier versions" in table(report).splitlines()[0]
    facts["written"]["usa"][URI]["earlier_duplicates"] = 2
    report = reconcile(facts)
    assert report["problems"] == [URI + ": class usa holds 2 duplicated record_id(s) of earlier versions of the object"]
    assert next(item for item in report["objects"] if item["uri"] == URI)["earlier"] == 40


def test_a_stopped_or_flapping_service_and_topic_drift_are_reported():
    facts = copy.deepcopy(FACTS)
    facts["services"][0]["show"] = ["ActiveState=inactive", "NRestarts=0"]
    facts["services"][1]["show"] = ["ActiveState=active", "NRestarts=3"]
    facts["topics"] = [{"name": "customers-usa", "changes": ["partitions 3 -> 4"]}]
    problems = reconcile(facts)["problems"]
    assert problems[0] == "service customer-producer is inactive, not active"
    assert problems[1].startswith("service customer-stream restarted 3 time(s)")
    assert problems[2] == "topic customers-usa differs from the inventory: partitions 3 -> 4"


def test_rows_from_an_unknown_object_are_unexpected():
    facts = copy.deepcopy(FACTS)
    facts["written"]["alerts"]["s3://customers/other.csv"] = {"rows": 2, "duplicates": 0}
    assert reconcile(facts)["problems"] == [
        "s3://customers/other.csv: class alerts has 2 row(s) in HDFS from an object the producer does not know"]


def test_the_job_on_yarn_must_run_as_exactly_one_application():
    one = {"name": "customer-stream", "apps": [{"id": "application_1_0001", "state": "RUNNING"}]}
    two = {"name": "customer-stream", "apps": [{"id": "application_1_0001", "state": "RUNNING"},
                                                {"id": "application_1_0002", "state": "ACCEPTED"}]}
    waiting = {"name": "customer-stream", "apps": [{"id": "application_1_0003", "state": "ACCEPTED"}]}
    assert reconcile({"yarn": one})["ok"] is True
    assert "YARN: application_1_0001 RUNNING (customer-stream)" in table(reconcile({"yarn": one}))
    assert reconcile({"yarn": two})["problems"] == [
        "2 YARN applications named customer-stream are unfinished (application_1_0001 RUNNING, "
        "application_1_0002 ACCEPTED): only one may run"]
    assert reconcile({"yarn": waiting})["problems"] == [
        "the job's YARN application (customer-stream) is not RUNNING: application_1_0003 is ACCEPTED"]
    assert reconcile({"yarn": {"name": "customer-stream", "apps": []}})["problems"] == [
        "the job's YARN application (customer-stream) is not RUNNING: none is unfinished"]
    # A job with a local master has no yarn facts and no YARN line.
    assert "YARN" not in table(reconcile({}))


def test_a_restart_count_systemd_does_not_keep_is_unknown_not_0():
    # systemd before 235 (CentOS 7's 219) has no NRestarts: `systemctl show` leaves it out.
    facts = copy.deepcopy(FACTS)
    facts["services"][0]["show"] = ["ActiveState=active"]
    facts["services"][1]["show"] = ["ActiveState=active", "NRestarts="]
    report = reconcile(facts)
    assert [s["restarts"] for s in report["services"]] == [None, None]
    # Nothing to hold against the services: the flapping check neither fails nor claims 0.
    assert report["ok"] is True and report["problems"] == []
    text = table(report)
    assert "customer-producer active (restarts unknown), customer-stream active (restarts unknown)" in text
    assert "0 restarts" not in text
    assert "restarts unknown: systemd before 235 does not count them (NRestarts)" in text
    assert "verdict: OK" in text


def test_a_known_restart_count_is_shown_and_checked():
    facts = copy.deepcopy(FACTS)
    facts["max_restarts"] = 3
    facts["services"][0]["show"] = ["ActiveState=active", "NRestarts=3"]
    facts["services"][1]["show"] = ["ActiveState=active", "NRestarts=4"]
    report = reconcile(facts)
    assert [s["restarts"] for s in report["services"]] == [3, 4]
    assert report["problems"] == ["service customer-stream restarted 4 time(s) since it was started: it is flapping "
                                  "(journalctl -u customer-stream)"]
    text = table(report)
    assert "customer-producer active (3 restarts), customer-stream active (4 restarts)" in text
    assert "unknown: systemd before 235" not in text
    # 0 is a count like any other, not unknown.
    facts["services"][1]["show"] = ["ActiveState=active", "NRestarts=0"]
    assert [s["restarts"] for s in reconcile(facts)["services"]] == [3, 0]


def test_one_node_with_an_old_systemd_among_new_ones(tmp_path, capsys):
    facts = copy.deepcopy(FACTS)
    facts["max_restarts"] = 1
    facts["services"] = [{"name": "customer-producer on centos7", "show": ["ActiveState=active"]},
                         {"name": "customer-producer on debian12", "show": ["ActiveState=active", "NRestarts=2"]}]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    report_path = tmp_path / "report.json"
    assert main(["--input", str(path), "--report", str(report_path)]) == 1
    out = capsys.readouterr().out
    assert "customer-producer on centos7 active (restarts unknown)" in out
    assert "customer-producer on debian12 active (2 restarts)" in out
    assert "  - service customer-producer on debian12 restarted 2 time(s)" in out
    assert "centos7 restarted" not in out
    # The JSON report holds null, JSON's unknown, for the count systemd does not keep.
    services = json.loads(report_path.read_text())["services"]
    assert [s["restarts"] for s in services] == [None, 2]
