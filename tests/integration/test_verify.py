"""verify.yml on the deployed sandbox pipeline: exact reconciliation, and broken states caught.

Runs last among the integration tests (file order). It hides a part file of a dataset on
purpose and puts it back, leaving the pipeline whole; its last test runs the pipeline over the
broker's SASL_SSL listener on Delta tables, and puts the default deployment back.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import pytest
from hostile_corpus import iter_corpus

from conftest import STATE, node_stdout, on_node, run
from customer_pipeline.contract.sample_data import generate_bytes

pytestmark = pytest.mark.sandbox

# A new key on every run: the producer ingests an object (key and ETag) once.
SECOND = "incoming/customers-%s.csv" % uuid.uuid4().hex[:8]
# A key written twice: CONTRACT.md makes its second content a new object.
OVERWRITTEN = "incoming/overwritten-%s.csv" % uuid.uuid4().hex[:8]
CORPUS_PREFIX = "incoming/hostile-%s/" % uuid.uuid4().hex[:8]


def verify(tmp_path, *extra: str, check: bool = True):
    report = tmp_path / "verify.json"
    result = run(["ansible-playbook", "playbooks/verify.yml", "-e", "verify_report=%s" % report, *extra],
                 timeout=900, check=check)
    return result, (json.loads(report.read_text()) if report.exists() else None)


def wait_for_outcomes(uris, timeout: float = 300) -> None:
    """Until the producer has logged each object's end: finished, rejected or skipped."""
    deadline = time.monotonic() + timeout
    while True:
        log = node_stdout("journalctl -u customer-producer -o cat --no-pager --since -30min")
        waiting = [uri for uri in uris
                   if not any("%s %s" % (verb, uri) in log for verb in ("finished", "rejecting", "skipping"))]
        if not waiting:
            return
        assert time.monotonic() < deadline, "the producer has not ended %d object(s), e.g. %s" % (
            len(waiting), waiting[:3])
        time.sleep(2)


def wait_for_finishes(uri: str, times: int, timeout: float = 300) -> None:
    """Until the producer has finished `uri` `times` times (each time a version of it)."""
    deadline = time.monotonic() + timeout
    while node_stdout("journalctl -u customer-producer -o cat --no-pager --since -30min").count(
            "finished %s:" % uri) < times:
        assert time.monotonic() < deadline, "the producer did not finish %s %d times" % (uri, times)
        time.sleep(2)


def classes(data: bytes) -> tuple:
    from customer_pipeline.contract.counts import count_object

    counts = count_object(io.BytesIO(data))
    return counts.usa, counts.alerts


def test_verify_reconciles_the_sample_the_hostile_corpus_and_an_object_dropped_while_running(tmp_path, s3):
    """The hostile corpus (tests/hostile_corpus) goes through the deployed pipeline with the
    sample: every object ends as its expectation says, and verify.yml reconciles them all. A key
    overwritten after it was ingested is reconciled as its new content, the old content's rows
    counted apart (earlier versions)."""
    run(["ansible-playbook", "playbooks/deploy.yml"], timeout=900)
    old_content, new_content = generate_bytes(300, 21), generate_bytes(200, 22)
    s3.put_object(Bucket="customers", Key=OVERWRITTEN, Body=old_content)
    wait_for_finishes("s3://customers/" + OVERWRITTEN, 1)
    s3.put_object(Bucket="customers", Key=OVERWRITTEN, Body=new_content)
    corpus = list(iter_corpus(prefix=CORPUS_PREFIX))
    for case in corpus:
        s3.put_object(Bucket="customers", Key=case.key, Body=case.data)
    s3.put_object(Bucket="customers", Key=SECOND, Body=generate_bytes(500, 7))
    listed = [case for case in corpus if case.expectation.outcome != "ignored"]
    wait_for_outcomes(["s3://customers/" + SECOND] + ["s3://customers/" + case.key for case in listed])
    wait_for_finishes("s3://customers/" + OVERWRITTEN, 2)
    result, report = verify(tmp_path, "-e", "verify_wait=240")
    assert report["ok"] is True, result.stdout[-3000:]
    assert "verdict: OK" in result.stdout
    # Each corpus object as its expectation says: its state, and its rows per class in HDFS.
    objects = {item["uri"]: item for item in report["objects"]}
    states = {"rows": "done", "rejected": "rejected", "skipped": "empty"}
    for case in corpus:
        uri = "s3://customers/" + case.key
        if case.expectation.outcome == "ignored":
            assert uri not in objects, uri
            continue
        item = objects[uri]
        assert item["state"] == states[case.expectation.outcome], (uri, item)
        if case.expectation.outcome == "rows":
            counts = case.expectation.counts
            assert (item["rows"], item["usa"], item["alerts"], item["out_of_scope"], item["duplicates"]) == (
                counts["total"], counts["usa"], counts["alerts"], counts["out_of_scope"], 0), (uri, item)
    # Neither service crashed nor stalled on it: both active, and the producer went on to SECOND.
    assert node_stdout("systemctl is-active customer-producer customer-stream").split() == ["active", "active"]
    row = next(item for item in report["objects"] if item["uri"] == "s3://customers/incoming/customers.csv")
    assert (row["rows"], row["usa"], row["alerts"], row["out_of_scope"], row["duplicates"]) == \
        (10_000, 6015, 1948, 2037, 0)
    second = next(item for item in report["objects"] if item["uri"] == "s3://customers/" + SECOND)
    assert second["rows"] == 500 and second["duplicates"] == 0
    assert second["usa"] == second["usa_expected"] and second["alerts"] == second["alerts_expected"]
    # The overwritten key: its new content exactly, and every usa and alerts row of the old one apart.
    overwritten = next(item for item in report["objects"] if item["uri"] == "s3://customers/" + OVERWRITTEN)
    assert (overwritten["rows"], overwritten["duplicates"], overwritten["earlier"]) == (200, 0, sum(classes(old_content)))
    assert (overwritten["usa"], overwritten["alerts"]) == classes(new_content), overwritten
    # Keys written once (this run's own) have none.
    fresh = {"s3://customers/" + key for key in [SECOND] + [case.key for case in listed]}
    assert [item["uri"] for item in report["objects"] if item["uri"] in fresh and item.get("earlier")] == []


def test_a_stopped_service_and_rows_removed_from_a_dataset_are_named(tmp_path):
    """One verify.yml run finds both: the stopped producer by name, and the rows of the part
    file moved out of the USA dataset by object and class. Both are put back after (each step
    checked), so the sandbox is left whole for make demo and later runs; the test before this
    one showed verify.yml reconciling it, and the next one starts with a reset."""
    part = node_stdout("hdfs dfs -ls -C -R /user/maria_dev/customers_usa | grep '/ingest_date=.*/part-.*parquet$' | head -n 1").strip()
    assert part
    aside = "/tmp/verify-test-%s.parquet" % uuid.uuid4().hex[:8]
    on_node("systemctl stop customer-producer")
    try:
        on_node("HADOOP_USER_NAME=maria_dev hdfs dfs -mv %s %s" % (part, aside))
        try:
            result, report = verify(tmp_path, check=False)
        finally:
            on_node("HADOOP_USER_NAME=maria_dev hdfs dfs -mv %s %s" % (aside, part))
    finally:
        on_node("systemctl start customer-producer")
    assert result.returncode != 0
    assert "service customer-producer is inactive, not active" in report["problems"], report["problems"]
    assert any(problem.startswith("s3://customers/") and "class usa has" in problem and "missing" in problem
               for problem in report["problems"]), report["problems"]
    assert node_stdout("systemctl is-active customer-producer customer-stream").split() == ["active", "active"]


def test_each_service_runs_as_its_own_user_and_no_dataset_is_world_writable():
    """Least privilege on the node: the pipeline's and the cluster's services each run as a
    system user of their own (none as root), and nothing the job wrote to HDFS (datasets,
    checkpoint) is writable by other users."""
    units = ["customer-producer", "customer-stream", "kafka", "hdfs-namenode", "hdfs-datanode", "seaweedfs"]
    users = node_stdout("systemctl show -p User --value %s" % " ".join(units)).split()
    assert len(users) == len(units) and "root" not in users and len(set(users)) >= 4, dict(zip(units, users))
    assert users[0] != users[1], "the producer and the job share a user"
    listing = node_stdout("hdfs dfs -ls -R /user/maria_dev")
    entries = [line.split() for line in listing.splitlines() if line[:1] in ("d", "-")]
    assert len(entries) > 10, listing[:2000]
    writable = [entry[-1] for entry in entries if entry[0][8] == "w"]
    assert writable == [], writable[:10]


# Every Kafka client over the sandbox broker's SASL_SSL listener (SCRAM-SHA-512, the sandbox's CA).
SASL_SSL = ("-e", "@sandbox/kafka-sasl-ssl.yml")
# Where a secret must never be on the node; {patterns} is a root-only file of the secrets, so no
# command line here holds one, and the commands print where a secret is, never the secret.
LEAKS = {
    "unit files": "grep -rlF -f {patterns} /etc/systemd /run/systemd/system /lib/systemd/system || true",
    "process arguments": "grep -laF -f {patterns} /proc/[0-9]*/cmdline 2>/dev/null || true",
    "the journal": "journalctl -o cat --no-pager | grep -cF -f {patterns} || true",
    "files other users may read": (
        "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -perm -o=r -size -100M"
        " -print0 | xargs -0 grep -lF -f {patterns} 2>/dev/null || true"),
}


def sandbox_secret(name: str) -> str:
    return (STATE / "secrets" / name).read_text().split()[0]


def hdfs_has(path: str) -> bool:
    return on_node("HADOOP_USER_NAME=maria_dev hdfs dfs -test -e %s" % path, check=False).returncode == 0


def test_a_sasl_ssl_delta_deployment_reconciles_leaks_no_secret_and_resets(tmp_path, s3):
    """The two settings a user changes most between deployments, in one deployment (each
    deployment costs two starts of the job on the node): every Kafka client on the broker's
    SASL_SSL listener, and output_format delta, through the three playbooks.

    reset.yml clears the Parquet datasets and recreates the topics; deploy.yml with SASL_SSL and
    delta starts the job on Delta tables; verify.yml over SASL_SSL reconciles them exactly
    (reading each table's committed version). The producer reads a prefix of its own holding a
    copy of the sample, so the job writes 10,000 rows to Delta, not everything the bucket holds
    by now. Both services' clients talk to the SASL_SSL listener only; the SCRAM password and the
    S3 secret keys (the pipeline's and the store admin's) are in no unit file, process argument,
    journal line, world-readable file of the node, nor in Ansible's output. reset.yml then clears
    the tables with their logs and the checkpoint. The default deployment is put back after,
    for later runs and make demo (the topics recreated again, the producer ingests its prefix
    again)."""
    secrets = [sandbox_secret(name) for name in ("kafka_scram_pipeline", "s3_reader_secret_access_key",
                                                 "s3_secret_access_key")]
    usa, alerts = "/user/maria_dev/customers_usa", "/user/maria_dev/customers_alerts"
    checkpoint = "/user/maria_dev/checkpoints/customer-stream"
    prefix = "delta-%s/" % uuid.uuid4().hex[:8]
    s3.copy_object(Bucket="customers", Key=prefix + "customers.csv",
                   CopySource={"Bucket": "customers", "Key": "incoming/customers.csv"})
    reset_topics = ["ansible-playbook", "playbooks/reset.yml", "-e", "reset_confirm=yes", "-e", "reset_topics=yes"]
    try:
        run(reset_topics, timeout=900)
        deployed = run(["ansible-playbook", "playbooks/deploy.yml", *SASL_SSL, "-e", "customer_stream_output_format=delta",
                        "-e", "customer_producer_s3_prefix=" + prefix], timeout=900)
        assert "security.protocol = SASL_SSL" in node_stdout("cat /etc/customer-pipeline/stream.ini")
        assert "security_protocol = SASL_SSL" in node_stdout("cat /etc/customer-pipeline/producer.ini")
        result, report = verify(tmp_path, "-e", "verify_wait=300", *SASL_SSL)
        assert report["ok"] is True, result.stdout[-3000:]
        assert [item["uri"] for item in report["objects"]] == ["s3://customers/%scustomers.csv" % prefix]
        row = report["objects"][0]
        assert (row["rows"], row["usa"], row["alerts"], row["out_of_scope"], row["duplicates"]) == \
            (10_000, 6015, 1948, 2037, 0)
        # Both services' clients talk to the SASL_SSL listener (9094), none to the plain one (9092)
        # (the broker's own connections to 9092 are the broker's). The main processes are the
        # producer's Python and the job's JVM: restart-backoff and spark-submit exec them.
        sockets = node_stdout("ss -tnpH state established '( dport = :9092 or dport = :9094 )'")
        for service in ("customer-producer", "customer-stream"):
            pid = node_stdout("systemctl show -p MainPID --value %s" % service).strip()
            ports = {line.split()[3].rsplit(":", 1)[1] for line in sockets.splitlines() if "pid=%s," % pid in line}
            assert ports == {"9094"}, (service, pid, sockets)
        for output in (deployed.stdout + deployed.stderr, result.stdout + result.stderr):
            assert not [index for index, value in enumerate(secrets) if value in output], "a secret in Ansible's output"
        patterns = "/root/.leak-patterns"
        on_node("umask 077; cat > %s" % patterns, input="\n".join(secrets) + "\n")
        try:
            found = {where: node_stdout(command.format(patterns=patterns)).strip()
                     for where, command in LEAKS.items()}
        finally:
            on_node("rm -f %s" % patterns)
        assert found == {"unit files": "", "process arguments": "", "the journal": "0",
                         "files other users may read": ""}, found
        # Both datasets are Delta tables: a transaction log, no day folders of the plain format.
        for path in (usa, alerts):
            assert hdfs_has(path + "/_delta_log"), path
            assert "ingest_date=" not in node_stdout("hdfs dfs -ls -C %s" % path), path
        # reset.yml on the Delta deployment: services stopped, tables (logs too) and checkpoint gone.
        result = run(["ansible-playbook", "playbooks/reset.yml", "-e", "reset_confirm=yes"], timeout=900)
        assert node_stdout("systemctl is-active customer-producer customer-stream || true").split() == \
            ["inactive", "inactive"]
        assert not any(hdfs_has(path) for path in (usa, alerts, checkpoint)), result.stdout[-3000:]
    finally:
        # customers-raw holds the copy's rows: recreated, so that only the default prefix's come back.
        run(reset_topics, timeout=900)
        # The SASL_SSL, format and prefix settings are in the two services' configuration alone.
        run(["ansible-playbook", "playbooks/deploy.yml", "--tags", "customer_producer,customer_stream"], timeout=900)
        s3.delete_object(Bucket="customers", Key=prefix + "customers.csv")
    assert node_stdout("systemctl is-active customer-producer customer-stream").split() == ["active", "active"]
    stream_ini = node_stdout("cat /etc/customer-pipeline/stream.ini")
    assert "output_format = parquet" in stream_ini and "security.protocol" not in stream_ini, stream_ini
    producer_ini = node_stdout("cat /etc/customer-pipeline/producer.ini")
    assert "prefix = incoming/" in producer_ini and "security_protocol = PLAINTEXT" in producer_ini, producer_ini
