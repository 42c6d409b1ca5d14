"""sandbox/controller-deps: names the exact command when it cannot install, installs with apt-get as root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "sandbox" / "controller-deps"
TOOLS = ("systemd-nspawn", "debootstrap", "ssh", "ssh-keygen", "java", "mvn", "tar", "make")


def _fake_bin(tmp_path: Path, present: tuple, uid: int, apt: bool) -> Path:
    """A PATH holding only bash, a python3 with venv, the tools in present, and an id/apt-get that record calls."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("bash", "sort", "printf", "env"):
        real = shutil.which(tool)
        if real:
            (folder / tool).symlink_to(real)
    (folder / "python3").symlink_to(Path(sys.executable).resolve())
    for tool in present:
        (folder / tool).write_text("#!/bin/sh\nexit 0\n")
    (folder / "id").write_text("#!/bin/sh\necho %d\n" % uid)
    if apt:
        (folder / "apt-get").write_text('#!/bin/sh\necho "apt-get $*" >> %s\n' % (tmp_path / "apt.log"))
    for entry in folder.iterdir():
        if not entry.is_symlink():
            entry.chmod(0o755)
    return folder


def _run(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env={"PATH": str(folder)}, capture_output=True, text=True,
                          timeout=60)


def test_nothing_to_do_when_every_tool_is_there(tmp_path):
    folder = _fake_bin(tmp_path, TOOLS, uid=0, apt=True)
    result = _run(folder)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (tmp_path / "apt.log").exists()


def test_not_root_names_the_exact_command(tmp_path):
    folder = _fake_bin(tmp_path, tuple(t for t in TOOLS if t not in ("debootstrap", "mvn")), uid=1000, apt=True)
    result = _run(folder)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first == ("controller-deps: missing debootstrap maven; run as root: apt-get update && "
                     "apt-get install -y --no-install-recommends debootstrap maven")
    assert not (tmp_path / "apt.log").exists()


def test_root_on_debian_installs_what_is_missing(tmp_path):
    folder = _fake_bin(tmp_path, tuple(t for t in TOOLS if t not in ("systemd-nspawn", "ssh", "ssh-keygen")),
                       uid=0, apt=True)
    result = _run(folder)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["apt-get update -qq",
                     "apt-get install -y -qq --no-install-recommends openssh-client systemd-container"]


def test_root_without_apt_get_stops_with_one_line(tmp_path):
    folder = _fake_bin(tmp_path, tuple(t for t in TOOLS if t != "java"), uid=0, apt=False)
    result = _run(folder)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "controller-deps: missing openjdk-17-jre-headless (Debian names); install the equivalents with your "
        "package manager"]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("apt-get"), reason="needs root and apt-get")
def test_this_controller_has_everything():
    """On the machine that runs the tests (as make test does) nothing is left to install."""
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
