"""The spark_runtime role: its files for the sandbox and for HDP, and the HDP example inventory.

The role's templates and the expressions of its tasks are rendered with Ansible's own template
engine from the role's defaults and an inventory's variables as Ansible resolves them for the
Spark gateway (group_vars, hostvars), plus what earlier tasks give (the java role's java_home
fact, the node's Python version that preflight.yml asks). For the sandbox the files are byte
for byte those the sandbox's former `spark` role wrote, so a converged node sees no change;
for HDP they carry the cluster's settings. The example inventory resolves with
ansible-inventory and the playbooks pass --syntax-check with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from role_templates import trusted

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "spark_runtime"
BIN = Path(sys.executable).parent
COMMANDS = ["spark-submit", "spark-shell", "pyspark", "spark-sql"]
JAVA_17 = "/usr/lib/jvm/java-17-openjdk-amd64"

# What the sandbox's `spark` role wrote on the one-node sandbox before it became spark_runtime.
BEFORE_DEFAULTS = """\
# Ansible managed
# Defaults of every job started with /usr/local/bin/spark-submit; a job's --conf wins.
spark.master                      local[2]
spark.driver.memory               1g
spark.driver.bindAddress          127.0.0.1
spark.driver.host                 127.0.0.1
spark.ui.enabled                  false
spark.ui.port                     4040
spark.sql.session.timeZone        UTC
spark.sql.shuffle.partitions      4
"""
# ... and on the three-node sandbox's gateway (YARN: the archive, no bind address).
BEFORE_DEFAULTS_3 = """\
# Ansible managed
# Defaults of every job started with /usr/local/bin/spark-submit; a job's --conf wins.
spark.master                      local[2]
spark.driver.memory               1g
# With YARN these defaults travel with every application, and a driver in cluster mode runs on
# another node: the driver's address comes from SPARK_LOCAL_IP (spark-env.sh) here, and from
# the NodeManager's host name in a container.
spark.ui.enabled                  false
spark.ui.port                     4040
spark.sql.session.timeZone        UTC
spark.sql.shuffle.partitions      4
spark.yarn.archive                hdfs://127.0.0.11:8020/apps/spark/spark-3.5.9-yarn-archive.zip
"""
BEFORE_ENV = """\
# Ansible managed
# Sourced by Spark's launch scripts (load-spark-env.sh) before every command.
export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
export HADOOP_CONF_DIR=/etc/hadoop/conf
export SPARK_LOCAL_IP={address}
# Python workers and the driver of PySpark jobs run in the virtualenv that holds pyspark.
export PYSPARK_PYTHON=/opt/spark/venv/bin/python
export PYSPARK_DRIVER_PYTHON=/opt/spark/venv/bin/python
"""
BEFORE_LOG4J2 = """\
# Ansible managed
# Spark's logging: warn and above to stderr, one line per event.
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console

appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yyyy-MM-dd HH:mm:ss} %p %c{1}: %m%n%ex

# Third-party loggers that are noisy even at info.
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
logger.hadoop_native.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop_native.level = error
"""
BEFORE_WRAPPER = """\
#!/bin/sh
# Ansible managed
# {command} of pyspark 3.5.9 from /opt/spark/venv; JAVA_HOME,
# HADOOP_CONF_DIR and the Python of PySpark come from /etc/spark/conf/spark-env.sh.
SPARK_HOME=/opt/spark/venv/lib/python3.11/site-packages/pyspark
SPARK_CONF_DIR=/etc/spark/conf
JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
export SPARK_HOME SPARK_CONF_DIR JAVA_HOME
exec "$SPARK_HOME/bin/{command}" "$@"
"""


def _task(tasks_file: str, name_start: str) -> Dict[str, Any]:
    tasks = yaml.safe_load((ROLE / "tasks" / tasks_file).read_text())
    return next(task for task in tasks if task["name"].startswith(name_start))


class Gateway:
    """The Spark gateway of an inventory (or of none: the role's defaults alone), as a play sees it."""

    def __init__(self, inventory: Optional[Path], node_python: str, **overrides: Any) -> None:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.hostvars import HostVars
        from ansible.vars.manager import VariableManager

        self.loader = DataLoader()
        # Role defaults first, with the defaults of the roles that run the runtime's spark-submit.
        self.variables: Dict[str, Any] = {}
        for role in ("customer_stream", "pipeline_verify", "spark_runtime"):
            self.variables.update(trusted(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())))
        if inventory is not None:
            hosts = InventoryManager(loader=self.loader, sources=[str(inventory)])
            manager = VariableManager(loader=self.loader, inventory=hosts)
            HostVars(inventory=hosts, variable_manager=manager, loader=self.loader)
            self.host = hosts.get_groups_dict()["customer_stream_gateway"][0]
            self.variables.update(manager.get_vars(host=hosts.get_host(self.host)))
        # What the play gives: ansible_managed, the java role's fact, the node's answer to preflight.yml.
        self.variables.update(ansible_managed="Ansible managed", java_home=JAVA_17,
                              __spark_runtime_python_probe={"stdout": node_python + "\n"})
        self.variables.update(trusted(overrides))
        # preflight.yml's own set_fact records the Python version and SPARK_HOME.
        record = _task("preflight.yml", "Record the Python version")
        self.variables.update(trusted(record["vars"]))
        facts = {name: self.value(expression) for name, expression in record["ansible.builtin.set_fact"].items()}
        self.variables.update(facts)

    def value(self, expression: Any, **extra: Any) -> Any:
        from ansible.template import Templar

        return Templar(loader=self.loader, variables=dict(self.variables, **extra)).template(trusted(expression))

    def var(self, name: str) -> Any:
        return self.value("{{ %s }}" % name)

    def render(self, template: str, **extra: Any) -> str:
        return str(self.value((ROLE / "templates" / template).read_text(), **extra))

    def files(self) -> Dict[str, str]:
        """Every file configure.yml writes, by its path on the node."""
        conf, bin_dir = self.var("spark_runtime_conf_dir"), self.var("spark_runtime_bin_dir")
        files = {"%s/%s" % (conf, name): self.render(name + ".j2")
                 for name in ("spark-defaults.conf", "spark-env.sh", "log4j2.properties")}
        for command in self.var("spark_runtime_commands"):
            files["%s/%s" % (bin_dir, command)] = self.render("spark-command.sh.j2", item=command)
        return files


def sandbox(name: str = "sandbox") -> Gateway:
    return Gateway(ROOT / "inventory" / name, "3.11")


def hdp() -> Gateway:
    return Gateway(ROOT / "inventory" / "hdp-example", "3.8")


def sourced(script: str, names: List[str], tmp_path: Path) -> Dict[str, str]:
    """The variables a shell that sources the script sees (as load-spark-env.sh does)."""
    path = tmp_path / "spark-env.sh"
    path.write_text(script)
    printed = subprocess.run(["sh", "-c", '. "$1"; for n in %s; do printf "%%s=%%s\\n" "$n" "$(printenv "$n")"; done'
                              % " ".join(names), "sh", str(path)],
                             capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}).stdout
    return dict(line.split("=", 1) for line in printed.splitlines())


# ---------------------------------------------------------------- the sandbox: nothing changes


@pytest.mark.parametrize("inventory, address, defaults", [("sandbox", "127.0.0.1", BEFORE_DEFAULTS),
                                                          ("sandbox3", "127.0.0.13", BEFORE_DEFAULTS_3)])
def test_the_sandbox_gets_the_files_the_sandbox_spark_role_wrote(inventory, address, defaults):
    files = sandbox(inventory).files()
    expected = {"/etc/spark/conf/spark-defaults.conf": defaults,
                "/etc/spark/conf/spark-env.sh": BEFORE_ENV.format(address=address),
                "/etc/spark/conf/log4j2.properties": BEFORE_LOG4J2}
    expected.update({"/usr/local/bin/" + command: BEFORE_WRAPPER.format(command=command) for command in COMMANDS})
    assert files == expected


def test_the_sandbox_keeps_its_spark_submit_and_wheelhouse_python():
    gateway = sandbox()
    assert gateway.var("cluster_spark_submit") == "/usr/local/bin/spark-submit"
    assert gateway.var("__spark_runtime_python_version") == "3.11"
    assert gateway.var("__spark_runtime_home") == "/opt/spark/venv/lib/python3.11/site-packages/pyspark"
    assert gateway.var("spark_runtime_python") == "/usr/bin/python3"
    assert gateway.var("spark_runtime_verify_hdfs_uri") == "hdfs://127.0.0.1:8020"
    assert gateway.var("spark_runtime_install") is False


# ---------------------------------------------------------------- HDP


def test_hdp_spark_defaults_pass_hdp_version_to_the_driver_and_the_application_master():
    lines = hdp().render("spark-defaults.conf.j2").splitlines()
    settings = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    assert settings == [
        ["spark.master", "local[2]"],
        ["spark.driver.memory", "1g"],
        ["spark.ui.enabled", "false"],
        ["spark.ui.port", "4040"],
        ["spark.sql.session.timeZone", "UTC"],
        ["spark.sql.shuffle.partitions", "4"],
        ["spark.yarn.archive", "hdfs://sandbox-hdp.hortonworks.com:8020/apps/spark3/spark-3.5.9-yarn-archive.zip"],
        ["spark.driver.extraJavaOptions", "-Dhdp.version=3.1.0.0-78"],
        ["spark.yarn.am.extraJavaOptions", "-Dhdp.version=3.1.0.0-78"],
    ]
    assert lines[0] == "# Ansible managed"
    assert lines[1] == "# Defaults of every job started with /opt/spark3/bin/spark-submit; a job's --conf wins."


def test_hdp_spark_env_sets_java_hadoop_yarn_and_the_pythons(tmp_path):
    script = hdp().render("spark-env.sh.j2")
    names = ["JAVA_HOME", "HADOOP_CONF_DIR", "YARN_CONF_DIR", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
             "SPARK_LOCAL_IP"]
    assert sourced(script, names, tmp_path) == {
        "JAVA_HOME": "/usr/lib/jvm/java", "HADOOP_CONF_DIR": "/etc/hadoop/conf", "YARN_CONF_DIR": "/etc/hadoop/conf",
        "PYSPARK_PYTHON": "/opt/spark3/venv/bin/python", "PYSPARK_DRIVER_PYTHON": "/opt/spark3/venv/bin/python",
        # No bind address on a cluster: executors on other nodes must reach the driver.
        "SPARK_LOCAL_IP": ""}


def test_hdp_wrappers_are_in_the_runtime_not_on_path():
    files = hdp().files()
    assert sorted(files) == ["/opt/spark3/bin/" + command for command in sorted(COMMANDS)] + [
        "/opt/spark3/conf/log4j2.properties", "/opt/spark3/conf/spark-defaults.conf", "/opt/spark3/conf/spark-env.sh"]
    wrapper = files["/opt/spark3/bin/spark-submit"].splitlines()
    assert wrapper[4:9] == ["SPARK_HOME=/opt/spark3/venv/lib/python3.8/site-packages/pyspark",
                            "SPARK_CONF_DIR=/opt/spark3/conf", "JAVA_HOME=/usr/lib/jvm/java",
                            "export SPARK_HOME SPARK_CONF_DIR JAVA_HOME", 'exec "$SPARK_HOME/bin/spark-submit" "$@"']


def test_hdp_service_and_verify_run_the_runtime_spark_submit():
    gateway = hdp()
    wrapper = "%s/spark-submit" % gateway.var("spark_runtime_bin_dir")
    assert wrapper == "/opt/spark3/bin/spark-submit"
    assert gateway.var("cluster_spark_submit") == wrapper
    assert gateway.var("customer_stream_spark_submit") == wrapper
    assert gateway.var("pipeline_verify_spark_submit") == wrapper
    # The runtime's Python is the node's SCL 3.8, asked of the node; so is the job's on YARN.
    assert gateway.var("spark_runtime_python") == "/opt/rh/rh-python38/root/usr/bin/python3"
    assert gateway.var("customer_stream_pyspark_python") == "/opt/rh/rh-python38/root/usr/bin/python3"
    assert gateway.var("__spark_runtime_python_version") == "3.8"
    assert gateway.var("spark_runtime_install") is True


@pytest.mark.parametrize("gateway, expected", [
    (hdp, ["/opt/spark3/bin/spark-submit", "/opt/spark3/spark_smoke.py",
           "hdfs://sandbox-hdp.hortonworks.com:8020/tmp/spark-smoke"]),
    # The sandbox's NameNode unit answered "active".
    (sandbox, ["/usr/local/bin/spark-submit", "/opt/spark/spark_smoke.py", "hdfs://127.0.0.1:8020/tmp/spark-smoke"]),
], ids=["hdp-example", "sandbox"])
def test_the_smoke_test_command(gateway, expected):
    """verify.yml's own expressions: on HDP no systemd unit is asked and HDFS is taken as up."""
    node = gateway()
    state_task = _task("verify.yml", "Decide whether the smoke test writes to HDFS")
    state = node.value(state_task["ansible.builtin.set_fact"]["__spark_runtime_hdfs_state"],
                       __spark_runtime_hdfs_active={"stdout": "active"})
    assert state == "active"
    run = _task("verify.yml", "Run the Spark smoke test")
    assert node.value(run["ansible.builtin.command"]["argv"], __spark_runtime_hdfs_state=state) == expected
    assert node.value(run["ansible.builtin.command"]["argv"], __spark_runtime_hdfs_state=state,
                      spark_runtime_verify_master="yarn")[:3] == [expected[0], "--master", "yarn"]


# ---------------------------------------------------------------- the role's defaults on a cluster


def test_the_defaults_alone_shadow_nothing_and_bind_nothing(tmp_path):
    gateway = Gateway(None, "3.10")
    files = gateway.files()
    assert sorted(files) == ["/opt/spark/bin/" + command for command in sorted(COMMANDS)] + [
        "/opt/spark/conf/log4j2.properties", "/opt/spark/conf/spark-defaults.conf", "/opt/spark/conf/spark-env.sh"]
    defaults = files["/opt/spark/conf/spark-defaults.conf"]
    assert "hdp.version" not in defaults and "bindAddress" not in defaults and "spark.yarn.archive" not in defaults
    assert sourced(files["/opt/spark/conf/spark-env.sh"], ["JAVA_HOME", "YARN_CONF_DIR", "SPARK_LOCAL_IP",
                                                           "HADOOP_CONF_DIR"], tmp_path) == {
        "JAVA_HOME": "", "YARN_CONF_DIR": "", "SPARK_LOCAL_IP": "", "HADOOP_CONF_DIR": "/etc/hadoop/conf"}
    assert "JAVA_HOME=" not in files["/opt/spark/bin/spark-submit"]
    assert "SPARK_HOME=/opt/spark/venv/lib/python3.10/site-packages/pyspark" in files["/opt/spark/bin/spark-submit"]


def test_hdp_version_is_written_only_when_set():
    with_version = Gateway(None, "3.8", spark_runtime_hdp_version="3.1.0.0-78").render("spark-defaults.conf.j2")
    assert [line for line in with_version.splitlines() if "hdp.version=" in line] == [
        "spark.driver.extraJavaOptions     -Dhdp.version=3.1.0.0-78",
        "spark.yarn.am.extraJavaOptions    -Dhdp.version=3.1.0.0-78"]
    assert "hdp.version" not in Gateway(None, "3.8").render("spark-defaults.conf.j2")


@pytest.mark.parametrize("java_home", ["jdk", ""])
def test_the_wrapper_runs_spark_with_its_own_configuration_whatever_the_caller_has(tmp_path, java_home):
    """verify.yml and the service run the wrapper from their own environments: it still gets this runtime."""
    venv, conf = tmp_path / "venv", tmp_path / "conf"
    gateway = Gateway(None, "3.8", spark_runtime_venv_dir=str(venv), spark_runtime_conf_dir=str(conf),
                      spark_runtime_java_home=str(tmp_path / java_home) if java_home else "")
    home = venv / "lib" / "python3.8" / "site-packages" / "pyspark"
    (home / "bin").mkdir(parents=True)
    fake = home / "bin" / "spark-submit"
    fake.write_text('#!/bin/sh\necho "SPARK_HOME=$SPARK_HOME SPARK_CONF_DIR=$SPARK_CONF_DIR JAVA_HOME=$JAVA_HOME $*"\n')
    wrapper = tmp_path / "spark-submit"
    wrapper.write_text(gateway.render("spark-command.sh.j2", item="spark-submit"))
    for path in (fake, wrapper):
        path.chmod(0o755)
    caller = {"PATH": os.environ["PATH"], "SPARK_HOME": "/usr/hdp/current/spark2-client",
              "SPARK_CONF_DIR": "/etc/spark2/conf", "JAVA_HOME": "/usr/lib/jvm/caller"}
    out = subprocess.run([str(wrapper), "--master", "local[1]", "job.py"], capture_output=True, text=True,
                         check=True, env=caller).stdout.strip()
    assert out == "SPARK_HOME=%s SPARK_CONF_DIR=%s JAVA_HOME=%s --master local[1] job.py" % (
        home, conf, tmp_path / java_home if java_home else "/usr/lib/jvm/caller")


# ---------------------------------------------------------------- argument specs


def resolved_arguments(gateway: Gateway) -> Dict[str, Any]:
    """What the role's validate_argument_spec task checks: each option the play defines, templated."""
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    return {name: gateway.var(name) for name in options if name in gateway.variables}


@pytest.mark.parametrize("gateway", [sandbox, lambda: sandbox("sandbox3"), hdp, lambda: Gateway(None, "3.8")],
                         ids=["sandbox", "sandbox3", "hdp-example", "defaults"])
def test_each_setting_passes_the_argument_specs(gateway):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    arguments = resolved_arguments(gateway())
    assert {"spark_runtime_install", "spark_runtime_java_home", "spark_runtime_bin_dir"} <= set(arguments)
    result = ArgumentSpecValidator(spec["options"]).validate(arguments, validate_role_argument_spec=True)
    assert result.error_messages == []


def test_a_wrong_setting_fails_the_argument_specs():
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]
    arguments = dict(resolved_arguments(hdp()), spark_runtime_log_level="verbose", spark_runtime_notify="restart")
    errors = ArgumentSpecValidator(spec["options"]).validate(arguments, validate_role_argument_spec=True).error_messages
    assert any("spark_runtime_log_level" in error and "verbose" in error for error in errors), errors


# ---------------------------------------------------------------- the HDP example inventory and the playbooks


def ansible(*command: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH="%s:%s" % (BIN, env.get("PATH", "")))
    result = subprocess.run([str(BIN / command[0])] + list(command[1:]), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(command), result.stdout[-3000:],
                                                           result.stderr[-3000:])
    return result


needs_cli = pytest.mark.skipif(not (BIN / "ansible-playbook").exists(),
                               reason="ansible-playbook is not beside %s: run from the project's venv" % sys.executable)


@needs_cli
def test_the_hdp_example_inventory_resolves(tmp_path):
    # A filled-in vault.yml would need its password; the example's variables are in the other files.
    copy = tmp_path / "hdp-example"
    shutil.copytree(ROOT / "inventory" / "hdp-example", copy, ignore=shutil.ignore_patterns("vault.yml"))
    listed = json.loads(ansible("ansible-inventory", "-i", str(copy), "--list").stdout)
    host = "sandbox-hdp.hortonworks.com"
    assert listed["customer_producers"]["hosts"] == [host]
    assert listed["customer_stream_gateway"]["hosts"] == [host]
    assert sorted(listed["pipeline"]["children"]) == ["customer_producers", "customer_stream_gateway"]
    hostvars = listed["_meta"]["hostvars"][host]
    assert {name: hostvars[name] for name in (
        "ansible_user", "ansible_port", "ansible_python_interpreter", "cluster_kafka_bootstrap_servers",
        "cluster_hdfs_uri", "cluster_yarn_resourcemanager_webapp", "kafka_topics_replication_factor",
        "kafka_topics_min_insync_replicas", "customer_stream_master", "spark_runtime_install",
        "spark_runtime_base_dir", "spark_runtime_java_home", "spark_runtime_hdp_version",
        "spark_runtime_hadoop_conf_dir", "spark_runtime_hdfs_command")} == {
        "ansible_user": "root", "ansible_port": 2222,
        "ansible_python_interpreter": "/opt/rh/rh-python38/root/usr/bin/python3",
        "cluster_kafka_bootstrap_servers": "sandbox-hdp.hortonworks.com:6667",
        "cluster_hdfs_uri": "hdfs://sandbox-hdp.hortonworks.com:8020",
        "cluster_yarn_resourcemanager_webapp": "http://sandbox-hdp.hortonworks.com:8088",
        "kafka_topics_replication_factor": 1, "kafka_topics_min_insync_replicas": 1, "customer_stream_master": "yarn",
        "spark_runtime_install": True, "spark_runtime_base_dir": "/opt/spark3",
        "spark_runtime_java_home": "/usr/lib/jvm/java", "spark_runtime_hdp_version": "3.1.0.0-78",
        "spark_runtime_hadoop_conf_dir": "/etc/hadoop/conf",
        "spark_runtime_hdfs_command": "/usr/hdp/current/hadoop-client/bin/hdfs"}


@needs_cli
def test_the_playbooks_pass_syntax_check_with_the_hdp_example():
    """One ansible-playbook run (seconds each): the pipeline's playbooks, and sandbox.yml, whose
    roles must resolve too (a syntax check reads no inventory variable)."""
    playbooks = ["playbooks/deploy.yml", "playbooks/verify.yml", "playbooks/reset.yml", "sandbox/sandbox.yml"]
    checked = ansible("ansible-playbook", "--syntax-check", "-i", "inventory/hdp-example", *playbooks).stdout
    assert [line for line in checked.splitlines() if line.startswith("playbook:")] == [
        "playbook: " + playbook for playbook in playbooks]


def test_deploy_yml_installs_the_runtime_only_when_the_inventory_asks():
    plays = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    gateway_play = next(play for play in plays if any(
        (role.get("role") if isinstance(role, dict) else role) == "spark_runtime" for role in play.get("roles", [])))
    assert gateway_play["hosts"] == "customer_stream_gateway"
    roles = gateway_play["roles"]
    assert [role["role"] for role in roles] == ["spark_runtime", "spark_kafka_connector", "spark_delta_lake",
                                                "customer_stream"]
    assert roles[0]["when"] == "spark_runtime_install | bool"
    assert roles[0]["vars"] == {"spark_runtime_notify": ["customer_stream restart"]}
    assert yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())["spark_runtime_install"] is False
    assert sandbox().var("spark_runtime_install") is False and hdp().var("spark_runtime_install") is True
