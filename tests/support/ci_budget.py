"""Whether a long phase of `make test` still fits in CI's time, so that a slow day skips a phase
with a printed reason instead of CI timing out with nothing landed.

.ci/run sets CI_DEADLINE (epoch seconds: its start plus 87 of CI's 90 minutes). A phase runs only
if its own minutes and those of every phase after it fit before the deadline: the later phases
(the three-node and HDP tests) cover what nothing else does, while make chaos repeats kinds of
fault the one-node tests also inject, so chaos is the first to give way. Without CI_DEADLINE
(`make test` by hand) every phase runs.

    python tests/support/ci_budget.py chaos     # exit 0: run it; exit 1: skip it (says why)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

# In the order make test runs them: each phase, the minutes it took on the slowest CI day
# measured (2026-12-06: the one-node tests took 1.5 times as long as on a usual day), rounded
# up, and what it is. Chaos has 13: 12 measured for eight kinds, and a ninth kind since.
PHASES = (
    ("chaos", 13, "make chaos (faults during an ingest)"),
    ("cluster3", 18, "make test-cluster (the three-node tests)"),
    ("hdp", 8, "make test-hdp (the HDP profile's tests)"),
    ("audit", 1, "make audit"),
)
NAMES = [name for name, _, _ in PHASES]
SKIPPED_LOG = Path(__file__).resolve().parents[2] / ".state" / "ci-skipped.txt"


def minutes_needed(phase: str) -> int:
    """The phase's minutes and those of every phase after it."""
    return sum(minutes for _, minutes, _ in PHASES[NAMES.index(phase):])


def skip_reason(phase: str, now: float, deadline: Optional[float]) -> Optional[str]:
    """Why `phase` is skipped at `now`, or None to run it."""
    if phase not in NAMES:
        raise ValueError("unknown phase %r: one of %s" % (phase, ", ".join(NAMES)))
    if deadline is None:
        return None
    left = (deadline - now) / 60
    needed = minutes_needed(phase)
    if needed <= left:
        return None
    return ("%s: %.0f min left before CI's deadline, and it needs about %d min with what comes after it "
            "(on a slow day); CI is slow today, so it gives way to the later phases. Run it on its own."
            % (PHASES[NAMES.index(phase)][2], max(left, 0), needed))


def deadline_from_env() -> Optional[float]:
    value = os.environ.get("CI_DEADLINE", "")
    return float(value) if value.isdigit() else None


def main(argv: list) -> int:
    if len(argv) != 1:
        print("usage: ci_budget.py {%s}" % ",".join(NAMES), file=sys.stderr)
        return 2
    reason = skip_reason(argv[0], time.time(), deadline_from_env())
    if reason is None:
        return 0
    line = "SKIPPED %s" % reason
    print("ci-budget: " + line, flush=True)
    SKIPPED_LOG.parent.mkdir(parents=True, exist_ok=True)
    with SKIPPED_LOG.open("a", encoding="utf-8") as log:
        log.write(line + "\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
