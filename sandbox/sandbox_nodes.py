"""The sandbox nodes this project booted on this machine, from any checkout (for its scripts).

Each node's init carries CSP_SANDBOX_ROOT in its environment (the sandbox_machine module sets
it) and is PID 1 of its own PID namespace; its children inherit the variable but not PID 1.
"""

import os
from typing import Iterator


def sandbox_inits() -> Iterator[int]:
    """Host PIDs of the init of every running sandbox node."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/environ" % pid, "rb") as handle:
                environ = handle.read().split(b"\0")
            with open("/proc/%s/status" % pid) as handle:
                nspid = [line for line in handle if line.startswith("NSpid:")][0].split()
        except (OSError, IndexError):
            continue
        if nspid[-1] == "1" and any(entry.startswith(b"CSP_SANDBOX_ROOT=") for entry in environ):
            yield int(pid)
