"""What the artifact modules (pip_wheelhouse, maven_artifacts, project_wheel) share.

A folder of artifacts is built whole in a staging folder next to its target, compared with
what the target holds, and swapped in by renames only when the content differs. A failed
build removes its staging folder and leaves the target as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from contextlib import contextmanager

CHUNK = 1024 * 1024
TAIL_LINES = 25
# Colour and cursor sequences (Maven colours its output even with -B on some terminals).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class ArtifactError(Exception):
    """A failure the module reports with fail_json and this message."""


class CommandResult(object):
    """What a command gave: its return code, stdout and stderr as text."""

    def __init__(self, rc, stdout="", stderr=""):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def run_command(argv, env=None, cwd=None):
    """Run argv (no shell) and return a CommandResult; a missing program is rc 127."""
    try:
        completed = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        return CommandResult(127, "", "cannot run %s: %s" % (argv[0], exc))
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)


def tail(text, lines=TAIL_LINES):
    """The last lines of a command's output, without colours and blank lines, for an error message."""
    plain = ANSI_ESCAPE.sub("", text or "")
    kept = [line.rstrip() for line in plain.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def command_failure(what, argv, result):
    """An error message naming what failed, the command, its code and the tail of its output."""
    output = "\n".join(part for part in (tail(result.stderr), tail(result.stdout)) if part)
    return "%s: %s exited with %d\n%s" % (what, " ".join(argv), result.rc, output or "(no output)")


def request_id(request):
    """SHA-1 of the request as JSON, the same value as Ansible's `request | to_json | hash('sha1')`.

    The id names the request marker file (.request-<id>) kept in the built folder, so a
    changed request builds again and an unchanged one does not touch the network.
    """
    return hashlib.sha1(json.dumps(request).encode("utf-8")).hexdigest()  # noqa: S324 - a name, not security


def marker_name(rid):
    return ".request-%s" % rid


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_listing(path):
    """{relative path: sha256} of every file under path ({} when path is missing)."""
    listing = {}
    if not os.path.isdir(path):
        return listing
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(folder, name)
            listing[os.path.relpath(full, path)] = sha256_file(full)
    return listing


def listing_text(title, listing):
    """A diff side: the folder and one line per file with its checksum."""
    if listing is None:
        return "%s: absent\n" % title
    lines = ["%s:" % title] + ["  %s  sha256:%s" % (name, listing[name]) for name in sorted(listing)]
    return "\n".join(lines) + "\n"


def folder_diff(path, before, after):
    """An Ansible diff of a folder's files; before/after are listings, or None when absent."""
    return {"before_header": path, "after_header": path,
            "before": listing_text(path, before), "after": listing_text(path, after)}


def sums_text(listing, suffix):
    """sha256sum-style lines (`<hex>  <name>`) for the files ending in suffix, sorted by name."""
    names = sorted(name for name in listing if name.endswith(suffix) and os.sep not in name)
    return "".join("%s  %s\n" % (listing[name], name) for name in names)


def write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def write_file_atomic(path, text):
    """Write text to path through a temporary file in the same folder and a rename."""
    partial = "%s.partial" % path
    try:
        write_text(partial, text)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


@contextmanager
def staging_dir(dest):
    """A fresh, empty `<dest>.partial` next to dest (same filesystem, so renames are atomic).

    A leftover from an interrupted run is removed first; the folder is removed on the way
    out whether the build succeeded or not (what was published was renamed out of it).
    Created with the umask like `mkdir -p`, so the published folder's mode does not change.
    """
    partial = "%s.partial" % dest.rstrip(os.sep)
    remove_path(partial)
    parent = os.path.dirname(partial)
    if parent:
        os.makedirs(parent, exist_ok=True)
    os.mkdir(partial)
    try:
        yield partial
    finally:
        remove_path(partial)


def replace_dir(staged, dest):
    """Put the folder staged in the place of dest by renames; the old dest is then deleted.

    dest is missing only between two renames of the same filesystem; if the second rename
    fails the old folder is put back.
    """
    dest = dest.rstrip(os.sep)
    old = None
    if os.path.lexists(dest):
        old = "%s.old" % dest
        remove_path(old)
        os.rename(dest, old)
    try:
        os.rename(staged, dest)
    except OSError:
        if old is not None:
            os.rename(old, dest)
        raise
    if old is not None:
        remove_path(old)


def publish(staged, dest, invalidate=(), check_mode=False):
    """Swap staged in for dest when their files differ; remove the invalidated paths then.

    Returns (changed, before listing or None, after listing).
    """
    before = tree_listing(dest) if os.path.isdir(dest) else None
    after = tree_listing(staged)
    changed = before != after
    if changed and not check_mode:
        replace_dir(staged, dest)
        for path in invalidate:
            remove_path(path)
    return changed, before, after


def invalidated(paths):
    """The paths of invalidate that exist (what a change removes)."""
    return [path for path in paths if os.path.lexists(path)]
