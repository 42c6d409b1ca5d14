#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module project_wheel: a Python project's wheel, built reproducibly."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: project_wheel
short_description: Build a Python project's wheel reproducibly, replacing it only when its bytes differ
description:
  - Builds the wheel of the project in O(project_dir) (its C(pyproject.toml)) with
    C(pip wheel --no-deps) and C(SOURCE_DATE_EPOCH), so an unchanged source gives the same
    bytes, and keeps it as the only file of O(dest).
  - The wheel is built on every run (seconds) into C(<dest>.partial) next to O(dest) and
    swapped in by renames only when the files differ, after which the paths in
    O(invalidate) are deleted; C(changed) means the wheel's content changed. A failed build
    removes C(<dest>.partial) and leaves O(dest) as it was.
  - The controller's C(PIP_FIND_LINKS) is switched off for the build.
  - Runs where it is executed; delegate it to the controller (C(delegate_to=localhost)).
version_added: "1.0.0"
author:
  - customer pipeline project
options:
  project_dir:
    description: Folder of the project, with its C(pyproject.toml).
    type: path
    required: true
  dest:
    description: Folder that holds the built wheel; its parent is created if missing.
    type: path
    required: true
  python:
    description: Python that runs C(pip wheel); defaults to the Python running this module.
    type: str
  source_date_epoch:
    description: C(SOURCE_DATE_EPOCH) of the build, the time stamp of every file in the wheel.
    type: int
    default: 315532800
  invalidate:
    description:
      - Paths deleted when the wheel is replaced, such as the bundle packed from it, so
        later tasks make them again from the new content.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description:
      - Builds the wheel in a temporary folder outside O(dest) and reports whether it differs,
        without replacing anything.
  diff_mode:
    support: full
    description: Shows the wheel file names with their SHA-256 before and after.
notes:
  - The project is built from a copy of its C(pyproject.toml), C(setup.cfg) and C(src/) (a src
    layout) in the staging folder; not the README, since editing the documentation must not make a new
    wheel that restarts the services. So the build backend's own folders
    (C(build/), C(*.egg-info)) never appear in O(project_dir), and a module deleted from
    C(src/) cannot survive in a stale C(build/lib) and reach the wheel.
"""

EXAMPLES = r"""
- name: Build the project's wheel
  customer_streaming.pipeline.project_wheel:
    project_dir: "{{ playbook_dir }}/.."
    dest: "{{ artifact_cache_dir }}/wheels/customer-pipeline"
    python: "{{ ansible_playbook_python }}"
    invalidate: ["{{ artifact_cache_dir }}/bundles/customer-pipeline.tar"]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The folder holding the wheel.
  returned: always
  type: str
  sample: /srv/cache/wheels/customer-pipeline
wheel:
  description: File name of the wheel built.
  returned: always
  type: str
  sample: customer_streaming_pipeline-0.1.0-py3-none-any.whl
sha256:
  description: SHA-256 of the wheel built.
  returned: always
  type: str
  sample: e100db7d86a54d9d3f33ad0b38d16d177efe1b919c366ff33e3f7b18353d4b74
invalidated:
  description: Paths of O(invalidate) that were (or in check mode would be) deleted.
  returned: always
  type: list
  elements: str
  sample: [/srv/cache/bundles/customer-pipeline.tar]
"""

import os
import shutil
import sys
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.customer_streaming.pipeline.plugins.module_utils.artifact_build import (
    ArtifactError,
    command_failure,
    folder_diff,
    invalidated,
    publish,
    run_command,
    staging_dir,
)


def wheel_argv(python, project_dir, wheel_dir):
    return [python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheel_dir, project_dir]


def build_env(base_env, source_date_epoch):
    env = dict(base_env)
    env.update(SOURCE_DATE_EPOCH=str(source_date_epoch), PIP_FIND_LINKS="")
    return env


# What a src-layout project needs to build; nothing the backend or a test run left behind.
SOURCE_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "LICENSE")
SOURCE_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def copy_sources(project_dir, target):
    """Copy the project's build inputs into target (a fresh folder) and return it."""
    os.makedirs(target)
    for name in SOURCE_FILES:
        if os.path.isfile(os.path.join(project_dir, name)):
            shutil.copy2(os.path.join(project_dir, name), os.path.join(target, name))
    if os.path.isdir(os.path.join(project_dir, "src")):
        shutil.copytree(os.path.join(project_dir, "src"), os.path.join(target, "src"), ignore=SOURCE_IGNORE)
    return target


def build_into(folder, project_dir, python, env, run):
    """Build the wheel from a clean copy of the sources into folder/dist; returns that folder and the wheel's name."""
    dist = os.path.join(folder, "dist")
    argv = wheel_argv(python, copy_sources(project_dir, os.path.join(folder, "source")), dist)
    result = run(argv, env=env)
    if result.rc != 0:
        raise ArtifactError(command_failure("cannot build the wheel of %s" % project_dir, argv, result))
    wheels = sorted(name for name in os.listdir(dist) if name.endswith(".whl")) if os.path.isdir(dist) else []
    if len(wheels) != 1:
        raise ArtifactError("building %s gave %d wheels in %s, expected one: %s"
                            % (project_dir, len(wheels), dist, ", ".join(wheels) or "none"))
    return dist, wheels[0]


def ensure_wheel(project_dir, dest, python=None, source_date_epoch=315532800, invalidate=(), check_mode=False,
                 run=None, base_env=None):
    """Build the wheel and replace dest's content with it when it differs."""
    run = run or run_command
    if not os.path.isfile(os.path.join(project_dir, "pyproject.toml")) and \
            not os.path.isfile(os.path.join(project_dir, "setup.py")):
        raise ArtifactError("%s has no pyproject.toml (nor setup.py): not a Python project" % project_dir)
    dest = dest.rstrip(os.sep)
    env = build_env(os.environ if base_env is None else base_env, source_date_epoch)
    python = python or sys.executable
    gone = invalidated(invalidate)
    if check_mode:
        # Outside dest's folder: check mode creates nothing there.
        folder = tempfile.mkdtemp(prefix="project-wheel-check-")
        try:
            dist, wheel = build_into(folder, project_dir, python, env, run)
            changed, before, after = publish(dist, dest, invalidate, check_mode=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        with staging_dir(dest) as folder:
            dist, wheel = build_into(folder, project_dir, python, env, run)
            changed, before, after = publish(dist, dest, invalidate)
    return {"changed": changed, "dest": dest, "wheel": wheel, "sha256": after[wheel],
            "invalidated": gone if changed else [], "diff": folder_diff(dest, before, after)}


def main():
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "python": {"type": "str"},
            "source_date_epoch": {"type": "int", "default": 315532800},
            "invalidate": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = ensure_wheel(params["project_dir"], params["dest"], params["python"], params["source_date_epoch"],
                              params["invalidate"], module.check_mode)
    except (ArtifactError, OSError) as exc:
        module.fail_json(msg="wheel of %s: %s" % (params["project_dir"], exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
