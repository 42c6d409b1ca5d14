"""roles/pipeline_verify/files/verify_written.py, the script verify.yml ships to the node: its
arguments, the spark-submit command it runs (the one verify.yml ran before), and its output."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from customer_pipeline.verify import written

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "pipeline_verify" / "files" / "verify_written.py"
ARGS = ["--spark-submit", "/usr/local/bin/spark-submit", "--hdfs-user", "maria_dev",
        "--py-files", "/opt/customer-pipeline/stream/customer_pipeline.zip",
        "--config", "/etc/customer-pipeline/stream.ini"]
COUNTS = {"alerts": {}, "usa": {"s3://customers/incoming/a.csv": {"duplicates": 0, "rows": 6}}}


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("verify_written_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeRun(object):
    def __init__(self, returncode=0, stdout="", stderr=""):
        self.result = subprocess.CompletedProcess([], returncode, stdout, stderr)
        self.calls = []

    def __call__(self, command, **kwargs):
        self.calls.append((command, kwargs))
        return self.result


def test_the_marker_is_the_packages(script):
    assert script.MARKER == written.MARKER


def test_spark_command_is_the_one_verify_yml_ran(script, tmp_path):
    args = script.parse_args(ARGS)
    assert script.spark_command(args, "/tmp/x/verify_written.py") == [
        "/usr/local/bin/spark-submit", "--master", "local[1]", "--conf", "spark.ui.enabled=false",
        "--py-files", "/opt/customer-pipeline/stream/customer_pipeline.zip",
        "/tmp/x/verify_written.py", "--config", "/etc/customer-pipeline/stream.ini"]
    # Delta Lake's jars when their folder has some (a dataset of output format delta is read through them).
    jars = tmp_path / "jars-delta"
    jars.mkdir()
    for name in ("delta-storage-3.3.3.jar", "delta-spark_2.12-3.3.3.jar", "README"):
        (jars / name).write_text("")
    args = script.parse_args(ARGS + ["--jars-dir", str(jars), "--jars-dir", str(tmp_path / "missing")])
    assert script.spark_command(args, "v.py")[5:9] == [
        "--jars", "%s/delta-spark_2.12-3.3.3.jar,%s/delta-storage-3.3.3.jar" % (jars, jars), "--py-files",
        "/opt/customer-pipeline/stream/customer_pipeline.zip"]
    # A command with options, split as the shell did.
    args = script.parse_args(["--spark-submit=/opt/spark3/bin/spark-submit --verbose"] + ARGS[2:])
    assert script.spark_command(args, "s.py")[:3] == ["/opt/spark3/bin/spark-submit", "--verbose", "--master"]


@pytest.mark.parametrize("missing", ["--spark-submit", "--py-files", "--config"])
def test_each_required_option_is_named_when_missing(script, missing, capsys):
    argv = list(ARGS)
    index = argv.index(missing)
    del argv[index:index + 2]
    with pytest.raises(SystemExit) as exit_:
        script.parse_args(argv)
    assert exit_.value.code == 2
    assert missing in capsys.readouterr().err


def test_hdfs_user_is_optional_and_sets_hadoop_user_name(script):
    assert script.parse_args([a for a in ARGS if a not in ("--hdfs-user", "maria_dev")]).hdfs_user is None
    assert script.spark_env({"PATH": "/bin"}, "maria_dev") == {"PATH": "/bin", "HADOOP_USER_NAME": "maria_dev"}
    assert script.spark_env({"PATH": "/bin", "HADOOP_USER_NAME": "x"}, None)["HADOOP_USER_NAME"] == "x"


def test_the_jobs_env_file_reaches_spark_and_never_its_command_line(script, tmp_path):
    """stream.ini's ${NAME} (the SASL password) resolves under verify as in the service: the
    variables of stream.env go into Spark's environment, not onto its command line."""
    env_file = tmp_path / "stream.env"
    env_file.write_text("# Ansible managed\n\nCUSTOMER_STREAM_KAFKA_SASL_PASSWORD=pw=with=equals\n; note\nEMPTY=\n")
    args = script.parse_args(ARGS + ["--env-file", str(env_file), "--env-file", str(tmp_path / "missing.env")])
    env = script.spark_env({"PATH": "/bin"}, args.hdfs_user, args.env_files)
    assert env == {"PATH": "/bin", "HADOOP_USER_NAME": "maria_dev",
                   "CUSTOMER_STREAM_KAFKA_SASL_PASSWORD": "pw=with=equals", "EMPTY": ""}
    assert not any("pw=with=equals" in part for part in script.spark_command(args, "/tmp/x/verify_written.py"))


def test_launch_prints_only_the_marker_payload(script, capsys):
    stdout = "Setting default log level\n%s%s\r\nbye\n" % (written.MARKER, json.dumps(COUNTS, sort_keys=True))
    run = FakeRun(0, stdout, "24/01/01 WARN NativeCodeLoader: ...\n")
    assert script.launch(ARGS, run=run, environ={"PATH": "/bin"}, script="/tmp/s.py") == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == COUNTS and out.count("\n") == 1 and err == ""
    command, kwargs = run.calls[0]
    assert command[-3:] == ["/tmp/s.py", "--config", "/etc/customer-pipeline/stream.ini"]
    assert kwargs["env"] == {"PATH": "/bin", "HADOOP_USER_NAME": "maria_dev"}
    assert kwargs["stdin"] == subprocess.DEVNULL


def test_a_failing_spark_submit_keeps_its_code_and_shows_the_tail_of_its_output(script, capsys):
    # spark-submit sends the Python program's stderr to its stdout; its own logs go to stderr.
    stderr = "".join("log %d\n" % i for i in range(100))
    stdout = "error: /etc/customer-pipeline/stream.ini: cannot read the configuration file\n"
    assert script.launch(ARGS, run=FakeRun(2, stdout, stderr), environ={}) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("verify_written: /usr/local/bin/spark-submit --master local[1] ")
    assert err.rstrip().endswith("log 99\nerror: /etc/customer-pipeline/stream.ini: cannot read the configuration file")
    assert "log 79\n" not in err


def test_no_marker_line_is_a_failure(script, capsys):
    assert script.launch(ARGS, run=FakeRun(0, "nothing here\n", ""), environ={}) == 1
    assert "printed no 'VERIFY_WRITTEN' line" in capsys.readouterr().err


def test_a_missing_spark_submit_is_named(script, capsys):
    def run(command, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    assert script.launch(ARGS, run=run, environ={}) == 127
    assert "cannot run /usr/local/bin/spark-submit" in capsys.readouterr().err


def test_under_spark_it_runs_the_packages_written_main(script, monkeypatch):
    seen = []
    monkeypatch.setattr(written, "main", lambda argv=None: seen.append(argv) or 0)
    assert script.main(["--config", "/etc/customer-pipeline/stream.ini"]) == 0
    assert seen == [["--config", "/etc/customer-pipeline/stream.ini"]]


def test_the_script_runs_itself_under_a_spark_submit(tmp_path):
    """The file as the node runs it: a fake spark-submit runs it again, as Spark's Python would."""
    package = tmp_path / "pkg" / "customer_pipeline" / "verify"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "written.py").write_text(textwrap.dedent("""\
        import json, os, sys
        def main(argv):
            print("INFO some Spark line")
            print("VERIFY_WRITTEN " + json.dumps({"argv": argv, "user": os.environ.get("HADOOP_USER_NAME")}))
            print("WARN Spark logs on stderr", file=sys.stderr)
            return 0
        """))
    spark_submit = tmp_path / "spark-submit"
    # Skips the options up to the script, then runs it with the package (its --py-files) on the path.
    spark_submit.write_text(textwrap.dedent("""\
        #!/bin/sh
        while [ "${1#-}" != "$1" ]; do shift 2; done
        exec env PYTHONPATH=%s %s "$@"
        """ % (tmp_path / "pkg", sys.executable)))
    spark_submit.chmod(0o755)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--spark-submit", str(spark_submit), "--hdfs-user", "maria_dev",
         "--py-files", "customer_pipeline.zip", "--config", "/etc/customer-pipeline/stream.ini"],
        capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"argv": ["--config", "/etc/customer-pipeline/stream.ini"],
                                         "user": "maria_dev"}
    assert result.stderr == ""
