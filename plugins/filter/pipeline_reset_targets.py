# -*- coding: utf-8 -*-
"""Filter pipeline_reset_targets: where each configured path lives and whether a reset may delete it."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

# Characters `hdfs dfs -rm` expands as a glob: a path holding one could delete far more than itself.
GLOB_CHARACTERS = "*?[]{}\\"


def _parse(value: str) -> Tuple[str, str, str, str]:
    """(filesystem, authority, normalised absolute path, problem) of a path or URI.

    filesystem is "hdfs" for hdfs:// URIs and paths without a scheme (Spark and `hdfs dfs`
    resolve those against fs.defaultFS), "local" for file: URIs. problem is "" when the
    path is one the reset can reason about.
    """
    if value != value.strip() or not value:
        return "", "", "", "is empty" if not value.strip() else "has leading or trailing whitespace"
    if any(char in value for char in GLOB_CHARACTERS):
        return "", "", "", "holds a glob character (one of %s), which hdfs dfs -rm would expand" % GLOB_CHARACTERS
    parts = urlsplit(value)
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return "", "", "", "holds '?' or '#'"
    scheme = parts.scheme.lower()
    if scheme in ("", "hdfs"):
        filesystem = "hdfs"
    elif scheme == "file":
        filesystem = "local"
        if parts.netloc not in ("", "localhost"):
            return "", "", "", "is a file: URI of another host (%s)" % parts.netloc
    else:
        return "", "", "", "has the scheme %s: the reset deletes only HDFS paths (hdfs:// or no scheme) and local paths (file:)" % scheme
    if not parts.path.startswith("/"):
        return "", "", "", "is not an absolute path"
    segments = parts.path.split("/")
    if ".." in segments:
        return "", "", "", "holds '..'"
    path = "/" + "/".join(segment for segment in segments if segment not in ("", "."))
    if path == "/":
        return "", "", "", "is the root folder /"
    return filesystem, parts.netloc if filesystem == "hdfs" else "", path, ""


def reset_targets(paths: Mapping[str, Any], allowed_prefixes: Sequence[str]) -> List[Dict[str, str]]:
    """One entry per configured path: variable, value, filesystem, path, uri (what to delete), problem.

    A path may be deleted when it is strictly under one of allowed_prefixes on the same
    filesystem: a prefix without a scheme (or hdfs://) allows HDFS paths, a file: prefix
    local paths. problem names why a path may not be deleted ("" when it may).
    """
    if not isinstance(paths, Mapping):
        raise AnsibleFilterError("pipeline_reset_targets: the paths must be a dict of variable name: path")
    prefixes = []
    for prefix in allowed_prefixes:
        filesystem, _, prefix_path, problem = _parse(str(prefix))
        if problem:
            raise AnsibleFilterError("pipeline_reset_allowed_prefixes: %r %s; every entry must name a folder below /" % (prefix, problem))
        prefixes.append((filesystem, prefix_path))
    allowed_text = ", ".join(str(prefix) for prefix in allowed_prefixes) or "none"
    targets = []
    for variable, raw in paths.items():
        value = "" if raw is None else str(raw)
        filesystem, authority, path, problem = _parse(value)
        if not problem and not any(
            filesystem == prefix_fs and path.startswith(prefix_path + "/") for prefix_fs, prefix_path in prefixes
        ):
            problem = "is not under an allowed prefix (pipeline_reset_allowed_prefixes: %s)" % allowed_text
        if problem:
            uri = ""
        elif filesystem == "local":
            uri = path
        elif authority:
            uri = "hdfs://%s%s" % (authority, path)
        else:
            uri = path
        targets.append(
            {"variable": str(variable), "value": value, "filesystem": filesystem, "path": path, "uri": uri, "problem": problem}
        )
    return targets


class FilterModule:
    """Filters of the pipeline_reset role."""

    def filters(self) -> Dict[str, Any]:
        return {"pipeline_reset_targets": reset_targets}
