#!/usr/bin/env python3
"""Count what the HDFS datasets hold per source object: verify.yml's step on the node.

verify.yml ships this file with ansible.builtin.script and runs it with the producer's Python:

    verify_written.py --spark-submit /usr/local/bin/spark-submit --hdfs-user maria_dev \\
        --py-files /opt/customer-pipeline/stream/customer_pipeline.zip \\
        --config /etc/customer-pipeline/stream.ini [--env-file /etc/customer-pipeline/stream.env] \\
        [--jars-dir /opt/customer-pipeline/jars-delta] [--expected EXPECTED.json]

It runs itself under Spark, as verify.yml ran a runner script it wrote on the node before:

    HADOOP_USER_NAME=maria_dev spark-submit --master 'local[1]' --conf spark.ui.enabled=false \\
        --py-files .../customer_pipeline.zip verify_written.py --config .../stream.ini

and there calls customer_pipeline.verify.written.main with its arguments. Of everything
Spark prints, only what follows the `VERIFY_WRITTEN ` marker is printed (one JSON line).
Exit status: spark-submit's when it fails, 1 when it printed no marker line (both with the
tail of its output), 0 otherwise. Runs on the nodes' Python 3.8 too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Dict, List, Mapping, Optional, Sequence

# customer_pipeline.verify.written.MARKER (this side runs without the package).
MARKER = "VERIFY_WRITTEN "
MASTER = "local[1]"
TAIL_LINES = 20
LAUNCH_OPTION = "--spark-submit"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="verify_written.py", description=__doc__.splitlines()[0])
    parser.add_argument(LAUNCH_OPTION, dest="spark_submit", required=True, help="spark-submit command on the node")
    parser.add_argument("--py-files", dest="py_files", required=True,
                        help="the package for Spark's Python (customer_pipeline.zip)")
    parser.add_argument("--config", required=True, help="settings of the Spark job (stream.ini)")
    parser.add_argument("--hdfs-user", dest="hdfs_user", help="HDFS user the datasets are read as (HADOOP_USER_NAME)")
    parser.add_argument("--jars-dir", dest="jars_dirs", action="append", default=[],
                        help="a folder whose jars Spark loads (Delta Lake's, to read tables); missing: none")
    parser.add_argument("--env-file", dest="env_files", action="append", default=[],
                        help="an EnvironmentFile of the job's unit (stream.env): its NAME=value lines join Spark's "
                             "environment, so ${NAME} in stream.ini resolves as in the service; missing: none")
    parser.add_argument("--expected", help="verify.source expected's JSON (the current version of each object); "
                                           "without it, every row counts as of the current version")
    return parser.parse_args(list(argv))


def environment_file(path: str) -> Dict[str, str]:
    """The NAME=value lines of a systemd EnvironmentFile as the roles write it (values unquoted;
    blank lines and # or ; comments skipped); {} when the file does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return {}
    values = {}
    for line in lines:
        line = line.strip()
        name, equals, value = line.partition("=")
        if equals and line[:1] not in ("#", ";"):
            values[name.strip()] = value
    return values


def folder_jars(folders: Sequence[str]) -> List[str]:
    """The jars of the folders that exist, sorted: spark-submit's --jars."""
    jars = []
    for folder in folders:
        if os.path.isdir(folder):
            jars.extend(sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".jar")))
    return jars


def spark_command(args: argparse.Namespace, script: str) -> List[str]:
    """spark-submit running this script inside Spark with the job's settings.

    The spark-submit command is split like the shell split it before (a path, or a path and options).
    """
    jars = folder_jars(args.jars_dirs)
    return shlex.split(args.spark_submit) + [
        "--master", MASTER, "--conf", "spark.ui.enabled=false"] + (["--jars", ",".join(jars)] if jars else []) + [
        "--py-files", args.py_files, script, "--config", args.config] + (
            ["--expected", args.expected] if args.expected else [])


def spark_env(environ: Mapping[str, str], hdfs_user: Optional[str], env_files: Sequence[str] = ()) -> Dict[str, str]:
    """Spark's environment: ours, the env files' variables (secrets stay out of the command
    line), and HADOOP_USER_NAME."""
    env = dict(environ)
    for path in env_files:
        env.update(environment_file(path))
    if hdfs_user:
        env["HADOOP_USER_NAME"] = hdfs_user
    return env


def marker_lines(stdout: str) -> List[str]:
    """What follows the marker on each line that starts with it (Spark's own lines dropped)."""
    return [line[len(MARKER):].rstrip("\r") for line in stdout.splitlines() if line.startswith(MARKER)]


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines()[-lines:])


def output_tail(result: "subprocess.CompletedProcess[str]") -> str:
    """The ends of Spark's stderr (its logs) and of stdout, where spark-submit puts the Python
    program's output and errors, e.g. `error: stream.ini: cannot read the configuration file`."""
    return "\n".join(part for part in (tail(result.stderr or ""), tail(result.stdout or "")) if part)


def launch(argv: Sequence[str], run=subprocess.run, environ: Optional[Mapping[str, str]] = None,
           script: Optional[str] = None) -> int:
    """Run this script under spark-submit and print what it found; returns the exit status."""
    args = parse_args(argv)
    command = spark_command(args, script or os.path.abspath(__file__))
    try:
        result = run(command, env=spark_env(os.environ if environ is None else environ, args.hdfs_user, args.env_files),
                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     universal_newlines=True, check=False)
    except OSError as error:
        print("verify_written: cannot run %s: %s" % (command[0], error), file=sys.stderr)
        return 127
    if result.returncode != 0:
        print("verify_written: %s exited with %d:\n%s" % (" ".join(command), result.returncode, output_tail(result)),
              file=sys.stderr)
        return result.returncode
    found = marker_lines(result.stdout)
    if not found:
        print("verify_written: %s printed no %r line:\n%s" % (" ".join(command), MARKER.strip(), output_tail(result)),
              file=sys.stderr)
        return 1
    print("\n".join(found))
    return 0


def in_spark(argv: Sequence[str]) -> int:
    """Under spark-submit: the package comes with --py-files."""
    from customer_pipeline.verify.written import main as written_main

    return written_main(list(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    launching = any(arg == LAUNCH_OPTION or arg.startswith(LAUNCH_OPTION + "=") for arg in argv)
    return launch(argv) if launching else in_spark(argv)


if __name__ == "__main__":
    sys.exit(main())
