"""The repository root builds as the collection customer_streaming.pipeline, and a user's own
playbook in another folder uses the installed tarball's modules, filter and roles by FQCN."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FQCN = "customer_streaming.pipeline"
MODULES = ("kafka_topic", "s3_bucket", "s3_object", "sandbox_machine", "pip_wheelhouse", "maven_artifacts",
           "project_wheel")

if not (BIN / "ansible-galaxy").exists():
    pytest.skip("ansible-galaxy is not beside %s: run the tests from the project's venv (make test)"
                % sys.executable, allow_module_level=True)


def _run(command, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(map(str, command)), result.stdout[-3000:],
                                                           result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the tarball from the repository, install it into a scratch folder with its own ansible.cfg."""
    scratch = tmp_path_factory.mktemp("user")
    (scratch / "ansible.cfg").write_text("[defaults]\ncollections_path = %s\n" % (scratch / "collections"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(scratch / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(scratch / "tmp"),
               PATH="%s:%s" % (BIN, env.get("PATH", "")))
    _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", scratch, ROOT], scratch, env)
    tarball = next(scratch.glob("customer_streaming-pipeline-*.tar.gz"))
    _run([BIN / "ansible-galaxy", "collection", "install", "-p", scratch / "collections", tarball], scratch, env)
    return {"scratch": scratch, "env": env, "tarball": tarball}


def test_tarball_ships_the_pipeline_not_the_sandbox(installed):
    with tarfile.open(installed["tarball"]) as archive:
        names = set(archive.getnames())
    assert {"MANIFEST.json", "FILES.json"} <= names
    for module in MODULES:
        assert "plugins/modules/%s.py" % module in names
    assert "plugins/doc_fragments/s3.py" in names
    assert "plugins/filter/pipeline_reset_targets.py" in names
    assert "roles/customer_stream/tasks/main.yml" in names
    assert "playbooks/deploy.yml" in names
    # The roles build the package's wheel from the collection's own src/ and pyproject.toml.
    assert "pyproject.toml" in names and "src/customer_pipeline/__init__.py" in names
    leaked = sorted(name for name in names if name.split("/")[0] in ("sandbox", "tests", "collections", ".state",
                                                                      ".cache", ".venv", "bench", ".git"))
    assert leaked == []


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_documents_each_module_from_the_installed_collection(installed, module):
    result = _run([BIN / "ansible-doc", "--json", "%s.%s" % (FQCN, module)], installed["scratch"], installed["env"])
    doc = json.loads(result.stdout)["%s.%s" % (FQCN, module)]["doc"]
    assert doc["module"] == module
    assert str(installed["scratch"]) in doc["filename"]
    if module.startswith("s3_"):
        # The shared options come from the doc fragment, written once.
        assert {"endpoint_url", "region", "access_key_id", "secret_access_key"} <= set(doc["options"])


def test_users_playbook_calls_modules_filter_and_roles_by_fqcn(installed):
    scratch = installed["scratch"]
    playbook = scratch / "site.yml"
    playbook.write_text(textwrap.dedent("""\
        - name: A user's own playbook, outside the project
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Check reset paths with the collection's filter
              ansible.builtin.set_fact:
                targets: "{{ {'ok': '/user/maria_dev/x', 'bad': '/'} | customer_streaming.pipeline.pipeline_reset_targets(['/user/maria_dev/']) }}"

            - name: Ask a store that is not there for a bucket (module and its module_utils load)
              customer_streaming.pipeline.s3_bucket:
                name: customers
                endpoint_url: http://127.0.0.1:9
                access_key_id: user
                secret_access_key: not-a-secret-at-all
              register: bucket
              ignore_errors: true

            - name: Write what happened
              ansible.builtin.copy:
                content: "{{ {'targets': targets, 'bucket_failed': bucket.failed, 'bucket_msg': bucket.msg} | to_json }}"
                dest: "{{ playbook_dir }}/result.json"
                mode: "0600"

            - name: Validate a role's arguments from the collection (argument_specs ship with it)
              ansible.builtin.include_role:
                name: customer_streaming.pipeline.pipeline_reset
                tasks_from: preflight.yml
              vars:
                pipeline_reset_paths: {checkpoint: /user/maria_dev/checkpoints/x}
                pipeline_reset_allowed_prefixes: [/user/maria_dev/]
        """))
    _run([BIN / "ansible-playbook", "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
          playbook], scratch, installed["env"])
    result = json.loads((scratch / "result.json").read_text())
    assert [(t["variable"], t["problem"]) for t in result["targets"]] == [("ok", ""), ("bad", "is the root folder /")]
    assert result["bucket_failed"] is True
    assert "127.0.0.1:9" in result["bucket_msg"] and "not-a-secret-at-all" not in result["bucket_msg"]


def test_galaxy_yml_names_the_collection_the_tasks_use():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert "%s.%s" % (galaxy["namespace"], galaxy["name"]) == FQCN
    link = ROOT / "collections" / "ansible_collections" / galaxy["namespace"] / galaxy["name"]
    assert link.resolve() == ROOT
    # Every task that calls a project module names it by its FQCN.
    bare = []
    for tasks in list((ROOT / "roles").rglob("*.yml")) + list((ROOT / "sandbox").rglob("*.yml")):
        for line in tasks.read_text().splitlines():
            stripped = line.strip()
            if any(stripped == "%s:" % module or stripped == "- %s:" % module for module in MODULES):
                bare.append("%s: %s" % (tasks.relative_to(ROOT), stripped))
    assert bare == []
    assert shutil.which("ansible-galaxy", path=str(BIN))
