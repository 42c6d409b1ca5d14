"""roles/_service/files/restart-backoff: the waits it adds before a unit's command, its state, its exec.

The script runs for real under /bin/sh (dash on Debian, as on the nodes). `sleep` is a fake
first on PATH that writes down how long it was asked to wait and returns at once, so the
curve is checked without waiting it out; the stop during a wait uses the real sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "_service" / "files" / "restart-backoff"
# The producer's settings (roles/customer_producer/defaults): 10 s first, 300 s at most, 600 s healthy.
ARGS = ["--first", "10", "--max", "300", "--healthy", "600", "--floor", "10"]


@pytest.fixture()
def fake_sleep(tmp_path: Path) -> Path:
    """A `sleep` that appends its argument to slept.log and returns at once."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sleep = bin_dir / "sleep"
    sleep.write_text('#!/bin/sh\necho "$1" >> %s\n' % (tmp_path / "slept.log"))
    sleep.chmod(0o755)
    return bin_dir


def run_backoff(tmp_path: Path, bin_dir: Optional[Path], state: Path, *command: str,
                args: Optional[List[str]] = None) -> subprocess.CompletedProcess:
    path = "%s:/usr/bin:/bin" % bin_dir if bin_dir else "/usr/bin:/bin"
    return subprocess.run(["/bin/sh", str(SCRIPT), "--state", str(state), *(ARGS if args is None else args), "--",
                           *(command or ("sh", "-c", "echo ran"))],
                          env={"PATH": path}, capture_output=True, text=True, timeout=30)


def slept(tmp_path: Path) -> List[int]:
    log = tmp_path / "slept.log"
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def read_state(state: Path) -> Tuple[int, int]:
    in_a_row, last = state.read_text().split()
    return int(in_a_row), int(last)


def test_a_first_start_runs_the_command_at_once_and_notes_it(tmp_path, fake_sleep):
    state = tmp_path / "state"
    before = int(time.time())
    result = run_backoff(tmp_path, fake_sleep, state)
    assert result.returncode == 0 and result.stdout == "ran\n" and result.stderr == ""
    assert slept(tmp_path) == []
    in_a_row, last = read_state(state)
    assert in_a_row == 0 and before <= last <= int(time.time())


@pytest.mark.parametrize("earlier, waited", [
    (0, 0),     # the 2nd start in a row: systemd's RestartSec (the floor) was the whole wait
    (1, 10),    # 3rd: 20 s in all
    (2, 30),    # 4th: 40 s
    (3, 70),    # 5th: 80 s
    (4, 150),   # 6th: 160 s
    (5, 290),   # 7th: 320 s, capped at 300
    (12, 290),  # and so on, never more
])
def test_each_quick_start_in_a_row_waits_twice_as_long_up_to_the_cap(tmp_path, fake_sleep, earlier, waited):
    state = tmp_path / "state"
    state.write_text("%d %d\n" % (earlier, int(time.time()) - 30))
    result = run_backoff(tmp_path, fake_sleep, state)
    assert result.returncode == 0 and result.stdout == "ran\n"
    assert slept(tmp_path) == ([waited] if waited else [])
    assert read_state(state)[0] == earlier + 1
    if waited:
        # One line in the journal saying why the service waits and what ends it.
        assert result.stderr.count("\n") == 1
        assert "restart back-off: start %d within 600 s" % (earlier + 2) in result.stderr
        assert "waiting %d s in all" % (waited + 10) in result.stderr


def test_the_gaps_of_a_crash_loop_grow_run_after_run(tmp_path, fake_sleep):
    state = tmp_path / "state"
    for _ in range(8):
        assert run_backoff(tmp_path, fake_sleep, state, "sh", "-c", "exit 1").returncode == 1
    assert slept(tmp_path) == [10, 30, 70, 150, 290, 290]


def test_a_run_that_lasted_the_healthy_time_starts_the_count_over(tmp_path, fake_sleep):
    state = tmp_path / "state"
    state.write_text("5 %d\n" % (int(time.time()) - 601))
    assert run_backoff(tmp_path, fake_sleep, state).returncode == 0
    assert slept(tmp_path) == [] and read_state(state)[0] == 0


@pytest.mark.parametrize("content", ["", "garbage\n", "3\n", "-4 12\n", "3 12abc\n", "\x00\x01"])
def test_a_damaged_state_counts_as_none(tmp_path, fake_sleep, content):
    state = tmp_path / "state"
    state.write_text(content)
    result = run_backoff(tmp_path, fake_sleep, state)
    assert result.returncode == 0 and result.stdout == "ran\n"
    assert slept(tmp_path) == [] and read_state(state)[0] == 0


def test_a_state_it_cannot_write_costs_the_back_off_not_the_start(tmp_path, fake_sleep):
    result = run_backoff(tmp_path, fake_sleep, tmp_path / "missing-folder" / "state")
    assert result.returncode == 0 and result.stdout == "ran\n"


def test_it_becomes_the_command_same_pid_and_exit_status(tmp_path, fake_sleep):
    state = tmp_path / "state"
    process = subprocess.Popen(["/bin/sh", str(SCRIPT), "--state", str(state), *ARGS, "--",
                                "sh", "-c", "echo $$; exit 3"], env={"PATH": "%s:/usr/bin:/bin" % fake_sleep},
                               stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=30)
    # systemd's MainPID, signals and the exit status (RestartPreventExitStatus=2) are the command's.
    assert int(out) == process.pid and process.returncode == 3


def test_a_stop_during_the_wait_ends_it_at_once_without_the_command(tmp_path):
    state = tmp_path / "state"
    state.write_text("4 %d\n" % int(time.time()))  # the next start waits 150 s more (real sleep)
    process = subprocess.Popen(["/bin/sh", str(SCRIPT), "--state", str(state), *ARGS, "--", "sh", "-c", "echo ran"],
                               env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    # Its child `sleep 150` means the script is waiting.
    deadline = time.monotonic() + 10
    while not _sleepers(150, parent=process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleepers(150, parent=process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert process.returncode == 0 and out == "" and "waiting 160 s in all" in err
    # The state is left as it was: the back-off did not count a start that never ran.
    assert read_state(state)[0] == 4
    # And its sleep is gone with it.
    deadline = time.monotonic() + 5
    while _sleepers(150) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sleepers(150)


def _sleepers(seconds: int, parent: Optional[int] = None) -> List[int]:
    """Live `sleep <seconds>` processes (of `parent` if given)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if cmdline[:2] == [b"sleep", str(seconds).encode()] and state != "Z" and (parent is None or ppid == parent):
            found.append(int(entry))
    return found


@pytest.mark.parametrize("args, message", [
    ([], "usage: restart-backoff"),
    (["--first", "ten"], "not a number of seconds: 'ten'"),
    (["--wait", "3"], "unknown argument --wait"),
])
def test_a_wrong_call_is_refused_with_exit_2(tmp_path, fake_sleep, args, message):
    state_args = [] if not args else ["--state", str(tmp_path / "state")]
    command = [] if not args else ["--", "true"]
    result = subprocess.run(["/bin/sh", str(SCRIPT), *state_args, *args, *command], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and message in result.stderr, result.stderr
