"""The cluster-mode supervisor against a fake ResourceManager, and the unit that runs it.

The supervisor runs as the unit runs it (`python3 -m customer_pipeline.stream.yarn_supervisor
... -- spark-submit ...`), against a real HTTP server in a thread that implements the few
ResourceManager REST endpoints it calls, with a fake spark-submit: a script that registers
an application with the fake ResourceManager, prints spark-submit's "Submitted application"
line and its application reports, and exits when the application is final (0 for
FINISHED/SUCCEEDED), as spark-submit does with spark.yarn.submit.waitAppCompletion=true.
The unit is rendered with Ansible's own template engine from the role's defaults and vars,
for a local master, YARN client mode and YARN cluster mode. No Spark, YARN or systemd.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml
from role_templates import trusted

from customer_pipeline.stream import yarn_supervisor
from customer_pipeline.stream.config import load_config

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "customer_stream"
USER = "maria_dev"
APP = "customer-stream"
LOGGER = "customer_pipeline.stream.yarn_supervisor"


class FakeResourceManager:
    """GET /ws/v1/cluster/apps[/ID], PUT /ws/v1/cluster/apps/ID/state, and POST /test/submit
    (the fake spark-submit's stand-in for a submission). A killed application turns KILLED
    `kill_delay` seconds after the PUT, so the supervisor has to wait for it."""

    def __init__(self, kill_delay: float = 0.3) -> None:
        self.apps: Dict[str, Dict[str, str]] = {}
        # (method, path, query) of every request, in order.
        self.requests: List[Tuple[str, str, Dict[str, List[str]]]] = []
        self.kill_delay = kill_delay
        self.lock = threading.Lock()
        self.next_number = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
                pass

            def _answer(self, status: int, body: Dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_GET(self) -> None:
                status, body = fake.get(*fake.record("GET", self.path))
                self._answer(status, body)

            def do_PUT(self) -> None:
                path, query = fake.record("PUT", self.path)
                status, body = fake.put(path, query, self._body())
                self._answer(status, body)

            def do_POST(self) -> None:
                path, _ = fake.record("POST", self.path)
                body = self._body()
                self._answer(200, {"id": fake.add(body["name"], body["user"])})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def record(self, method: str, raw_path: str) -> Tuple[str, Dict[str, List[str]]]:
        parts = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parts.query)
        with self.lock:
            self.requests.append((method, parts.path, query))
        return parts.path, query

    def add(self, name: str, user: str, state: str = "RUNNING", final_status: str = "UNDEFINED") -> str:
        with self.lock:
            app_id = "application_1_%04d" % self.next_number
            self.next_number += 1
            self.apps[app_id] = {"id": app_id, "name": name, "user": user, "state": state,
                                 "finalStatus": final_status, "diagnostics": "", "queue": "default"}
        return app_id

    def finish(self, app_id: str, state: str, final_status: str, diagnostics: str = "") -> None:
        with self.lock:
            self.apps[app_id].update(state=state, finalStatus=final_status, diagnostics=diagnostics)

    def state(self, app_id: str) -> str:
        with self.lock:
            return self.apps[app_id]["state"]

    def get(self, path: str, query: Dict[str, List[str]]) -> Tuple[int, Dict[str, Any]]:
        with self.lock:
            if path == "/ws/v1/cluster/apps":
                states = query.get("states", [""])[0].split(",")
                apps = [dict(app) for app in self.apps.values() if app["state"] in states]
                return 200, {"apps": {"app": apps} if apps else None}
            app_id = path.rpartition("/")[2]
            if path.startswith("/ws/v1/cluster/apps/") and app_id in self.apps:
                return 200, {"app": dict(self.apps[app_id])}
        return 404, {"RemoteException": {"message": "not found: %s" % path}}

    def put(self, path: str, query: Dict[str, List[str]], body: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
        app_id = path.split("/")[-2]
        with self.lock:
            if not path.endswith("/state") or app_id not in self.apps or body != {"state": "KILLED"}:
                return 400, {"RemoteException": {"message": "bad request"}}
            if query.get("user.name") != [self.apps[app_id]["user"]]:
                return 403, {"RemoteException": {"message": "user.name is not the application's user"}}
            app = self.apps[app_id]
            if app["state"] in yarn_supervisor.FINAL_STATES:
                return 200, {"state": app["state"]}
        threading.Timer(self.kill_delay, self.finish, (app_id, "KILLED", "KILLED", "Application killed by user.")).start()
        return 202, {"state": app["state"]}

    def kills(self) -> List[str]:
        with self.lock:
            return [path.split("/")[-2] for method, path, _ in self.requests if method == "PUT"]


FAKE_SPARK_SUBMIT = '''#!{python}
"""spark-submit --deploy-mode cluster with waitAppCompletion=true, against the fake ResourceManager."""
import json, os, sys, time, urllib.request

with open(os.environ["FAKE_ARGV"], "w") as handle:
    json.dump({{"argv": sys.argv, "pid": os.getpid(), "pythonpath": os.environ.get("PYTHONPATH")}}, handle)
mode = os.environ.get("FAKE_MODE", "run")
print("INFO SparkContext: Running Spark version 3.5.7", flush=True)
if mode.startswith("exit:"):
    print("ERROR SparkSubmit: cannot submit", flush=True)
    sys.exit(int(mode[5:]))
rm = os.environ["FAKE_RM"]
name = sys.argv[sys.argv.index("--name") + 1]
request = urllib.request.Request(rm + "/test/submit", method="POST",
                                 data=json.dumps({{"name": name, "user": os.environ["HADOOP_USER_NAME"]}}).encode())
app_id = json.load(urllib.request.urlopen(request))["id"]
# "quiet": a log4j2 configuration at WARN, which drops the client's INFO lines (the sandbox's).
quiet = mode == "quiet"
if not quiet:
    print("INFO Client: Submitting application %s to ResourceManager" % app_id, flush=True)
    print("INFO YarnClientImpl: Submitted application %s" % app_id, flush=True)
while True:
    app = json.load(urllib.request.urlopen(rm + "/ws/v1/cluster/apps/" + app_id))["app"]
    if not quiet:
        print("INFO Client: Application report for %s (state: %s)" % (app_id, app["state"]), flush=True)
    if app["state"] in ("FINISHED", "FAILED", "KILLED"):
        sys.exit(0 if app["finalStatus"] == "SUCCEEDED" else 1)
    time.sleep(0.05)
'''


@pytest.fixture()
def rm() -> Iterator[FakeResourceManager]:
    fake = FakeResourceManager()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


class Run:
    """The supervisor running as a child process, its output collected line by line."""

    def __init__(self, tmp_path: Path, rm_url: str, mode: str = "run", extra: Optional[List[str]] = None) -> None:
        script = tmp_path / "spark-submit"
        script.write_text(FAKE_SPARK_SUBMIT.format(python=sys.executable))
        script.chmod(0o755)
        self.argv_file = tmp_path / "spark-submit.json"
        self.state_file = tmp_path / "yarn-application-id"
        environment = dict(os.environ, PYTHONPATH=str(ROOT / "src"), FAKE_RM=rm_url, FAKE_MODE=mode,
                           FAKE_ARGV=str(self.argv_file), HADOOP_USER_NAME=USER, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "customer_pipeline.stream.yarn_supervisor", "--resourcemanager", rm_url,
                   "--app-name", APP, "--user", USER, "--state-file", str(self.state_file),
                   "--kill-timeout", "5", "--poll-interval", "0.05", "--connect-attempts", "2", "--retry-delay", "0.1",
                   *(extra or []), "--",
                   str(script), "--master", "yarn", "--deploy-mode", "cluster", "--name", APP,
                   "--files", "/etc/customer-pipeline/stream.ini", "run_stream_job.py", "--config", "stream.ini"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env=environment, cwd=str(tmp_path))
        self.lines: List[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float = 20.0) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("the supervisor did not end; its output:\n" + "\n".join(self.lines)) from None
        self.reader.join(5)
        return code

    def errors(self) -> List[str]:
        return [line for line in self.lines if line.startswith("ERROR " + LOGGER)]

    def spark_submit(self) -> Dict[str, Any]:
        return json.loads(self.argv_file.read_text())


def eventually(condition: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def submitted_id(run: Run) -> str:
    """The id the supervisor wrote to its state file once spark-submit reported it."""
    return eventually(lambda: run.state_file.exists() and run.state_file.read_text().strip(), "the state file")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of an already-ended child still answers signal 0.
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------- the supervisor


def test_an_application_left_by_an_earlier_start_is_killed_before_submitting(rm: FakeResourceManager,
                                                                            tmp_path: Path) -> None:
    stale = rm.add(APP, USER, state="RUNNING")
    other_name = rm.add("nightly-report", USER, state="RUNNING")
    other_user = rm.add(APP, "alice", state="ACCEPTED")
    finished = rm.add(APP, USER, state="FINISHED", final_status="SUCCEEDED")
    run = Run(tmp_path, rm.url)

    app_id = submitted_id(run)
    assert app_id == "application_1_0005"
    assert rm.state(stale) == "KILLED"
    assert rm.kills() == [stale]  # not another job's, not another user's, not a final one
    assert (rm.state(other_name), rm.state(other_user), rm.state(finished)) == ("RUNNING", "ACCEPTED", "FINISHED")
    # The kill came first, and the supervisor waited until YARN reported it final.
    order = [(method, path) for method, path, _ in rm.requests]
    put = order.index(("PUT", "/ws/v1/cluster/apps/%s/state" % stale))
    assert ("GET", "/ws/v1/cluster/apps/%s" % stale) in order[put + 1:]
    assert order.index(("POST", "/test/submit")) > put
    # Simple authentication: the kill names the application's user.
    assert [query["user.name"] for method, _, query in rm.requests if method == "PUT"] == [[USER]]

    rm.finish(app_id, "FINISHED", "SUCCEEDED")
    assert run.wait() == 0
    assert any("killing YARN application %s (RUNNING) of user %s" % (stale, USER) in line for line in run.lines)
    assert run.lines[-1] == "INFO %s: YARN application %s ended FINISHED (final status SUCCEEDED)" % (LOGGER, app_id)
    assert run.errors() == []
    assert not run.state_file.exists()  # no application runs any more
    # spark-submit waits for the application's end, and the supervisor's import path stays its own.
    argv = run.spark_submit()["argv"]
    assert argv[1:3] == ["--conf", "spark.yarn.submit.waitAppCompletion=true"]
    assert argv[-2:] == ["--config", "stream.ini"]
    assert run.spark_submit()["pythonpath"] is None


def test_sigterm_kills_the_application_waits_and_exits_0(rm: FakeResourceManager, tmp_path: Path) -> None:
    run = Run(tmp_path, rm.url)
    app_id = submitted_id(run)
    spark_submit_pid = run.spark_submit()["pid"]
    eventually(lambda: sum("(state: RUNNING)" in line for line in run.lines), "an application report")
    time.sleep(0.3)  # spark-submit reports every 0.05 s meanwhile

    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == 0
    assert rm.kills() == [app_id]
    assert rm.state(app_id) == "KILLED"
    assert not pid_alive(spark_submit_pid)
    assert run.errors() == []
    assert "INFO %s: stop requested (SIGTERM): killing YARN application %s" % (LOGGER, app_id) in run.lines
    assert run.lines[-1] == "INFO %s: stopped: YARN application %s is KILLED" % (LOGGER, app_id)
    # spark-submit's output reaches journald, its repeated application reports once.
    assert "INFO YarnClientImpl: Submitted application %s" % app_id in run.lines
    assert sum("(state: RUNNING)" in line for line in run.lines) == 1
    assert not run.state_file.exists()


@pytest.mark.parametrize("state, final_status, diagnostics", [
    ("FAILED", "FAILED", "Application application_1_0001 failed 2 times due to AM Container for\n"
                         "appattempt_1_0001_000002 exited with  exitCode: 1\nFailing this attempt."),
    ("KILLED", "KILLED", "Application killed by user."),  # by someone else: yarn application -kill
])
def test_an_application_that_ends_by_itself_ends_the_service_with_one_line(
        rm: FakeResourceManager, tmp_path: Path, state: str, final_status: str, diagnostics: str) -> None:
    run = Run(tmp_path, rm.url)
    app_id = submitted_id(run)
    rm.finish(app_id, state, final_status, diagnostics)
    assert run.wait() == 1  # Restart=on-failure restarts the service
    one_line = " ".join(diagnostics.split())
    assert run.errors() == ["ERROR %s: YARN application %s ended %s (final status %s): %s; spark-submit exit code 1"
                            % (LOGGER, app_id, state, final_status, one_line)]
    assert rm.kills() == []


def test_spark_submit_failing_before_yarn_accepts_the_application(rm: FakeResourceManager, tmp_path: Path) -> None:
    run = Run(tmp_path, rm.url, mode="exit:3")
    assert run.wait() == 1
    assert run.errors() == ["ERROR %s: spark-submit exited with code 3 before YARN accepted an application"
                            " (its output is above)" % LOGGER]
    assert "ERROR SparkSubmit: cannot submit" in run.lines  # passed through


def test_an_unreachable_resourcemanager_gives_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % probe.getsockname()[1]
    run = Run(tmp_path, url)
    assert run.wait() == 1  # the ResourceManager may come back: systemd retries
    assert len(run.lines) == 1, run.lines
    assert run.lines[0].startswith("ERROR %s: cannot reach the YARN ResourceManager at %s after 2 attempt(s) ("
                                   % (LOGGER, url))
    assert "customer_stream_yarn_resourcemanager_webapp" in run.lines[0]
    assert not run.argv_file.exists()  # nothing submitted


@pytest.mark.parametrize("address", ["", "node1:8088", "http://"])
def test_a_missing_resourcemanager_address_is_a_wrong_setting(tmp_path: Path, address: str) -> None:
    run = Run(tmp_path, address)
    assert run.wait() == 2  # RestartPreventExitStatus=2: no restart loop
    assert len(run.lines) == 1, run.lines
    assert "set customer_stream_yarn_resourcemanager_webapp" in run.lines[0]
    assert not run.argv_file.exists()


def test_spark_submit_must_wait_for_the_application() -> None:
    assert yarn_supervisor.check_command(["spark-submit", "--conf", "spark.yarn.submit.waitAppCompletion=true",
                                          "job.py"]) == ["spark-submit", "--conf",
                                                         "spark.yarn.submit.waitAppCompletion=true", "job.py"]
    with pytest.raises(yarn_supervisor.SupervisorError) as refused:
        yarn_supervisor.check_command(["spark-submit", "--conf", "spark.yarn.submit.waitAppCompletion=false"])
    assert refused.value.exit_code == 2
    with pytest.raises(yarn_supervisor.SupervisorError):
        yarn_supervisor.check_command([])


def test_the_job_reads_stream_ini_from_the_containers_working_directory(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--files puts stream.ini in the YARN container's working directory: --config stream.ini."""
    (tmp_path / "stream.ini").write_text("[kafka]\nbootstrap_servers = broker-1:9093\n")
    monkeypatch.chdir(tmp_path)
    assert load_config("stream.ini").bootstrap_servers == "broker-1:9093"


# ---------------------------------------------------------------- the unit


def role_templar(**overrides: Any) -> Any:
    """Ansible's template engine with the role's defaults and vars, as a play on the gateway sees them."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    variables: Dict[str, Any] = {}
    # The unit is rendered by _service's unit.yml: its vars (the table of unit options by systemd
    # version) apply too, for the sandbox's systemd 252.
    for path in (ROLE / "defaults" / "main.yml", ROLE.parent / "_service" / "vars" / "main.yml",
                 ROLE / "vars" / "main.yml"):
        variables.update(trusted(yaml.safe_load(path.read_text())))
    variables.update(
        __service_systemd_version=252,
        ansible_managed="Ansible managed", groups={"all": ["gateway"]}, cluster_hdfs_user=USER,
        cluster_spark_submit="/opt/spark/bin/spark-submit", cluster_kafka_bootstrap_servers="broker-1:9092",
        pipeline_conf_dir="/etc/customer-pipeline", pipeline_stream_app_dir="/opt/customer-pipeline/stream",
        pipeline_wheel_dir="/opt/customer-pipeline/wheels/app", pipeline_jars_dir="/opt/customer-pipeline/jars",
        pipeline_topic_raw="customers-raw", pipeline_topic_usa="customers-usa", pipeline_topic_alerts="customers-alerts",
        pipeline_hdfs_usa_path="/u/customers_usa", pipeline_hdfs_alerts_path="/u/customers_alerts",
        pipeline_checkpoint_location="/u/checkpoints/customer-stream", pipeline_target_country="USA",
        __customer_stream_jars={"files": [{"path": "/opt/customer-pipeline/jars/kafka-clients.jar"},
                                          {"path": "/opt/customer-pipeline/jars/spark-sql-kafka.jar"}]},
    )
    variables.update(overrides)
    return Templar(loader=DataLoader(), variables=variables)


def render_unit(**overrides: Any) -> str:
    """customer-stream.service as the template module renders it."""
    from ansible.template import trust_as_template

    template = (ROLE / "templates" / "customer-stream.service.j2").read_text()
    return str(role_templar(**overrides).template(trust_as_template(template)))


BACKOFF = ("/usr/local/lib/customer-pipeline/restart-backoff --state /var/lib/customer-stream/restart-backoff"
           " --first 15 --max 300 --healthy 600 --floor 15 -- ")


def directive(unit: str, name: str) -> List[str]:
    """Every value of `name=` in the unit, continuation lines joined; ExecStart= without the
    restart back-off in front of the command (checked to be there, with the role's defaults)."""
    joined = unit.replace("\\\n", " ")
    values = [" ".join(line.partition("=")[2].split()) for line in joined.splitlines() if line.startswith(name + "=")]
    if name == "ExecStart":
        assert all(value.startswith(BACKOFF) for value in values), values
        values = [value[len(BACKOFF):] for value in values]
    return values


JARS = "/opt/customer-pipeline/jars/kafka-clients.jar,/opt/customer-pipeline/jars/spark-sql-kafka.jar"
STOP_DRIVER = ("+/bin/sh -c 'pkill -TERM -u customer-stream -f \"^[^ ]*python[0-9.]* "
               "/opt/customer-pipeline/stream/run_stream_job.py\" || exit 0; "
               "while kill -0 $MAINPID 2>/dev/null; do sleep 1; done'")


def test_a_local_master_runs_as_before() -> None:
    unit = render_unit()
    assert directive(unit, "ExecStart") == [
        "/opt/spark/bin/spark-submit --master local[2] --deploy-mode client --name customer-stream --driver-memory 1g"
        " --jars " + JARS + " --py-files /opt/customer-pipeline/stream/customer_pipeline.zip"
        " --conf spark.sql.shuffle.partitions=2 --conf spark.ui.enabled=false"
        " /opt/customer-pipeline/stream/run_stream_job.py --config /etc/customer-pipeline/stream.ini"]
    assert directive(unit, "ExecStop") == [STOP_DRIVER]


def test_yarn_client_mode_keeps_the_driver_in_the_service() -> None:
    unit = render_unit(customer_stream_master="yarn", customer_stream_yarn_queue="streaming",
                       customer_stream_num_executors=3, customer_stream_executor_memory="2g",
                       customer_stream_executor_cores=2)
    [start] = directive(unit, "ExecStart")
    assert start.startswith("/opt/spark/bin/spark-submit --master yarn --deploy-mode client ")
    assert start.endswith(" --conf spark.executor.cores=2 --conf spark.executor.instances=3"
                          " --conf spark.executor.memory=2g --conf spark.pyspark.python=/usr/bin/python3"
                          " --conf spark.sql.shuffle.partitions=2 --conf spark.ui.enabled=false"
                          " --conf spark.yarn.queue=streaming"
                          " /opt/customer-pipeline/stream/run_stream_job.py --config /etc/customer-pipeline/stream.ini")
    assert "spark.driver.host" not in unit and "--files" not in unit and "waitAppCompletion" not in unit
    assert directive(unit, "ExecStop") == [STOP_DRIVER]


def test_customer_stream_spark_conf_overrides_the_yarn_properties() -> None:
    unit = render_unit(customer_stream_master="yarn",
                       customer_stream_spark_conf={"spark.yarn.queue": "etl", "spark.pyspark.python": "/opt/py/bin/python3"})
    [start] = directive(unit, "ExecStart")
    assert "--conf spark.yarn.queue=etl " in start and "spark.yarn.queue=default" not in start
    assert "--conf spark.pyspark.python=/opt/py/bin/python3 " in start


def test_yarn_cluster_mode_runs_the_supervisor_and_ships_stream_ini() -> None:
    unit = render_unit(customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                       cluster_yarn_resourcemanager_webapp="http://rm1:8088",
                       pipeline_python_interpreter="/usr/bin/python3.8")
    [start] = directive(unit, "ExecStart")
    assert start.startswith(
        "/usr/bin/python3.8 -m customer_pipeline.stream.yarn_supervisor --resourcemanager http://rm1:8088"
        " --app-name customer-stream --user maria_dev --state-file /var/lib/customer-stream/yarn-application-id"
        " --kill-timeout 90 -- /opt/spark/bin/spark-submit --master yarn --deploy-mode cluster --name customer-stream ")
    assert " --files /etc/customer-pipeline/stream.ini " in start
    assert start.endswith(" --conf spark.yarn.submit.waitAppCompletion=true"
                          " /opt/customer-pipeline/stream/run_stream_job.py --config stream.ini")
    assert "Environment=PYTHONPATH=/opt/customer-pipeline/stream/customer_pipeline.zip" in unit.splitlines()
    # The supervisor answers SIGTERM itself: no pkill of a driver that is not here.
    assert directive(unit, "ExecStop") == []
    assert directive(unit, "KillMode") == ["mixed"] and directive(unit, "RestartPreventExitStatus") == ["2"]
    # The command line is one the supervisor accepts as it is.
    argv = shlex.split(start)
    args = yarn_supervisor.parse_args(argv[3:])
    assert (args.resourcemanager, args.app_name, args.user) == ("http://rm1:8088", "customer-stream", "maria_dev")
    assert yarn_supervisor.check_command(args.command) == args.command
    assert args.command[0] == "/opt/spark/bin/spark-submit"


def test_the_application_id_is_asked_of_the_resourcemanager_when_the_log_hides_it(rm: FakeResourceManager,
                                                                                  tmp_path: Path) -> None:
    run = Run(tmp_path, rm.url, mode="quiet")
    app_id = submitted_id(run)
    assert rm.state(app_id) == "RUNNING"
    assert not any("Submitted application" in line for line in run.lines)
    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == 0
    assert rm.state(app_id) == "KILLED"


def test_the_resourcemanager_address_is_set_by_hand_without_the_group() -> None:
    unit = render_unit(customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                       cluster_yarn_resourcemanager_webapp="")
    assert "--resourcemanager  " in unit  # empty: the role's preflight refuses it before anything changes
    unit = render_unit(customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                       customer_stream_yarn_resourcemanager_webapp="http://rm.example.com:8088")
    assert "--resourcemanager http://rm.example.com:8088 " in directive(unit, "ExecStart")[0]


def preflight_failures(**overrides: Any) -> List[str]:
    """The names of the role's preflight asserts that fail with these variables."""
    from ansible.template import trust_as_template

    templar = role_templar(**overrides)
    failed = []
    for task in yaml.safe_load((ROLE / "tasks" / "preflight.yml").read_text()):
        if "when" in task and not templar.evaluate_conditional(trust_as_template(task["when"])):
            continue
        that = task["ansible.builtin.assert"]["that"]
        conditions = that if isinstance(that, list) else [that]
        if not all(templar.evaluate_conditional(trust_as_template(condition)) for condition in conditions):
            failed.append(task["name"])
    return failed


def test_the_preflight_accepts_the_three_ways_to_run() -> None:
    assert preflight_failures() == []
    assert preflight_failures(customer_stream_master="yarn") == []
    assert preflight_failures(customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                              customer_stream_yarn_resourcemanager_webapp="http://node1:8088") == []


SASL = dict(customer_stream_kafka_security_protocol="SASL_SSL", customer_stream_kafka_sasl_mechanism="SCRAM-SHA-512",
            customer_stream_kafka_sasl_username="pipeline", customer_stream_kafka_sasl_password="s3cret-pw")


def test_the_preflight_checks_the_jobs_sasl_settings() -> None:
    assert preflight_failures(**SASL) == []
    for wrong in (dict(customer_stream_kafka_sasl_mechanism=""), dict(customer_stream_kafka_sasl_username=""),
                  dict(customer_stream_kafka_sasl_password=""), dict(customer_stream_kafka_sasl_password='a"b'),
                  dict(customer_stream_kafka_sasl_username="a\\b")):
        assert preflight_failures(**dict(SASL, **wrong)) == ["Check the SASL settings of the Spark job's Kafka clients"], wrong
    # The password lives in stream.env, which a driver on a NodeManager cannot read.
    assert preflight_failures(**dict(SASL, customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                                     customer_stream_yarn_resourcemanager_webapp="http://node1:8088")) == [
        "Check no secret environment variable is set for a cluster-mode driver"]


def test_the_preflight_refuses_cluster_mode_without_yarn_or_its_resourcemanager() -> None:
    assert preflight_failures(customer_stream_deploy_mode="cluster",
                              customer_stream_yarn_resourcemanager_webapp="http://node1:8088") == [
        "Check the Spark master and deploy mode of customer-stream.service"]
    assert preflight_failures(customer_stream_master="yarn", customer_stream_deploy_mode="cluster") == [
        "Check the YARN ResourceManager address the cluster-mode supervisor uses"]
    assert preflight_failures(customer_stream_master="yarn", customer_stream_deploy_mode="cluster",
                              customer_stream_yarn_resourcemanager_webapp="http://node1:8088",
                              customer_stream_secret_environment={"KAFKA_PASSWORD": "x"}) == [
        "Check no secret environment variable is set for a cluster-mode driver"]
