"""The chaos run's plan and verdicts, apart from any node: which fault when, and how long the
pipeline took to recover from each, computed from samples of the topics' end offsets.

tests/chaos/run_chaos.py (make chaos) injects the faults; this module is pure so that
tests/unit/test_chaos_plan.py can check the schedule and the recovery rules on made-up samples.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

# A sample: (monotonic seconds, committed records in customers-raw, records in the two output
# topics); None where the broker did not answer.
Sample = Tuple[float, Optional[int], Optional[int]]

# Output written just before a fault can show up in the first sample after it (the broker
# answers a moment later than the write): growth counts only from this long after the restore.
SETTLE_SECONDS = 2.0
# A flow that grew within this long before the fault is one the pipeline must resume.
FLOWING_WINDOW_SECONDS = 20.0


@dataclass
class Fault:
    kind: str
    gap_seconds: float  # waited after the previous fault was undone (or after the start)
    injected_at: Optional[float] = None
    restored_at: Optional[float] = None
    note: str = ""
    error: str = ""  # the injection itself failed (the run then fails)
    recovered_after: Optional[float] = field(default=None)  # seconds from injection until rows flow again
    waited_for: str = ""  # which flows had to resume: "raw+out", "out", or "" (nothing was flowing)
    # A fault the rest of the cluster must serve through (one broker of three down): the flows
    # moving before it must keep moving while it lasts, not only after it.
    must_serve: bool = False
    # Records gained while the fault lasted, in customers-raw and in the outputs (None: no samples).
    during: Tuple[Optional[int], Optional[int]] = (None, None)


def schedule(kinds: Sequence[str], seed: int, repeats: int = 2,
             min_gap: float = 20.0, max_gap: float = 40.0) -> List[Fault]:
    """Every kind `repeats` times in an order drawn from `seed`, each after a gap drawn from
    [min_gap, max_gap]: a shuffled deck rather than independent draws, so that each kind happens
    at least `repeats` times in the fewest faults (len(kinds) * repeats) and the run is bounded."""
    if not kinds or repeats < 1 or not 0 < min_gap <= max_gap:
        raise ValueError("a schedule needs kinds, repeats >= 1 and 0 < min_gap <= max_gap")
    draw = random.Random(seed)
    deck = [kind for kind in kinds for _ in range(repeats)]
    draw.shuffle(deck)
    # The same kind twice in a row tells less (the second hits a pipeline still recovering from
    # the first): swap it with the next different one when there is one.
    for index in range(1, len(deck)):
        if deck[index] == deck[index - 1]:
            for later in range(index + 1, len(deck)):
                if deck[later] != deck[index - 1]:
                    deck[index], deck[later] = deck[later], deck[index]
                    break
    return [Fault(kind, round(draw.uniform(min_gap, max_gap), 1)) for kind in deck]


def _grew(samples: Sequence[Sample], column: int, start: float, end: float) -> bool:
    values = [s[column] for s in samples if start <= s[0] <= end and s[column] is not None]
    return len(values) >= 2 and max(values) > min(values)


def _resumed_at(samples: Sequence[Sample], column: int, after: float) -> Optional[float]:
    """First time after `after` (+ the settle time) at which the column exceeds every value it
    had up to then."""
    threshold = after + SETTLE_SECONDS
    baseline: Optional[int] = None
    for at, *values in samples:
        value = values[column - 1]
        if value is None:
            continue
        if at <= threshold:
            baseline = value if baseline is None else max(baseline, value)
        elif baseline is None:
            baseline = value  # the broker was down at the restore: its first answer is the baseline
        elif value > baseline:
            return at
    return None


def _gained(samples: Sequence[Sample], column: int, start: float, end: float) -> Optional[int]:
    values = [s[column] for s in samples if start <= s[0] <= end and s[column] is not None]
    return max(values) - min(values) if len(values) >= 2 else None


def measure_recovery(fault: Fault, samples: Sequence[Sample]) -> None:
    """Fills fault.recovered_after, fault.waited_for and fault.during from the samples: the
    flows that were moving before the fault (the producer's into customers-raw, the job's into
    the output topics) must each move again after the fault was undone; recovery is the later of
    the two, counted from the injection. Nothing moving before it (the ingest done): recovered at
    once. `during` counts from the settle time after the injection to the restore."""
    assert fault.injected_at is not None and fault.restored_at is not None
    before = (fault.injected_at - FLOWING_WINDOW_SECONDS, fault.injected_at)
    flows = [column for column in (1, 2) if _grew(samples, column, *before)]
    fault.waited_for = "+".join({1: "raw", 2: "out"}[column] for column in flows)
    window = (fault.injected_at + SETTLE_SECONDS, fault.restored_at)
    fault.during = (_gained(samples, 1, *window), _gained(samples, 2, *window))
    if not flows:
        fault.recovered_after = fault.restored_at - fault.injected_at
        return
    resumed = [_resumed_at(samples, column, fault.restored_at) for column in flows]
    if any(at is None for at in resumed):
        fault.recovered_after = None
        return
    fault.recovered_after = max(at for at in resumed if at is not None) - fault.injected_at


def table(faults: Sequence[Fault], started: float) -> str:
    """The run's table: fault, when, time to recover, verdict."""
    lines = ["| # | fault | at (s) | undone after (s) | waited for | recovered after (s) | verdict |",
             "|---|---|---|---|---|---|---|"]
    for number, fault in enumerate(faults, 1):
        at = "-" if fault.injected_at is None else "%.0f" % (fault.injected_at - started)
        undone = ("-" if fault.restored_at is None or fault.injected_at is None
                  else "%.0f" % (fault.restored_at - fault.injected_at))
        recovered = "-" if fault.recovered_after is None else "%.0f" % fault.recovered_after
        following = faults[number] if number < len(faults) else None
        if (fault.recovered_after is not None and following is not None and following.injected_at is not None
                and fault.injected_at is not None
                and fault.injected_at + fault.recovered_after > following.injected_at):
            recovered += " (after #%d came)" % (number + 1)  # its time includes the next fault's
        note = fault.note
        if fault.must_serve and fault.injected_at is not None:
            note += "%sduring it raw +%s, out +%s" % ("; " if note else "", *("?" if n is None else "{:,}".format(n)
                                                                              for n in fault.during))
        lines.append("| %d | %s%s | %s | %s | %s | %s | %s |" % (
            number, fault.kind, " (%s)" % note if note else "", at, undone,
            fault.waited_for or "nothing flowing", recovered, verdict(fault)))
    return "\n".join(lines)


def verdict(fault: Fault) -> str:
    if fault.error:
        return "FAILED to inject: %s" % fault.error
    if fault.injected_at is None:
        return "not run"
    moving = fault.waited_for.split("+")
    if fault.must_serve and fault.restored_at is not None and not all(
            gained for name, gained in zip(("raw", "out"), fault.during) if name in moving):
        return "NOT served during the fault"
    if fault.recovered_after is None:
        return "NOT recovered"
    return "recovered"
