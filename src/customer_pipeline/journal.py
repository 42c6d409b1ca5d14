"""Logging for a program run by systemd: one line per event on stdout, which journald stores.

The time is journald's, so the line carries only the level, the logger's name and the message.
Standard library only: the YARN supervisor imports it on gateways without the job's dependencies.
"""

from __future__ import annotations

import logging
import sys


def log_to_journal(log: logging.Logger) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
