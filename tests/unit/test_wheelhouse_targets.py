"""The role's real pins build, from PyPI, a wheelhouse that installs offline on each node Python.

pipeline_python_requirements is one pinned list with python_version markers. Here the
pip_wheelhouse module's build function resolves it from PyPI for Python 3.8 (HDP 3.1 nodes on
the SCL's rh-python38) and 3.11 (the Debian 12 sandbox), into a tmp folder shared by the
session; then a virtualenv of a real CPython of that version installs requirements.lock as the
role does on a node (no index, hashes required) and imports boto3 and kafka, and the project's
own package is compiled and its producer imported on 3.8.

Needs PyPI (or PIP_INDEX_URL's mirror) and CPython 3.8 and 3.11 (pyenv's, or python3.8 and
python3.11 on PATH); without them the tests are skipped with the reason printed, never passed.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List

import pytest
import yaml

pytest.importorskip("ansible.module_utils.basic")
pytest.importorskip("packaging.requirements")

from ansible_collections.customer_streaming.pipeline.plugins.module_utils import wheel_requirements  # noqa: E402
from ansible_collections.customer_streaming.pipeline.plugins.modules import pip_wheelhouse  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PINS: List[str] = yaml.safe_load((ROOT / "roles/pipeline_python/defaults/main.yml").read_text())[
    "pipeline_python_requirements"]
PLATFORMS = ["manylinux2014_x86_64"]
INDEX = os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"

# What each node Python gets: the newest boto3 line that still installs there, with its own
# s3transfer, the urllib3 botocore asks for on that Python, and jmespath 1.0 below 3.9.
COMMON = {"kafka-python": "3.0.12", "python-dateutil": "2.9.0.post0", "six": "1.17.0"}
EXPECTED: Dict[str, Dict[str, str]] = {
    "3.8": dict(COMMON, boto3="1.37.38", botocore="1.37.38", s3transfer="0.11.5", jmespath="1.0.1",
                urllib3="1.26.20"),
    "3.9": dict(COMMON, boto3="1.42.97", botocore="1.42.97", s3transfer="0.16.1", jmespath="1.1.0",
                urllib3="1.26.20"),
    # 3.10 and later: the pins of before markers, so the 3.11 sandbox keeps the same wheels.
    "3.10": dict(COMMON, boto3="1.44.8", botocore="1.44.8", s3transfer="0.19.3", jmespath="1.1.0", urllib3="2.8.0"),
}
EXPECTED["3.11"] = EXPECTED["3.12"] = EXPECTED["3.13"] = EXPECTED["3.10"]


def wheel_files(python_version: str) -> List[str]:
    """The wheel file names of the expected set (every one is a pure-Python wheel)."""
    tags = {"python-dateutil": "py2.py3", "six": "py2.py3",
            "urllib3": "py2.py3" if EXPECTED[python_version]["urllib3"].startswith("1.") else "py3"}
    return sorted("%s-%s-%s-none-any.whl" % (name.replace("-", "_"), version, tags.get(name, "py3"))
                  for name, version in EXPECTED[python_version].items())


@pytest.mark.parametrize("python_version", sorted(EXPECTED))
def test_the_pins_give_each_node_python_one_version_of_each_project(python_version):
    taken = wheel_requirements.target_requirements(PINS, python_version, PLATFORMS)
    wheel_requirements.check_pinned(taken)
    assert dict(line.split("==") for line in taken) == EXPECTED[python_version]


# --- The role learns each node's Python -------------------------------------------------------------

VERSION_PLAY = """\
- name: Learn each node's Python as deploy.yml's pipeline_python does
  hosts: all
  gather_facts: false
  tasks:
    - name: Learn it
      ansible.builtin.include_role:
        name: customer_streaming.pipeline.pipeline_python
        tasks_from: version.yml
    - name: Resolve the producer's client as customer_producer does
      ansible.builtin.include_vars:
        file: %s/roles/customer_producer/vars/main.yml
    - name: Show it
      ansible.builtin.debug:
        msg: "wheelhouse {{ inventory_hostname }} pipeline-deps-py{{ __pipeline_python_set }} {{ __customer_producer_client }}"
""" % ROOT


def fake_interpreter(folder: Path, answer: str) -> str:
    """A stand-in for a node's interpreter that gives the role's question one answer.

    For the C libraries this machine has not: glibc 2.17 (CentOS 7) and musl (platform.libc_ver() says nothing).
    """
    path = folder / ("python-" + answer.replace(" ", "-"))
    path.write_text("#!/bin/sh\necho '%s'\n" % answer)
    path.chmod(0o755)
    return str(path)


def run_version_play(tmp_path: Path, hosts: Dict[str, Dict[str, str]]) -> subprocess.CompletedProcess:
    inventory = {"all": {"hosts": hosts, "vars": {"ansible_connection": "local",
                                                  "ansible_python_interpreter": sys.executable,
                                                  "customer_producer_client": "auto"}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(VERSION_PLAY)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
               str(tmp_path / "play.yml"), "--check"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_role_builds_for_the_version_and_c_library_each_interpreter_reports(tmp_path):
    """Nodes on 3.8 and 3.11 get theirs; an explicit pipeline_python_version wins over the interpreter.

    Client auto: confluent-kafka (and a wheelhouse with it) where glibc is 2.28 or newer, as on
    this machine; kafka-python on CentOS 7's glibc 2.17 and on a C library that is not glibc.
    In --check: the question is read-only and asked in check mode too, or --check would build
    (and report) a wheelhouse for no version.
    """
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is not beside %s: run the tests from the project's venv" % sys.executable)
    old, new = interpreter("3.8"), interpreter("3.11")
    hosts = {"debian-py38": {"pipeline_python_interpreter": old}, "debian12": {"pipeline_python_interpreter": new},
             "pinned": {"pipeline_python_interpreter": new, "pipeline_python_version": "3.12",
                        "customer_producer_client": "kafka-python"},
             "centos7": {"pipeline_python_interpreter": fake_interpreter(tmp_path, "3.8 2.17")},
             "alpine": {"pipeline_python_interpreter": fake_interpreter(tmp_path, "3.11 none")}}
    result = run_version_play(tmp_path, hosts)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert sorted(set(re.findall(r'"msg": "wheelhouse (\S+ \S+ \S+)"', result.stdout))) == [
        "alpine pipeline-deps-py3.11 kafka-python", "centos7 pipeline-deps-py3.8 kafka-python",
        "debian-py38 pipeline-deps-py3.8-confluent confluent-kafka",
        "debian12 pipeline-deps-py3.11-confluent confluent-kafka", "pinned pipeline-deps-py3.12 kafka-python"]
    assert re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", result.stdout, flags=re.M) == [
        ("alpine", "0"), ("centos7", "0"), ("debian-py38", "0"), ("debian12", "0"), ("pinned", "0")]


def test_confluent_kafka_asked_for_on_glibc_2_17_is_refused_naming_the_host_and_the_way_out(tmp_path):
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is not beside %s: run the tests from the project's venv" % sys.executable)
    hosts = {"centos7": {"pipeline_python_interpreter": fake_interpreter(tmp_path, "3.8 2.17"),
                         "customer_producer_client": "confluent-kafka"}}
    result = run_version_play(tmp_path, hosts)
    assert result.returncode != 0
    assert ("centos7: customer_producer_client confluent-kafka needs glibc 2.28 or newer (its wheel is manylinux_2_28),"
            " and %s runs on glibc 2.17" % hosts["centos7"]["pipeline_python_interpreter"]) in result.stdout
    assert "set customer_producer_client to auto or kafka-python for this host" in result.stdout


# --- From PyPI ---------------------------------------------------------------------------------


def interpreter(version: str) -> str:
    """A CPython of major.minor version on this machine, or a skip naming where it was looked for."""
    home = os.path.expanduser("~")
    candidates = sorted(glob.glob("%s/.pyenv/versions/%s.*/bin/python3" % (home, version)), reverse=True)
    candidates += sorted(glob.glob("/root/.pyenv/versions/%s.*/bin/python3" % version), reverse=True)
    candidates += ["/usr/bin/python%s" % version, "/usr/local/bin/python%s" % version]
    candidates = list(dict.fromkeys(candidates))
    for path in candidates:
        if os.access(path, os.X_OK):
            result = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                    capture_output=True, text=True, check=False)
            if result.returncode == 0 and result.stdout.strip() == version:
                return path
    pytest.skip("no CPython %s on this machine (looked for %s)" % (version, ", ".join(candidates)))


@pytest.fixture(scope="session")
def pypi() -> str:
    """The index, or a skip saying it does not answer."""
    probe = INDEX.rstrip("/") + "/six/"
    try:
        with urllib.request.urlopen(probe, timeout=15) as response:  # noqa: S310 - the configured index
            response.read(1)
    except OSError as exc:
        pytest.skip("the package index %s does not answer (%s): cannot resolve the wheelhouses" % (probe, exc))
    return INDEX


@pytest.fixture(scope="session")
def wheelhouse(pypi, tmp_path_factory) -> Callable[[str], Path]:
    """Build (once per session) the wheelhouse of a node Python with the role's pins, as the role does."""
    folder = tmp_path_factory.mktemp("wheelhouses")
    built: Dict[str, Path] = {}

    def build(python_version: str) -> Path:
        if python_version not in built:
            dest = folder / ("pipeline-deps-py%s" % python_version)
            try:
                result = pip_wheelhouse.ensure_wheelhouse(str(dest), PINS, python_version, PLATFORMS, index_url=pypi,
                                                          python=sys.executable, dependencies="pinned")
            except pip_wheelhouse.ArtifactError as exc:
                if "Could not fetch URL" in str(exc) or "NewConnectionError" in str(exc):
                    pytest.skip("PyPI went away while building the wheelhouse for %s: %s" % (python_version, exc))
                raise
            assert result["changed"] is True and result["built_from_sdist"] == []
            built[python_version] = dest
        return built[python_version]

    return build


@pytest.fixture(scope="session")
def venv(wheelhouse, tmp_path_factory) -> Callable[[str], Path]:
    """A virtualenv of CPython <version> with the wheelhouse installed the way install.yml does, offline."""
    folder = tmp_path_factory.mktemp("venvs")
    made: Dict[str, Path] = {}

    def make(python_version: str) -> Path:
        if python_version not in made:
            python = interpreter(python_version)
            path = folder / ("py%s" % python_version)
            run([python, "-m", "venv", str(path)])
            house = wheelhouse(python_version)
            run([str(path / "bin/pip"), "install", "--isolated", "--no-index", "--quiet", "--disable-pip-version-check",
                 "--require-hashes", "--find-links", str(house), "-r", str(house / "requirements.lock")])
            made[python_version] = path
        return made[python_version]

    return make


def run(argv: List[str], **kwargs) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PIP_", "PYTHON"))}
    env.update(kwargs.pop("env", {}))
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=300, **kwargs)
    assert result.returncode == 0, "%s exited with %d\n%s\n%s" % (" ".join(argv), result.returncode,
                                                                   result.stdout[-3000:], result.stderr[-3000:])
    return result


@pytest.mark.parametrize("python_version", ["3.8", "3.11"])
def test_the_wheelhouse_of_each_node_python_holds_its_pins(wheelhouse, python_version):
    house = wheelhouse(python_version)
    assert sorted(name for name in os.listdir(house) if name.endswith(".whl")) == wheel_files(python_version)
    lock = (house / "requirements.lock").read_text().splitlines()
    assert [line.split(" ")[0] for line in lock] == sorted(
        "%s==%s" % (name.replace("-", "_"), version) for name, version in EXPECTED[python_version].items())
    assert all(line.split(" ")[1].startswith("--hash=sha256:") for line in lock)


def test_a_second_build_reads_no_index(wheelhouse):
    house = wheelhouse("3.8")

    def no_pip(argv, env=None, cwd=None):
        raise AssertionError("pip ran again: %s" % argv)

    again = pip_wheelhouse.ensure_wheelhouse(str(house), PINS, "3.8", PLATFORMS, index_url=INDEX, run=no_pip,
                                             dependencies="pinned")
    assert (again["changed"], again["reason"]) == (False, "none")


@pytest.mark.skipif(sys.version_info < (3, 10), reason="pip gives the 3.10+ urllib3 only from a 3.10+ controller")
def test_pips_own_resolution_would_give_a_3_8_node_the_controllers_urllib3(pypi, tmp_path):
    """Why the role pins the whole set: pip evaluates botocore's markers for this controller (pypa/pip#11010)."""
    top = wheel_requirements.target_requirements([pin for pin in PINS if pin.startswith(("kafka-python", "boto3=="))],
                                                 "3.8", PLATFORMS)
    resolved = pip_wheelhouse.ensure_wheelhouse(str(tmp_path / "resolved"), top, "3.8", PLATFORMS, index_url=pypi,
                                                python=sys.executable)
    assert [name for name in resolved["wheels"] if name.startswith("urllib3-2.")], resolved["wheels"]
    unmet = wheel_requirements.unmet_dependencies(str(tmp_path / "resolved"), top, "3.8", PLATFORMS)
    assert len(unmet) == 1 and unmet[0].startswith(
        "botocore 1.37.38 needs urllib3<1.27,>=1.25.4 on CPython 3.8, and the set has urllib3 2."), unmet


@pytest.mark.parametrize("python_version", ["3.8", "3.11"])
def test_the_lock_installs_offline_and_the_clients_import(venv, python_version):
    path = venv(python_version)
    versions = run([str(path / "bin/python"), "-c",
                    "import boto3, botocore, kafka, urllib3, s3transfer, jmespath; "
                    "print(boto3.__version__, botocore.__version__, kafka.__version__, urllib3.__version__)"])
    expected = EXPECTED[python_version]
    assert versions.stdout.split() == [expected["boto3"], expected["botocore"], expected["kafka-python"],
                                       expected["urllib3"]]
    # Every installed distribution's requirements hold on this Python.
    assert "No broken requirements found." in run([str(path / "bin/pip"), "check", "--disable-pip-version-check"]).stdout


# --- With confluent-kafka, the producer's fast client ---------------------------------------------

DEFAULTS = yaml.safe_load((ROOT / "roles/pipeline_python/defaults/main.yml").read_text())
CONFLUENT_PINS: List[str] = PINS + DEFAULTS["pipeline_python_confluent_kafka_requirements"]
# The platforms of a wheelhouse with confluent-kafka (build.yml): its wheel is manylinux_2_28 only.
CONFLUENT_PLATFORMS: List[str] = (DEFAULTS["pipeline_python_confluent_kafka_platforms"]
                                  + DEFAULTS["pipeline_python_platforms"])


@pytest.mark.parametrize("python_version", ["3.8", "3.11"])
def test_the_confluent_kafka_wheelhouse_installs_offline_and_the_adapter_loads(pypi, tmp_path, python_version):
    house = tmp_path / "house"
    pip_wheelhouse.ensure_wheelhouse(str(house), CONFLUENT_PINS, python_version, CONFLUENT_PLATFORMS, index_url=pypi,
                                     python=sys.executable, dependencies="pinned")
    wheels = sorted(name for name in os.listdir(house) if name.endswith(".whl"))
    tag = "cp%s" % python_version.replace(".", "")
    assert "confluent_kafka-2.16.1-%s-%s-manylinux_2_28_x86_64.whl" % (tag, tag) in wheels
    # typing-extensions only where confluent-kafka asks for it; the other wheels stay pure Python.
    assert any(name.startswith("typing_extensions-") for name in wheels) == (python_version == "3.8")
    assert [name for name in wheels if not name.endswith("-none-any.whl")] == [
        "confluent_kafka-2.16.1-%s-%s-manylinux_2_28_x86_64.whl" % (tag, tag)]
    python = interpreter(python_version)
    path = tmp_path / "venv"
    run([python, "-m", "venv", str(path)])
    run([str(path / "bin/pip"), "install", "--isolated", "--no-index", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--find-links", str(house), "-r", str(house / "requirements.lock")])
    loaded = run([str(path / "bin/python"), "-c",
                  "import confluent_kafka, kafka, boto3; "
                  "from customer_pipeline.producer.confluent_client import ConfluentTransactionalProducer; "
                  "print(confluent_kafka.version())"],
                 env={"PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"})
    assert loaded.stdout.strip() == "2.16.1"


# --- The project's package on Python 3.8 -------------------------------------------------------------


def test_the_package_compiles_on_python_3_8(tmp_path):
    """Syntax only, every module (the Spark job's too); the bytecode goes to tmp_path, not src/."""
    python = interpreter("3.8")
    run([python, "-m", "compileall", "-q", "-f", str(ROOT / "src" / "customer_pipeline")],
        env={"PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")})
    assert list((tmp_path / "pycache").rglob("*.cpython-38.pyc")), "compileall wrote no bytecode"


# Modules that run under Spark's own Python (spark-submit, customer_stream_pyspark_python) and
# import pyspark, which the producer's virtualenv does not hold.
SPARK_ONLY = {"customer_pipeline.stream.job", "customer_pipeline.stream.rules", "customer_pipeline.stream.batch_commit",
              "customer_pipeline.stream.delta_commit", "customer_pipeline.stream.partition_compaction"}


def test_the_producer_and_the_node_tools_import_and_start_on_python_3_8(venv):
    """Every module a node runs in the producer's virtualenv or with pipeline_python_interpreter:
    the producer, verify.yml's customer_pipeline.verify.source, the YARN supervisor, the contract."""
    python = str(venv("3.8") / "bin/python")
    src = ROOT / "src"
    modules = sorted(".".join(path.relative_to(src).with_suffix("").parts).replace(".__init__", "")
                     for path in (src / "customer_pipeline").rglob("*.py"))
    modules = [name for name in modules if name not in SPARK_ONLY]
    assert {"customer_pipeline.producer.service", "customer_pipeline.producer.__main__",
            "customer_pipeline.verify.source", "customer_pipeline.stream.yarn_supervisor"} <= set(modules)
    env = {"PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    imported = run([python, "-c", "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
                    "print(sys.version_info[:2])", *modules], env=env)
    assert imported.stdout.strip() == "(3, 8)"
    usage = run([python, "-m", "customer_pipeline.producer", "--help"], env=env)
    assert usage.stdout.startswith("usage: customer-producer ")
