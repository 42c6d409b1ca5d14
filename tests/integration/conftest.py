"""Fixtures for tests that use the sandbox node's real services (make sandbox first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".state" / "sandbox"
# The benches' module of the sandbox's SSH line, shared by the chaos runs and these tests.
sys.path.insert(0, str(ROOT / "bench"))
from sandbox_node import ssh_command  # noqa: E402


def run(command: List[str], timeout: float = 600, check: bool = True,
        input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a command from the repository root with the project's ansible.cfg."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                            input=input)
    if check and result.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(command), result.returncode,
                                                        result.stdout[-4000:], result.stderr[-4000:]))
    return result


def on_sandbox_node(state: Path, address: str, command: str, check: bool = True,
                    timeout: float = 300, input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a shell command on a node of a sandbox over SSH, with the key and port Ansible uses."""
    return run(ssh_command(command, state, address), check=check, timeout=timeout, input=input)


def on_node(command: str, check: bool = True, timeout: float = 300,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a shell command on the one-node sandbox over SSH (`input`: its stdin, e.g. a secret)."""
    return on_sandbox_node(STATE, "127.0.0.1", command, check=check, timeout=timeout, input=input)


def playbook_on(inventory: str, name: str, *extra: str, check: bool = True,
                timeout: float = 1200) -> subprocess.CompletedProcess:
    """ansible-playbook on an inventory, stdin from /dev/null: no terminal, as in CI (reset.yml then
    needs reset_confirm=yes)."""
    return run(["sh", "-c", 'exec "$0" "$@" </dev/null', "ansible-playbook", "-i", inventory, name, *extra],
               timeout=timeout, check=check)


def node_stdout(command: str) -> str:
    return on_node(command).stdout


def verify_on(inventory: str, tmp_path: Path, *extra: str, check: bool = True):
    """verify.yml on an inventory: its result and the JSON report it wrote (None if none)."""
    report = tmp_path / ("verify-%s.json" % uuid.uuid4().hex[:6])
    result = playbook_on(inventory, "playbooks/verify.yml", "-e", "verify_report=%s" % report, *extra, check=check)
    return result, (json.loads(report.read_text()) if report.exists() else None)


def report_counts(report: dict, uri: str) -> tuple:
    """rows, usa, alerts, out of scope and duplicates of one source object in a verify report."""
    row = next(item for item in report["objects"] if item["uri"] == uri)
    return row["rows"], row["usa"], row["alerts"], row["out_of_scope"], row["duplicates"]


def play_recap(output: str) -> Dict[str, Dict[str, int]]:
    """Per-host counters of the PLAY RECAP of an ansible-playbook run."""
    recap: Dict[str, Dict[str, int]] = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap and ":" in line:
            host, _, counters = line.partition(":")
            recap[host.strip()] = {k: int(v) for k, v in (item.split("=") for item in counters.split())}
    return recap


def bench_table(output: str) -> List[List[str]]:
    """The cells of every row of the Markdown table a bench prints (header first, rule left out)."""
    return [[cell.strip() for cell in line.split("|")[1:-1]] for line in output.splitlines()
            if line.startswith("| ") and "---" not in line]


@pytest.fixture(scope="session")
def s3_settings() -> Dict[str, str]:
    """Endpoint and generated credentials of the sandbox's S3 server."""
    secrets = STATE / "secrets"
    if not (secrets / "s3_secret_access_key").exists():
        pytest.fail("the sandbox is not built: run make sandbox first")
    return {
        "endpoint_url": "http://127.0.0.1:8333",
        "region_name": "us-east-1",
        "aws_access_key_id": (secrets / "s3_access_key_id").read_text().split()[0],
        "aws_secret_access_key": (secrets / "s3_secret_access_key").read_text().split()[0],
    }


@pytest.fixture(scope="session")
def s3(s3_settings):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **s3_settings)


@pytest.fixture(scope="session")
def spark():
    """A local Spark in the test process, to read the datasets back from the node's HDFS."""
    from pyspark.sql import SparkSession

    # Loopback without asking the JVM for this host's address first: spark-submit fails to start
    # where the host name does not resolve (a fresh container, a minimal image).
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # As the job's: the datasets' date partitions are UTC dates.
        .config("spark.sql.session.timeZone", "UTC")
    )
    # Delta Lake's jars and settings, so that the same session reads the delta tests' tables.
    from delta_lake_jars import delta_lake_jars_if_maven

    if delta_lake_jars_if_maven():
        from customer_pipeline.stream.delta_commit import SESSION_CONF

        builder = builder.config("spark.jars", ",".join(delta_lake_jars_if_maven()))
        for name, value in SESSION_CONF.items():
            builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def json_lines(text: str) -> List[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
