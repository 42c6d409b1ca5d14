"""deploy.yml on the sandbox: the user's own command takes the node to a running pipeline.

Runs first among the integration tests that need the pipeline (file order; test_bench_smoke.py
needs none and runs before it): from a node that `make sandbox`
left with nothing deployed, or from an earlier deploy (then it is a no-op).
"""

from __future__ import annotations

import re
import sys
import time
import uuid

import pytest

from conftest import ROOT, STATE, bench_table, node_stdout, play_recap, run
from customer_pipeline.contract.sample_data import generate_bytes

pytestmark = pytest.mark.sandbox


def deploy(*extra: str) -> dict:
    result = run(["ansible-playbook", "playbooks/deploy.yml", *extra], timeout=900)
    recap = play_recap(result.stdout)
    assert recap["sandbox-node"]["failed"] == 0, result.stdout[-3000:]
    return {"recap": recap["sandbox-node"], "stdout": result.stdout}


def main_pid(unit: str) -> str:
    return node_stdout("systemctl show -p MainPID --value %s" % unit).strip()


def parquet_files(path: str) -> int:
    """Part files in the dataset's date partitions (`<path>/ingest_date=<day>/part-...`)."""
    out = node_stdout("hdfs dfs -ls -C -R %s 2>/dev/null | grep -c '^%s/ingest_date=[0-9-]*/part-.*parquet$' || true"
                      % (path, path))
    return int(out.strip() or 0)


def test_deploy_runs_both_services_and_fills_both_datasets():
    deploy()
    ended = time.monotonic()
    assert node_stdout("systemctl is-active customer-producer customer-stream").split() == ["active", "active"]
    # Enabled: they come back when the node boots.
    assert node_stdout("systemctl is-enabled customer-producer customer-stream").split() == ["enabled", "enabled"]
    # Rows of files/customers.csv reach both datasets. The job logs one journal line per
    # micro-batch once the batch has ended (its files can show up in HDFS well before; the first
    # batch after a cold deploy took 55 s in one CI run), so the line is what is waited for: a
    # journalctl every 2 s, not an hdfs listing (a JVM each) competing with the job's first
    # batch for the two cores. The wait is a guard against a hang, not a speed goal: how long it
    # takes is printed here and measured by bench/, never asserted. test_verify.py reconciles
    # the rows exactly.
    batch = re.compile(r"batch \d+: \d+ rows in, usa (\d+), alerts (\d+), out_of_scope \d+, unreadable 0, \d+ ms")
    while True:
        log = node_stdout("journalctl -u customer-stream --no-pager -o cat | grep -E 'batch [0-9]+: [1-9]' || true")
        # usa and alerts rows in the batches ended so far (a first small batch may hold one class only).
        written = [sum(int(found[column]) for found in batch.findall(log)) for column in (0, 1)]
        if all(written) or time.monotonic() - ended > 600:
            break
        time.sleep(2)
    print("batches with usa and alerts rows ended %.0f s after deploy.yml ended" % (time.monotonic() - ended))
    assert all(written), log[-3000:]
    assert parquet_files("/user/maria_dev/customers_usa") > 0
    assert parquet_files("/user/maria_dev/customers_alerts") > 0


def test_the_producer_runs_the_client_auto_resolves_to_on_the_node():
    """customer_producer_client auto: the sandbox's Debian 12 (glibc 2.36) loads confluent-kafka."""
    glibc = node_stdout("/usr/bin/python3 -c 'import platform; print(platform.libc_ver()[1])'").strip()
    assert tuple(int(part) for part in glibc.split(".")[:2]) >= (2, 28), glibc
    assert "client = confluent-kafka" in node_stdout("cat /etc/customer-pipeline/producer.ini").splitlines()
    assert node_stdout("/opt/customer-pipeline/producer/venv/bin/python -c "
                       "'import confluent_kafka; print(confluent_kafka.version())'").strip() == "2.16.1"
    started = node_stdout("journalctl -u customer-producer --no-pager -o cat | grep ' with .* as shard ' | tail -1")
    assert " with confluent-kafka as shard 0 of 1 " in started, started


def test_topics_have_the_inventory_settings():
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers="127.0.0.1:9092")
    try:
        described = {topic["name"]: topic for topic in admin.describe_topics(
            ["customers-raw", "customers-usa", "customers-alerts", "customers-raw-progress"])}
        assert {name: len(topic["partitions"]) for name, topic in described.items()} == {
            "customers-raw": 3, "customers-usa": 3, "customers-alerts": 3, "customers-raw-progress": 1}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "customers-raw-progress")])
        assert configs["topic"]["customers-raw-progress"]["cleanup.policy"]["value"] == "compact"
        raw = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "customers-raw")])
        assert raw["topic"]["customers-raw"]["retention.ms"]["value"] == "604800000"
    finally:
        admin.close()


def test_second_run_and_check_mode_change_nothing():
    # Two more full runs, through bench/deploy_time.py (its warm runs, which also tests that
    # bench): it stops unless both report changed=0, and prints both recaps and their ratio.
    result = run([sys.executable, str(ROOT / "bench" / "deploy_time.py"), "--warm-only"], timeout=1200)
    rows = bench_table(result.stdout)[1:]
    assert len(rows) == 1 and rows[0][0].startswith("warm"), result.stdout
    assert "changed=0" in rows[0][1] and "changed=0" in rows[0][2] and float(rows[0][3]) > 0, result.stdout
    assert node_stdout("systemctl is-active customer-producer customer-stream").split() == ["active", "active"]
    checked = deploy("--check", "--diff")
    assert checked["recap"]["changed"] == 0, checked["stdout"][-3000:]


def documented_deploy_tags() -> list:
    """The tags README.md documents for deploy.yml (its table of tags)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- deploy-tags -->")[1].split("<!-- /deploy-tags -->")[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)


def test_readme_documents_exactly_the_tags_deploy_yml_has():
    listed = run(["ansible-playbook", "playbooks/deploy.yml", "--list-tags"]).stdout
    tags = set()
    for match in re.findall(r"TASK TAGS: \[([^\]]*)\]", listed):
        tags.update(tag.strip() for tag in match.split(",") if tag.strip())
    assert sorted(tags - {"always"}) == sorted(documented_deploy_tags())


def phase_tags() -> list:
    """The documented tags but a role's own tag, which is the union of its phase tags (a tag
    that others extend, like customer_stream for customer_stream_install): each phase alone
    working is what matters, and the union runs in every full deploy."""
    tags = documented_deploy_tags()
    return [tag for tag in tags if not any(other.startswith(tag + "_") for other in tags)]


@pytest.mark.parametrize("tag", phase_tags())
def test_each_phase_tag_runs_on_its_own(tag):
    """Any phase of any role, alone: what its templates need is computed in that phase (no change, no failure)."""
    recap = deploy("--tags", tag)["recap"]
    assert recap["changed"] == 0


def test_services_run_as_their_own_users_with_no_secret_in_arguments():
    users = node_stdout("ps -o user= -p %s -p %s" % (main_pid("customer-producer"), main_pid("customer-stream")))
    assert sorted(users.split()) == ["customer-producer", "customer-stream"]
    secret = (STATE / "secrets" / "s3_secret_access_key").read_text().split()[0]
    access_key = (STATE / "secrets" / "s3_access_key_id").read_text().split()[0]
    arguments = node_stdout("ps -eo args")
    assert secret not in arguments and access_key not in arguments
    assert node_stdout("stat -c '%a %U' /etc/customer-pipeline/producer.env").split() == ["600", "root"]
    unit = node_stdout("systemctl cat customer-producer.service")
    assert secret not in unit


def producer_log_since(epoch: str) -> str:
    return node_stdout("journalctl -u customer-producer --since @%s --no-pager -o cat" % epoch)


def test_a_missing_bucket_is_named_and_retried_ever_more_slowly_and_the_fix_loses_nothing(s3):
    """A bad setting (issue 13): one error line per start naming the setting, restarts spaced
    out by the growing back-off (here 2 s first, 8 s at most) with the unit never given up,
    and an object that arrived meanwhile is ingested once deploy.yml brings the right bucket
    (test_verify.py reconciles it with the rest)."""
    key = "incoming/while-misconfigured-%s.csv" % uuid.uuid4().hex[:8]
    since = node_stdout("date +%s").strip()
    # --tags customer_producer: the producer's role only, as a user changing one of its settings would.
    try:
        deploy("--tags", "customer_producer", "-e", "customer_producer_s3_bucket=no-such-bucket",
               "-e", "customer_producer_retry_attempts=1", "-e", "customer_producer_restart_sec=2",
               "-e", "customer_producer_restart_max_sec=8")
        s3.put_object(Bucket="customers", Key=key, Body=generate_bytes(300, 13))
        deadline = time.monotonic() + 240
        while producer_log_since(since).count("waiting 8 s in all") < 2:
            assert time.monotonic() < deadline, producer_log_since(since)[-3000:]
            time.sleep(3)
        log = producer_log_since(since)
        # Each start in a row waits twice as long as the one before (2 s by systemd alone, then 4, 8), capped.
        assert [int(n) for n in re.findall(r"restart back-off: start \d+ .*?waiting (\d+) s in all", log)][:3] == [
            4, 8, 8]
        # The line names the setting. The sandbox's producer identity may only read its own bucket,
        # so S3 answers AccessDenied, not NoSuchBucket: "; the S3 credentials in producer.env may
        # not list or read [s3] bucket (customer_producer_s3_bucket)" (with rights on every
        # bucket: "; check [s3] bucket (customer_producer_s3_bucket)").
        errors = [line for line in log.splitlines() if line.startswith("ERROR")]
        assert len(errors) >= 4 and all(
            line.startswith("ERROR listing s3://no-such-bucket/incoming/ failed after 1 attempt(s): ")
            and line.endswith(" [s3] bucket (customer_producer_s3_bucket)") for line in errors), errors
        assert "Traceback" not in log
        state = node_stdout("systemctl show -p ActiveState -p Result customer-producer")
        assert "Result=start-limit-hit" not in state and "ActiveState=failed" not in state, state
    finally:
        # The fix: the inventory's bucket (after a failure above too, so later tests find the
        # producer whole). The producer starts at once and ingests what came meanwhile.
        deploy("--tags", "customer_producer")
    deadline = time.monotonic() + 240
    while "finished s3://customers/%s" % key not in producer_log_since(since):
        assert time.monotonic() < deadline, producer_log_since(since)[-3000:]
        time.sleep(3)
    assert node_stdout("systemctl is-active customer-producer").strip() == "active"


def test_a_bad_output_folder_restarts_the_job_alone_is_named_and_retried_and_the_fix_starts_it():
    """Two things in one change of the job's settings (each start of the job costs a JVM):

    - handlers restart only what changed: a full deploy.yml with one setting of the job changed
      restarts the job and leaves the producer's process as it was, and so does the fix;
    - a bad setting of the job (issue 13): usa_path under a folder maria_dev may not write. The
      job checks before its query starts: one error line naming the setting and the folder, no
      stack trace, exit 1 and restarts spaced out by the back-off (2 s, then 4 s, here). Nothing
      was read, so deploy.yml with the inventory's path resumes where the job stood."""
    folder = "/forbidden-%s" % uuid.uuid4().hex[:8]
    node_stdout("HADOOP_USER_NAME=hdfs hdfs dfs -mkdir -p %s && HADOOP_USER_NAME=hdfs hdfs dfs -chmod 755 %s"
                % (folder, folder))
    producer, stream = main_pid("customer-producer"), main_pid("customer-stream")
    since = node_stdout("date +%s").strip()
    try:
        # The whole playbook, not --tags: the producer's role runs too, and must restart nothing.
        changed = deploy("-e", "customer_stream_usa_path=%s/customers_usa" % folder,
                         "-e", "customer_stream_restart_sec=2", "-e", "customer_stream_restart_max_sec=4")
        assert changed["recap"]["changed"] >= 1
        assert main_pid("customer-producer") == producer
        assert main_pid("customer-stream") != stream
        assert "usa_path = %s/customers_usa" % folder in node_stdout("cat /etc/customer-pipeline/stream.ini")
        journal = "journalctl -u customer-stream --since @%s --no-pager -o cat" % since

        def after_the_restart() -> str:
            # What the job logged once the deploy's restart stopped the one running before.
            return node_stdout(journal).partition("Stopped customer-stream.service")[2]

        deadline = time.monotonic() + 300
        while after_the_restart().count("restart back-off: start") < 2:
            assert time.monotonic() < deadline, node_stdout(journal)[-3000:]
            time.sleep(3)
        log = after_the_restart()
        errors = [line for line in log.splitlines() if "ERROR" in line]
        assert len(errors) >= 3 and all(line.endswith(
            "ERROR customer_pipeline.stream.job: [hdfs] usa_path = %s/customers_usa (customer_stream_usa_path): "
            "maria_dev may not write %s (Permission denied: user=maria_dev, access=WRITE_EXECUTE, inode=\"%s\""
            ":hdfs:hdfs:drwxr-xr-x); give maria_dev write access there or choose another folder: the job checks "
            "again at each restart" % (folder, folder, folder)) for line in errors), errors
        assert "Traceback" not in log and "\tat " not in log and "started: reading" not in log
        assert "waiting 4 s in all" in log
    finally:
        # The fix: the job's role with the inventory's settings (back-off included).
        deploy("--tags", "customer_stream")
    deadline = time.monotonic() + 180
    while "started: reading" not in node_stdout("journalctl -u customer-stream --since @%s --no-pager -o cat" % since):
        assert time.monotonic() < deadline
        time.sleep(3)
    assert node_stdout("systemctl is-active customer-stream").strip() == "active"
    assert main_pid("customer-producer") == producer
    assert folder not in node_stdout("cat /etc/customer-pipeline/stream.ini")
    node_stdout("HADOOP_USER_NAME=hdfs hdfs dfs -rm -r -f -skipTrash %s" % folder)
