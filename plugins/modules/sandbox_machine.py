#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Boot or power off the sandbox node (a root filesystem under systemd-nspawn)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: sandbox_machine
short_description: Boot or power off a systemd-nspawn machine from a root filesystem
description:
  - Boots a Debian root filesystem with C(systemd-nspawn --boot) as a real systemd machine
    that shares this host's network, or powers it off cleanly.
  - The running machine is found by its init process, whatever happened to the
    C(systemd-nspawn) process that started it; a C(kill -9) of C(systemd-nspawn) leaves the
    machine's init running, and booting a second copy of the same root would corrupt it.
    The init is recognised by the C(CSP_SANDBOX_ROOT) variable set in its environment at boot.
  - Where the host itself runs no systemd (containers, some CI runners), the machine is
    started with C(--register=no --keep-unit) in a session of its own; where it does, it
    registers with systemd-machined as usual.
options:
  root:
    description: Absolute path of the root filesystem.
    type: path
    required: true
  name:
    description: Machine name (also the node's hostname).
    type: str
    required: true
  state:
    description: C(started) boots the machine unless it runs; C(stopped) powers it off.
    type: str
    choices: [started, stopped]
    default: started
  log_file:
    description: File receiving the machine's console output.
    type: path
  pid_file:
    description: File recording the init's PID (informational; the module always scans).
    type: path
  timeout:
    description: Seconds to wait for the machine's init to appear, or to power off.
    type: int
    default: 60
author: customer-streaming-pipeline
"""

EXAMPLES = r"""
- name: Boot the sandbox node
  customer_streaming.pipeline.sandbox_machine:
    root: /srv/sandbox/rootfs
    name: csp-sandbox
    log_file: /srv/sandbox/console.log

- name: Power off the sandbox node
  customer_streaming.pipeline.sandbox_machine:
    root: /srv/sandbox/rootfs
    name: csp-sandbox
    state: stopped
"""

RETURN = r"""
pid:
  description: Host PID of the machine's init (absent when stopped).
  returned: when the machine runs
  type: int
orphaned:
  description: True when the init ran without its systemd-nspawn parent.
  returned: always
  type: bool
"""

ENV_MARKER = "CSP_SANDBOX_ROOT"


def marker_entry(root: str) -> bytes:
    return ("%s=%s" % (ENV_MARKER, os.path.realpath(root))).encode()


def find_inits(root: str, proc: str = "/proc") -> List[int]:
    """Host PIDs of every init process booted from ``root``."""
    wanted = marker_entry(root)
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "environ"), "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(os.path.join(proc, entry, "status"), "r") as handle:
                status = parse_status(handle.read())
        except OSError:
            continue  # the process ended while we looked, or is not ours to read
        # NSpid "host 1": PID 1 of its own namespace, i.e. the machine's init itself, not
        # one of its children (which inherit the environment variable).
        if wanted in environ and status.get("NSpid", "").split()[-1:] == ["1"]:
            found.append(int(entry))
    return sorted(found)


def parse_status(text: str) -> Dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def parent_pid(pid: int, proc: str = "/proc") -> Optional[int]:
    try:
        with open(os.path.join(proc, str(pid), "status"), "r") as handle:
            return int(parse_status(handle.read()).get("PPid", "0"))
    except (OSError, ValueError):
        return None


def process_name(pid: Optional[int], proc: str = "/proc") -> Optional[str]:
    if pid is None:
        return None
    try:
        with open(os.path.join(proc, str(pid), "comm"), "r") as handle:
            return handle.read().strip()
    except OSError:
        return None


def host_runs_systemd() -> bool:
    # The test sd_booted(3) uses.
    return os.path.isdir("/run/systemd/system")


def nspawn_command(root: str, name: str, host_systemd: bool) -> List[str]:
    command = [
        "systemd-nspawn", "--boot", "--quiet",
        "--directory", os.path.realpath(root),
        "--machine", name,
        "--setenv=%s=%s" % (ENV_MARKER, os.path.realpath(root)),
        # The console goes to the log file: nobody types at it.
        "--console=read-only",
    ]
    if not host_systemd:
        # Without systemd on the host there is no machined to register with, and no unit
        # of our own for nspawn to create a scope in.
        command += ["--register=no", "--keep-unit"]
    return command


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def boot(module: AnsibleModule, root: str, name: str, log_file: Optional[str], timeout: int) -> int:
    command = nspawn_command(root, name, host_runs_systemd())
    log = open(log_file or os.devnull, "ab")
    try:
        # A session of its own: the machine outlives this module and Ansible's process group.
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True, close_fds=True)
    finally:
        log.close()
    if not wait_for(lambda: bool(find_inits(root)), timeout):
        module.fail_json(msg="the sandbox machine %s did not start within %d s; see %s"
                         % (name, timeout, log_file or "its console"), cmd=command)
    return find_inits(root)[0]


def power_off(module: AnsibleModule, pids: List[int], timeout: int) -> None:
    # SIGRTMIN+4 asks systemd for a clean poweroff: services stop in order. When init
    # exits, the kernel ends every process left in the machine's PID namespace.
    for pid in pids:
        os.kill(pid, signal.SIGRTMIN + 4)
    alive = lambda: [pid for pid in pids if os.path.exists("/proc/%d" % pid)]  # noqa: E731
    if wait_for(lambda: not alive(), timeout):
        return
    for pid in alive():
        os.kill(pid, signal.SIGKILL)
    if not wait_for(lambda: not alive(), 10):
        module.fail_json(msg="the sandbox machine's init (PID %s) survived SIGKILL" % alive())
    module.warn("the sandbox machine did not power off within %d s and was killed" % timeout)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["started", "stopped"], default="started"),
            log_file=dict(type="path"),
            pid_file=dict(type="path"),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    params = module.params
    root = params["root"]
    if not os.path.isfile(os.path.join(root, "usr/lib/systemd/systemd")) and \
            not os.path.isfile(os.path.join(root, "lib/systemd/systemd")):
        module.fail_json(msg="%s is not a root filesystem with systemd; build it first (make sandbox)" % root)

    pids = find_inits(root)
    # Reparented to PID 1 or to a subreaper: either way no systemd-nspawn watches it.
    orphaned = any(process_name(parent_pid(pid)) != "systemd-nspawn" for pid in pids)
    result = dict(changed=False, orphaned=orphaned)
    if len(pids) > 1:
        module.warn("%d copies of the sandbox machine run from %s (PIDs %s)" % (len(pids), root, pids))

    if params["state"] == "started":
        if pids:
            result["pid"] = pids[0]
        else:
            result["changed"] = True
            if not module.check_mode:
                result["pid"] = boot(module, root, params["name"], params["log_file"], params["timeout"])
        if params["pid_file"] and result.get("pid") and not module.check_mode:
            with open(params["pid_file"], "w") as handle:
                handle.write("%d\n" % result["pid"])
    else:
        if pids:
            result["changed"] = True
            if not module.check_mode:
                power_off(module, pids, params["timeout"])
        if params["pid_file"] and not module.check_mode and os.path.exists(params["pid_file"]):
            os.unlink(params["pid_file"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
