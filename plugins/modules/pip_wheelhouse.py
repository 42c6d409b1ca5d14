#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module pip_wheelhouse: a folder of wheels for another Python, with hashes."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pip_wheelhouse
short_description: Build a wheelhouse with hashes for another host's Python
description:
  - Downloads pinned requirements and all their dependencies as wheels for the target
    Python (O(python_version), O(platforms), CPython) into O(dest), and writes there
    C(SHA256SUMS) and C(requirements.lock), one C(name==version --hash=sha256:...) line per
    wheel, so the target installs offline with
    C(pip install --no-index --find-links DEST --require-hashes -r DEST/requirements.lock).
  - A requirement may carry an environment marker (C(boto3==1.37.38; python_version < "3.9")).
    The module evaluates it for the TARGET (O(python_version), CPython, the machine of
    O(platforms)) with C(packaging.markers) and hands pip only the requirements that apply,
    without their marker; pip itself would evaluate markers for the controller's Python
    (U(https://github.com/pypa/pip/issues/11010)). One list then serves every Python, and
    two requirements of the same project that both apply to the target are refused.
  - With O(dependencies=resolve), pip download resolves the dependencies of the requirements.
    pip evaluates the markers of those dependencies for the controller's Python too, so the
    set can be wrong for another Python (botocore wants C(urllib3<1.27) below Python 3.10,
    and a controller on 3.11 gets urllib3 2). With O(dependencies=pinned) the requirements
    are the whole set, each C(name==version); pip downloads exactly those (C(--no-deps)), and
    the module reads the C(Requires-Dist) of every wheel, evaluates its markers for the
    target, and fails naming each dependency the set misses or pins outside its range.
  - A listed requirement that has no wheel for the target is built into a wheel from its
    sdist with the controller's pip (build isolation on), then taken like the others; this
    suits pure-Python sdists only (the wheel must be C(py3-none-any)). A dependency that
    only ships an sdist must itself be listed in O(requirements).
  - Only O(index_url) and the wheels built here feed the wheelhouse; the controller's
    C(PIP_FIND_LINKS), C(PIP_EXTRA_INDEX_URL) and C(PIP_CONSTRAINT) are switched off, and
    C(SOURCE_DATE_EPOCH) makes the wheels built from sdists byte-for-byte reproducible.
  - The request (the requirements that apply to the target, Python version, platforms,
    index, and O(dependencies) when it is C(pinned)) is named by an empty marker file
    C(.request-<sha1>) in O(dest), so a requirement for another Python does not rebuild this one. While it is there the module does nothing
    and reads no index; a changed request builds again.
  - Everything is built in C(<dest>.partial) next to O(dest) and swapped in by renames
    only when the files differ, after which the paths in O(invalidate) are deleted. A
    failed run removes C(<dest>.partial) and leaves O(dest) as it was.
  - Runs where it is executed; delegate it to the controller (C(delegate_to=localhost)).
version_added: "1.0.0"
author:
  - customer pipeline project
options:
  dest:
    description: Folder that holds the wheelhouse; its parent is created if missing.
    type: path
    required: true
  requirements:
    description:
      - Pinned requirement strings (C(name==version)), each optionally with an environment
        marker evaluated for the target.
      - With O(dependencies=pinned), every wheel of the set, dependencies included.
    type: list
    elements: str
    required: true
  python_version:
    description:
      - Python version of the target (major.minor), which may differ from the controller's.
      - Markers see it as C(python_version), and as C(python_full_version) C(<major.minor>.0)
        as pip does for C(--python-version).
    type: str
    required: true
  dependencies:
    description:
      - C(resolve) lets pip download the dependencies of O(requirements) (their markers evaluated
        for the controller's Python).
      - C(pinned) takes O(requirements) as the complete set, downloads only those and checks
        every wheel's dependencies for the target.
    type: str
    choices: [resolve, pinned]
    default: resolve
  platforms:
    description: Wheel platform tags accepted for the target, for binary wheels.
    type: list
    elements: str
    default: [manylinux2014_x86_64]
  index_url:
    description: Package index the wheels come from; PyPI, a mirror, devpi or Artifactory.
    type: str
    default: https://pypi.org/simple
  python:
    description: Python on the controller that runs C(pip download) and C(pip wheel).
    type: str
    default: python3
  source_date_epoch:
    description: C(SOURCE_DATE_EPOCH) of the wheels built from sdists.
    type: int
    default: 315532800
  invalidate:
    description:
      - Paths deleted when the wheelhouse is replaced, such as the bundle packed from it,
        so later tasks make them again from the new content.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports whether the wheelhouse would be built (its request marker is missing); downloads and writes nothing.
  diff_mode:
    support: full
    description: Shows the files of the wheelhouse with their SHA-256 before and after.
requirements:
  - packaging (on the controller; ansible-core depends on it)
notes:
  - Needs network access to O(index_url) only when the request marker is missing.
"""

EXAMPLES = r"""
- name: Build the wheelhouse of the producer for the nodes' Python 3.11
  customer_streaming.pipeline.pip_wheelhouse:
    dest: "{{ artifact_cache_dir }}/wheels/pipeline-deps"
    requirements: [kafka-python==3.0.12, boto3==1.44.8]
    python_version: "3.11"
    platforms: [manylinux2014_x86_64]
    invalidate: ["{{ artifact_cache_dir }}/bundles/pipeline-deps.tar"]
  delegate_to: localhost
  run_once: true

- name: Build for Python 3.8 from one pinned list whose markers pick each Python's versions
  customer_streaming.pipeline.pip_wheelhouse:
    dest: "{{ artifact_cache_dir }}/wheels/pipeline-deps-py3.8"
    python_version: "3.8"
    dependencies: pinned
    requirements:
      - kafka-python==3.0.12
      - boto3==1.44.8; python_version >= "3.10"
      - boto3==1.37.38; python_version < "3.9"
      # ... every dependency, pinned, with markers where the versions differ
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The wheelhouse folder.
  returned: always
  type: str
  sample: /srv/cache/wheels/pipeline-deps
request_id:
  description: SHA-1 naming the request; the marker file is C(.request-<request_id>).
  returned: always
  type: str
  sample: a782adbed97e44e427e6401c6e99058fdd0a2a31
requirements:
  description: The requirements that apply to the target, without their markers, as handed to pip.
  returned: always
  type: list
  elements: str
  sample: [kafka-python==3.0.12, boto3==1.37.38]
wheels:
  description: File names of the wheels in the wheelhouse (in check mode, the ones it holds now).
  returned: always
  type: list
  elements: str
  sample: [boto3-1.44.8-py3-none-any.whl, six-1.16.0-py2.py3-none-any.whl]
built_from_sdist:
  description: Requirements that had no wheel for the target and were built from their sdist.
  returned: always
  type: list
  elements: str
  sample: [docopt==0.6.2]
reason:
  description: C(request) when the request marker was missing and the wheelhouse was (or would be) built, else C(none).
  returned: always
  type: str
  sample: none
invalidated:
  description: Paths of O(invalidate) that were (or in check mode would be) deleted.
  returned: always
  type: list
  elements: str
  sample: [/srv/cache/bundles/pipeline-deps.tar]
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.customer_streaming.pipeline.plugins.module_utils.artifact_build import (
    ArtifactError,
    command_failure,
    folder_diff,
    invalidated,
    marker_name,
    publish,
    request_id,
    run_command,
    staging_dir,
    sums_text,
    tree_listing,
    write_text,
)
from ansible_collections.customer_streaming.pipeline.plugins.module_utils.wheel_requirements import (
    HAS_PACKAGING,
    PACKAGING_IMPORT_ERROR,
    check_pinned,
    target_requirements,
    unmet_dependencies,
)

# The name and version of a wheel file: `<name>-<version>-<tags>.whl`, name without `-`.
WHEEL_NAME = re.compile(r"^([^-]+)-([^-]+)-.*[.]whl$")


def wheelhouse_request(requirements, python_version, platforms, index_url, dependencies="resolve"):
    """What the marker names: the same list, in the same order, the role hashed in YAML before.

    requirements are those that apply to the target, so a pin for another Python leaves this
    wheelhouse alone. A pinned set adds its mode: the same list resolved by pip can differ.
    """
    request = [sorted(requirements), str(python_version), list(platforms), index_url]
    return request if dependencies == "resolve" else request + [dependencies]


def target_args(python_version, platforms, index_url):
    """pip options that pick wheels for the target's interpreter rather than the controller's."""
    return (["--only-binary=:all:", "--implementation", "cp", "--python-version", str(python_version),
             "--index-url", index_url] + ["--platform=%s" % platform for platform in platforms])


def pip_env(base_env, source_date_epoch):
    """The environment of pip: only the index and the staging folder feed the wheelhouse.

    pip.conf keeps its certificate and proxy; the controller's own find-links, extra indexes
    and constraints are switched off.
    """
    env = dict(base_env)
    env.update(PIP_FIND_LINKS="", PIP_EXTRA_INDEX_URL="", PIP_CONSTRAINT="", PIP_NO_INDEX="false",
               PIP_REQUIRE_VIRTUALENV="false", SOURCE_DATE_EPOCH=str(source_date_epoch))
    return env


def lock_text(sums):
    """requirements.lock from SHA256SUMS text: `name==version --hash=sha256:<hex>` per wheel."""
    lines = []
    for line in sums.splitlines():
        digest, _, name = line.partition("  ")
        match = WHEEL_NAME.match(name)
        if not match:
            raise ArtifactError("cannot read a name and version from wheel file %s" % name)
        lines.append("%s==%s --hash=sha256:%s\n" % (match.group(1), match.group(2), digest))
    return "".join(lines)


def build_wheelhouse(folder, requirements, python, python_version, platforms, index_url, env, run,
                     dependencies="resolve"):
    """Download the wheelhouse into folder/wheels (folder is an empty staging folder).

    requirements apply to the target (no markers). Returns those built from their sdist.
    """
    pip = [python, "-m", "pip"]
    target = target_args(python_version, platforms, index_url)
    probe, built, wheels = (os.path.join(folder, name) for name in ("probe", "built", "wheels"))
    for path in (probe, built, wheels):
        os.mkdir(path)
    # (1) Which requirements have a wheel for the target? One pip run answers for all of them
    # when all have one (the usual case; each run costs a second or more); only then is each
    # asked alone, to name those without.
    def has_wheels(wanted):
        argv = pip + ["download", "--no-deps", "--quiet", "--dest", probe] + target + wanted
        return run(argv, env=env).rc == 0

    no_wheel = []
    if len(requirements) == 1 or not has_wheels(list(requirements)):
        no_wheel = [requirement for requirement in requirements if not has_wheels([requirement])]
    # (2) Build wheels from the sdists of the others, for the controller (pure Python only).
    if no_wheel:
        argv = pip + ["wheel", "--no-deps", "--progress-bar", "off", "--index-url", index_url,
                      "--wheel-dir", built] + no_wheel
        result = run(argv, env=env)
        if result.rc != 0:
            raise ArtifactError(command_failure(
                "requirement(s) %s have no wheel for CPython %s on %s, and building them from their sdist failed"
                % (", ".join(no_wheel), python_version, ", ".join(platforms)), argv, result))
    # (3) Resolve the whole set for the target, taking the built wheels from the staging folder.
    # A pinned set is the whole set already: pip takes exactly it, and never evaluates a
    # dependency's marker for the controller's Python (pypa/pip#11010). When every pin had a
    # wheel, the probe of (1) downloaded exactly that set: it is the wheelhouse.
    if dependencies == "pinned" and not no_wheel:
        os.rmdir(wheels)
        os.rename(probe, wheels)
    else:
        no_deps = ["--no-deps"] if dependencies == "pinned" else []
        argv = (pip + ["download"] + no_deps + ["--progress-bar", "off", "--find-links", built, "--dest", wheels]
                + target + list(requirements))
        result = run(argv, env=env)
        if result.rc != 0:
            raise ArtifactError(command_failure(
                "cannot download the wheels of %s for CPython %s on %s (a dependency that ships only an sdist must "
                "be listed in the requirements too)" % (", ".join(requirements), python_version, ", ".join(platforms)),
                argv, result))
    if dependencies == "pinned":
        unmet = unmet_dependencies(wheels, requirements, python_version, platforms)
        if unmet:
            raise ArtifactError(
                "the pinned set for CPython %s is not complete: %s. Pin each of them in the requirements (with a "
                "python_version marker where Pythons need different versions)"
                % (python_version, "; ".join(unmet)))
    listing = tree_listing(wheels)
    sums = sums_text(listing, ".whl")
    if not sums:
        raise ArtifactError("pip downloaded no wheel for %s into %s" % (", ".join(requirements), wheels))
    others = sorted(name for name in listing if not name.endswith(".whl"))
    if others:
        raise ArtifactError("pip left files that are not wheels in %s: %s" % (wheels, ", ".join(others)))
    write_text(os.path.join(wheels, "SHA256SUMS"), sums)
    write_text(os.path.join(wheels, "requirements.lock"), lock_text(sums))
    return no_wheel


def ensure_wheelhouse(dest, requirements, python_version, platforms=("manylinux2014_x86_64",),
                      index_url="https://pypi.org/simple", python="python3", source_date_epoch=315532800,
                      invalidate=(), check_mode=False, run=None, base_env=None, dependencies="resolve"):
    """Build dest unless its request marker is there; returns the module's result."""
    run = run or run_command
    if not requirements:
        raise ArtifactError("no requirements given for the wheelhouse %s" % dest)
    if dependencies not in ("resolve", "pinned"):
        raise ArtifactError("dependencies is %r, not resolve or pinned" % (dependencies,))
    requirements = target_requirements(requirements, python_version, platforms)
    if dependencies == "pinned":
        check_pinned(requirements)
    dest = dest.rstrip(os.sep)
    rid = request_id(wheelhouse_request(requirements, python_version, platforms, index_url, dependencies))
    marker = os.path.join(dest, marker_name(rid))
    result = {"dest": dest, "request_id": rid, "requirements": requirements, "built_from_sdist": [],
              "reason": "none", "invalidated": []}
    current = tree_listing(dest) if os.path.isdir(dest) else None
    if os.path.exists(marker):
        result.update(changed=False, diff=folder_diff(dest, current, current))
    elif check_mode:
        after = "%s: built again for request %s from %s\n" % (dest, rid, ", ".join(requirements))
        result.update(changed=True, reason="request", invalidated=invalidated(invalidate),
                      diff=dict(folder_diff(dest, current, None), after=after))
    else:
        env = pip_env(os.environ if base_env is None else base_env, source_date_epoch)
        with staging_dir(dest) as folder:
            result["built_from_sdist"] = build_wheelhouse(folder, requirements, python, python_version, platforms,
                                                          index_url, env, run, dependencies)
            staged = os.path.join(folder, "wheels")
            write_text(os.path.join(staged, marker_name(rid)), "")
            gone = invalidated(invalidate)
            changed, before, after = publish(staged, dest, invalidate)
        result.update(changed=changed, reason="request", invalidated=gone if changed else [],
                      diff=folder_diff(dest, before, after))
        current = after
    result["wheels"] = sorted(name for name in (current or {}) if name.endswith(".whl"))
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "requirements": {"type": "list", "elements": "str", "required": True},
            "python_version": {"type": "str", "required": True},
            "platforms": {"type": "list", "elements": "str", "default": ["manylinux2014_x86_64"]},
            "index_url": {"type": "str", "default": "https://pypi.org/simple"},
            "python": {"type": "str", "default": "python3"},
            "source_date_epoch": {"type": "int", "default": 315532800},
            "invalidate": {"type": "list", "elements": "path", "default": []},
            "dependencies": {"type": "str", "choices": ["resolve", "pinned"], "default": "resolve"},
        },
        supports_check_mode=True,
    )
    if not HAS_PACKAGING:
        module.fail_json(msg=missing_required_lib("packaging"), exception=PACKAGING_IMPORT_ERROR)
    params = module.params
    try:
        result = ensure_wheelhouse(
            params["dest"], params["requirements"], params["python_version"], params["platforms"],
            params["index_url"], params["python"], params["source_date_epoch"], params["invalidate"],
            module.check_mode, dependencies=params["dependencies"],
        )
    except ArtifactError as exc:
        module.fail_json(msg="wheelhouse %s: %s" % (params["dest"], exc))
    except OSError as exc:
        module.fail_json(msg="wheelhouse %s: %s" % (params["dest"], exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
