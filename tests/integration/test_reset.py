"""reset.yml on the sandbox: the one safe command that takes the pipeline back to its start.

Refusals (no confirmation, unsafe paths) and --check must leave the running pipeline
untouched; a confirmed reset must rebuild the datasets with the same rows (each source row
once; here with reset_topics, re-ingesting from S3; a reset that keeps the topics is rebuilt
and reconciled on three nodes, test_cluster3.py); a second reset must have nothing to do. Runs after test_deploy.py (file order) and
leaves both services running.
"""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any, Dict, Tuple

import pytest

from conftest import node_stdout, on_node, play_recap, run

pytestmark = pytest.mark.sandbox

HDFS = "hdfs://127.0.0.1:8020"
USA = "/user/maria_dev/customers_usa"
ALERTS = "/user/maria_dev/customers_alerts"
CHECKPOINT = "/user/maria_dev/checkpoints/customer-stream"
SERVICES = ("customer-producer", "customer-stream")
BATCH_LINE = re.compile(r"batch \d+: (\d+) rows in, usa (\d+), alerts (\d+), out_of_scope (\d+)")


def reset(*extra: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/reset.yml with stdin from /dev/null, as in CI (no terminal)."""
    return run(["sh", "-c", 'exec "$0" "$@" </dev/null', "ansible-playbook", "playbooks/reset.yml", *extra],
               timeout=timeout, check=False)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def active() -> list:
    return on_node("systemctl is-active %s" % " ".join(SERVICES), check=False).stdout.split()


def main_pids() -> list:
    return node_stdout("systemctl show -p MainPID --value %s" % " ".join(SERVICES)).split()


def hdfs_exists(path: str) -> bool:
    return on_node("HADOOP_USER_NAME=maria_dev hdfs dfs -test -e %s" % path, check=False).returncode == 0


def untouched(pids: list) -> None:
    assert active() == ["active", "active"]
    assert main_pids() == pids
    assert all(hdfs_exists(path) for path in (USA, ALERTS, CHECKPOINT))


def stream_batches_since(epoch: float) -> Tuple[int, int, int]:
    """Batches, usa rows and alerts rows the job logged since epoch (seconds, host clock = node clock)."""
    log = node_stdout("journalctl -u customer-stream --since @%d --no-pager -o cat" % int(epoch))
    found = [tuple(int(n) for n in match.groups()) for match in BATCH_LINE.finditer(log)]
    return len(found), sum(f[1] for f in found), sum(f[2] for f in found)



def dataset_ids(spark: Any, path: str) -> Dict[str, set]:
    """The record ids of a dataset by source object; fails on a record id held twice."""
    rows = spark.read.parquet(HDFS + path).select("source_uri", "record_id").collect()
    ids = [row.record_id for row in rows]
    assert len(ids) == len(set(ids)), "%s holds %d rows but %d record ids" % (path, len(ids), len(set(ids)))
    by_source: Dict[str, set] = {}
    for row in rows:
        by_source.setdefault(row.source_uri, set()).add(row.record_id)
    return by_source


def source_uris(s3) -> set:
    """s3:// URIs of every object the producer ingests (the sandbox's bucket and prefix)."""
    listing = s3.list_objects_v2(Bucket="customers", Prefix="incoming/").get("Contents", [])
    return {"s3://customers/" + item["Key"] for item in listing if item["Key"].endswith(".csv")}


def rows_of(ids: Dict[str, set], sources: set) -> int:
    return sum(len(found) for source, found in ids.items() if source in sources)


def wait_for_rows(before: Dict[str, Dict[str, set]], sources: set, since: float, timeout: float = 600) -> None:
    """Until the job has logged at least the usa and alerts rows the datasets held for `sources`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, usa, alerts = stream_batches_since(since)
        if usa >= rows_of(before[USA], sources) and alerts >= rows_of(before[ALERTS], sources):
            return
        time.sleep(2)
    pytest.fail("the job did not rebuild the datasets within %d s: %r" % (timeout, stream_batches_since(since)))


@pytest.fixture(scope="module")
def before(spark) -> Dict[str, Dict[str, set]]:
    """The running pipeline, caught up: the record ids of both datasets by source object, each once."""
    if active() != ["active", "active"]:
        run(["ansible-playbook", "playbooks/deploy.yml"], timeout=900)
    deadline = time.monotonic() + 300
    while not (hdfs_exists(USA) and hdfs_exists(ALERTS)) and time.monotonic() < deadline:
        time.sleep(5)
    ids = {path: dataset_ids(spark, path) for path in (USA, ALERTS)}
    assert rows_of(ids[USA], set(ids[USA])) > 0 and rows_of(ids[ALERTS], set(ids[ALERTS])) > 0
    return ids


def test_refuses_without_confirmation_before_touching_anything(before):
    pids = main_pids()
    # stdin is /dev/null: a prompt waiting for input would fail at once, not hang (run() has a timeout).
    result = reset()
    assert result.returncode != 0
    assert "Reset not confirmed" in output(result), output(result)[-3000:]
    untouched(pids)


@pytest.mark.parametrize("variable, value, problem", [
    ("customer_stream_usa_path", "/", "is the root folder /"),
    ("customer_stream_checkpoint_location", "/user/other/x", "is not under an allowed prefix"),
])
def test_refuses_an_unsafe_path_before_touching_anything(before, variable, value, problem):
    pids = main_pids()
    result = reset("-e", "reset_confirm=yes", "-e", "%s=%s" % (variable, value))
    assert result.returncode != 0
    assert '%s="%s" %s' % (variable, value, problem) in " ".join(output(result).split()), output(result)[-3000:]
    untouched(pids)


def test_check_mode_lists_the_plan_and_changes_nothing(before):
    pids = main_pids()
    result = reset("--check", "-e", "reset_confirm=yes")
    assert result.returncode == 0, output(result)[-3000:]
    out = " ".join(result.stdout.split())  # the callback wraps long lines
    assert "Check mode, nothing is changed. A reset would:" in out
    assert "stop: customer-producer.service, customer-stream.service" in out
    assert "delete on HDFS as maria_dev: %s, %s, %s" % (CHECKPOINT, USA, ALERTS) in out
    assert "keep the Kafka topics and the progress of the producer" in out
    untouched(pids)


def assert_rebuilt(spark: Any, before: Dict[str, Dict[str, set]], sources: set, since: float) -> None:
    """Every source row of `sources` is back in the datasets, once, with the same record id.

    Other tests may add objects to the shared bucket meanwhile: their rows are allowed, each
    once, but the rows of the objects there before the reset must be exactly the old ones.
    """
    wait_for_rows(before, sources, since)
    time.sleep(15)  # a batch more: nothing else may arrive
    _, usa, alerts = stream_batches_since(since)
    after = {path: dataset_ids(spark, path) for path in (USA, ALERTS)}
    for path in (USA, ALERTS):
        assert {s: after[path].get(s, set()) for s in sources} == {s: before[path].get(s, set()) for s in sources}
    # Every row the job wrote since the reset is in the datasets, and nothing else.
    assert (rows_of(after[USA], set(after[USA])), rows_of(after[ALERTS], set(after[ALERTS]))) == (usa, alerts)


def test_second_reset_has_nothing_to_do(before):
    first = reset("-e", "reset_confirm=yes")
    assert first.returncode == 0, output(first)[-3000:]
    assert play_recap(first.stdout)["sandbox-node"]["changed"] == 2  # the stop task (both units) and the HDFS deletion
    assert active() == ["inactive", "inactive"]
    assert not any(hdfs_exists(path) for path in (USA, ALERTS, CHECKPOINT))
    second = reset("-e", "reset_confirm=yes")
    assert second.returncode == 0, output(second)[-3000:]
    assert play_recap(second.stdout)["sandbox-node"]["changed"] == 0, second.stdout[-3000:]
    out = " ".join(second.stdout.split())
    assert "stop: nothing" in out and "delete on HDFS as maria_dev: nothing" in out


def test_reset_topics_reingests_from_s3_with_the_same_rows(before, spark, s3):
    """reset_topics=yes: the topics are recreated and the producer re-ingests every object."""
    sources = source_uris(s3) & (set(before[USA]) | set(before[ALERTS]))
    since = time.time() - 1
    result = reset("-e", "reset_confirm=yes", "-e", "reset_topics=yes", "-e", "reset_start=yes")
    assert result.returncode == 0, output(result)[-3000:]
    assert "delete and recreate Kafka topics: customers-raw, customers-usa, customers-alerts, customers-raw-progress" \
        in " ".join(result.stdout.split())
    assert sources, "no object of the datasets is left in S3"
    assert_rebuilt(spark, before, sources, since)
    assert active() == ["active", "active"]
