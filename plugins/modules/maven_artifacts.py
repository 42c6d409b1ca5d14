#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ansible module maven_artifacts: a folder of jars resolved by Maven, checksums enforced."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maven_artifacts
short_description: Resolve Maven artifacts into a folder of jars, checksums enforced
description:
  - Writes a Maven project (POM) whose dependencies are O(artifacts), and runs Maven's
    C(dependency:copy-dependencies) (runtime scope) on it, which copies the jars, with
    their runtime dependencies unless O(transitive=false), into O(dest). The POM is kept
    as O(pom) once Maven resolved it, to rerun Maven by hand. Maven checks every
    file against the repository's checksums (C(-C) fails on a mismatch). A C(SHA256SUMS) of
    the jars is written beside them.
  - The request (artifacts, excludes, transitive) is named by an empty marker file
    C(.request-<sha1>) in O(dest). While it is there Maven is not run; a changed request
    resolves again.
  - Everything is resolved in C(<dest>.partial) next to O(dest) and swapped in by renames
    only when the files differ, after which the paths in O(invalidate) are deleted. A
    failed run removes C(<dest>.partial) and leaves O(dest) and O(pom) as they were.
  - A changed O(repository_url) or O(name) only rewrites O(pom); the jars already
    resolved are kept.
  - Runs where it is executed; delegate it to the controller (C(delegate_to=localhost)).
version_added: "1.0.0"
author:
  - customer pipeline project
options:
  dest:
    description: Folder that receives the jars; its parent is created if missing.
    type: path
    required: true
  artifacts:
    description: Artifacts as C(groupId:artifactId:version).
    type: list
    elements: str
    required: true
  excludes:
    description: C(groupId:artifactId) pairs left out of the dependencies of every artifact.
    type: list
    elements: str
    default: []
  transitive:
    description: Resolve the runtime dependencies too; V(false) takes exactly the listed jars.
    type: bool
    default: true
  name:
    description: Name of the set, the POM's artifactId; defaults to the last component of O(dest).
    type: str
  pom:
    description: Where the generated POM is kept; defaults to C(<dest>.pom.xml).
    type: path
  repository_url:
    description: Maven repository the jars come from (it replaces Maven Central); a mirror or Artifactory URL.
    type: str
    default: https://repo1.maven.org/maven2
  local_repo:
    description: Maven's local repository (its download cache); defaults to Maven's own, C(~/.m2/repository).
    type: path
  maven_command:
    description: Maven command, split like a shell would, e.g. C(mvn) or C(mvn -s /etc/maven/settings.xml).
    type: str
    default: mvn
  invalidate:
    description:
      - Paths deleted when the jar set is replaced, such as the bundle packed from it, so
        later tasks make them again from the new content.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports whether the POM would be written and the jars resolved; runs no Maven and writes nothing.
  diff_mode:
    support: full
    description: Shows the jars of the set with their SHA-256 before and after.
"""

EXAMPLES = r"""
- name: Resolve the Spark-Kafka connector jars, exactly those listed
  customer_streaming.pipeline.maven_artifacts:
    dest: "{{ artifact_cache_dir }}/maven/spark-kafka-connector-3.5.9"
    artifacts:
      - org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7
      - org.apache.kafka:kafka-clients:3.4.1
    transitive: false
    invalidate: ["{{ artifact_cache_dir }}/bundles/spark-kafka-connector-3.5.9.tar"]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The folder of jars.
  returned: always
  type: str
  sample: /srv/cache/maven/spark-kafka-connector-3.5.9
pom:
  description: Path of the generated POM.
  returned: always
  type: str
  sample: /srv/cache/maven/spark-kafka-connector-3.5.9.pom.xml
request_id:
  description: SHA-1 naming the request; the marker file is C(.request-<request_id>).
  returned: always
  type: str
  sample: 056b192d5e92d2c5cc7e6bfb8c788852d6aafe82
jars:
  description: File names of the jars in the set (in check mode, the ones it holds now).
  returned: always
  type: list
  elements: str
  sample: [hamcrest-core-1.3.jar, junit-4.13.2.jar]
reason:
  description:
    - What was (or would be) changed; C(none) when the set was already resolved.
    - One of C(request) (the jars are resolved), C(pom) (only the POM is rewritten), C(none).
  returned: always
  type: str
  sample: none
invalidated:
  description: Paths of O(invalidate) that were (or in check mode would be) deleted.
  returned: always
  type: list
  elements: str
  sample: [/srv/cache/bundles/spark-kafka-connector-3.5.9.tar]
"""

import os
import re
import shlex
from xml.sax.saxutils import escape

from ansible.module_utils.basic import AnsibleModule

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
    write_file_atomic,
    write_text,
)

COORDINATE = re.compile(r"^[^:\s]+:[^:\s]+:[^:\s]+$")
EXCLUDE = re.compile(r"^[^:\s]+:[^:\s]+$")


def check_coordinates(artifacts, excludes):
    """Refuse coordinates Maven could not read, naming them."""
    if not artifacts:
        raise ArtifactError("no artifacts given")
    wrong = [item for item in artifacts if not COORDINATE.match(item)]
    if wrong:
        raise ArtifactError("artifact(s) %s are not groupId:artifactId:version" % ", ".join(wrong))
    wrong = [item for item in excludes if not EXCLUDE.match(item)]
    if wrong:
        raise ArtifactError("exclude(s) %s are not groupId:artifactId" % ", ".join(wrong))


def maven_request(artifacts, excludes, transitive):
    """What the marker names: the same list the role hashed in YAML before."""
    return [list(artifacts), list(excludes), bool(transitive)]


def render_pom(name, artifacts, excludes, repository_url):
    """The POM whose runtime dependencies are the artifacts; repository_url replaces Central."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Ansible managed: resolves the jar set %s with its runtime dependencies. -->" % escape(name),
        '<project xmlns="http://maven.apache.org/POM/4.0.0">',
        "  <modelVersion>4.0.0</modelVersion>",
        "  <groupId>customer-streaming-pipeline.artifacts</groupId>",
        "  <artifactId>%s</artifactId>" % re.sub(r"[^A-Za-z0-9_.-]", "_", name),
        "  <version>1</version>",
        "  <packaging>pom</packaging>",
        "  <repositories>",
        "    <!-- Same id as Maven's default so this URL replaces it (mirror, Artifactory). -->",
        "    <repository>",
        "      <id>central</id>",
        "      <url>%s</url>" % escape(repository_url),
        "    </repository>",
        "  </repositories>",
        "  <pluginRepositories>",
        "    <pluginRepository>",
        "      <id>central</id>",
        "      <url>%s</url>" % escape(repository_url),
        "    </pluginRepository>",
        "  </pluginRepositories>",
        "  <dependencies>",
    ]
    for coordinate in artifacts:
        group, artifact, version = coordinate.split(":")
        lines += [
            "    <dependency>",
            "      <groupId>%s</groupId>" % escape(group),
            "      <artifactId>%s</artifactId>" % escape(artifact),
            "      <version>%s</version>" % escape(version),
        ]
        if excludes:
            lines.append("      <exclusions>")
            for exclude in excludes:
                group_out, artifact_out = exclude.split(":")
                lines += [
                    "        <exclusion>",
                    "          <groupId>%s</groupId>" % escape(group_out),
                    "          <artifactId>%s</artifactId>" % escape(artifact_out),
                    "        </exclusion>",
                ]
            lines.append("      </exclusions>")
        lines.append("    </dependency>")
    lines += ["  </dependencies>", "</project>"]
    return "\n".join(lines) + "\n"


def maven_argv(maven_command, pom, local_repo, transitive, output_dir):
    """copy-dependencies of the POM's runtime scope into output_dir, batch mode, strict checksums."""
    argv = shlex.split(maven_command) + ["-B", "-q", "-C", "-f", pom]
    if local_repo:
        argv.append("-Dmaven.repo.local=%s" % local_repo)
    return argv + ["dependency:copy-dependencies", "-DincludeScope=runtime",
                   "-DexcludeTransitive=%s" % str(not transitive).lower(), "-DoutputDirectory=%s" % output_dir]


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_pom(path, text):
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    write_file_atomic(path, text)


def ensure_artifacts(dest, artifacts, excludes=(), transitive=True, name=None, pom=None,
                     repository_url="https://repo1.maven.org/maven2", local_repo=None, maven_command="mvn",
                     invalidate=(), check_mode=False, run=None):
    """Write the POM and resolve the jars into dest unless its request marker is there."""
    run = run or run_command
    check_coordinates(artifacts, excludes)
    dest = dest.rstrip(os.sep)
    name = name or os.path.basename(dest)
    pom = pom or "%s.pom.xml" % dest
    rid = request_id(maven_request(artifacts, excludes, transitive))
    marker = os.path.join(dest, marker_name(rid))
    pom_text = render_pom(name, artifacts, excludes, repository_url)
    pom_changed = read_text(pom) != pom_text
    current = tree_listing(dest) if os.path.isdir(dest) else None
    result = {"dest": dest, "pom": pom, "request_id": rid, "reason": "pom" if pom_changed else "none",
              "invalidated": [], "changed": pom_changed, "diff": folder_diff(dest, current, current)}
    if os.path.exists(marker):
        if pom_changed and not check_mode:
            write_pom(pom, pom_text)
    elif check_mode:
        after = "%s: resolved again for request %s from %s\n" % (dest, rid, ", ".join(artifacts))
        result.update(changed=True, reason="request", invalidated=invalidated(invalidate),
                      diff=dict(folder_diff(dest, current, None), after=after))
    else:
        # The POM and the jars are made in the staging folder; the POM is kept only once
        # Maven resolved it, so a failed run changes nothing.
        with staging_dir(dest) as staged:
            staged_pom, jars = os.path.join(staged, "pom.xml"), os.path.join(staged, "jars")
            write_text(staged_pom, pom_text)
            os.mkdir(jars)
            argv = maven_argv(maven_command, staged_pom, local_repo, transitive, jars)
            outcome = run(argv)
            if outcome.rc != 0:
                raise ArtifactError(command_failure("Maven could not resolve %s" % ", ".join(artifacts), argv,
                                                    outcome))
            listing = tree_listing(jars)
            sums = sums_text(listing, ".jar")
            if not sums:
                raise ArtifactError("Maven resolved no jar for %s" % ", ".join(artifacts))
            write_text(os.path.join(jars, "SHA256SUMS"), sums)
            write_text(os.path.join(jars, marker_name(rid)), "")
            gone = invalidated(invalidate)
            changed, before, after = publish(jars, dest, invalidate)
            if pom_changed:
                write_pom(pom, pom_text)
        result.update(changed=changed or pom_changed, reason="request" if changed else result["reason"],
                      invalidated=gone if changed else [], diff=folder_diff(dest, before, after))
        current = after
    result["jars"] = sorted(item for item in (current or {}) if item.endswith(".jar"))
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "artifacts": {"type": "list", "elements": "str", "required": True},
            "excludes": {"type": "list", "elements": "str", "default": []},
            "transitive": {"type": "bool", "default": True},
            "name": {"type": "str"},
            "pom": {"type": "path"},
            "repository_url": {"type": "str", "default": "https://repo1.maven.org/maven2"},
            "local_repo": {"type": "path"},
            "maven_command": {"type": "str", "default": "mvn"},
            "invalidate": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = ensure_artifacts(
            params["dest"], params["artifacts"], params["excludes"], params["transitive"], params["name"],
            params["pom"], params["repository_url"], params["local_repo"], params["maven_command"],
            params["invalidate"], module.check_mode,
        )
    except (ArtifactError, OSError) as exc:
        module.fail_json(msg="jar set %s: %s" % (params["dest"], exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
