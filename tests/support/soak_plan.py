"""The soak's verdicts, apart from any node: is memory flat, is the lag bounded, and the figures
per stretch of the run, computed from samples taken every few seconds.

tests/chaos/run_soak.py (make soak) takes the samples on the sandbox; this module is pure so that
tests/unit/test_soak_plan.py can check the rules on made-up samples.

The rules, both on thirds of the run (the first third is warm-up: a JVM's heap and the page
cache grow until they reach their working size, and the job's first batches compile code):
- memory is flat when the median resident size of the last third is at most `max_growth`
  (10 %) above the median of the middle third, for each service;
- the lag is bounded when the largest lag of the last third is at most 1.25 times the largest
  of the middle third plus `lag_slack` messages. A job that keeps up has a lag that comes and
  goes with its micro-batches, the same in both thirds. A job slower than the producer falls
  behind by the same amount every second: its largest lag in the last third is 1.5 times that
  of the middle third (more with the batches' own lag on top), which fails; a job behind by
  less than about 10,000 messages a third of the run (under 1 % of the producer's rate in a
  30-minute soak) passes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

MAX_GROWTH = 0.10
LAG_SLACK = 10_000


@dataclass
class Sample:
    at: float  # seconds since the soak's start
    producer_kib: Optional[int]  # resident size of the producer's main process (None: not running)
    job_kib: Optional[int]  # resident size of the job's driver JVM
    lag: Optional[int]  # messages of customers-raw the job has not committed yet (None: unknown)
    raw: Optional[int]  # committed records in customers-raw
    restarts: Tuple[Optional[int], Optional[int]] = (None, None)  # NRestarts of producer, job


@dataclass
class Verdict:
    name: str
    ok: bool
    detail: str


def thirds(samples: Sequence[Sample], duration: float) -> Tuple[List[Sample], List[Sample]]:
    """The middle and the last third of the run (by time), leaving out the first."""
    middle = [s for s in samples if duration / 3 <= s.at < 2 * duration / 3]
    last = [s for s in samples if s.at >= 2 * duration / 3]
    return middle, last


def memory_verdict(samples: Sequence[Sample], duration: float, field: str, name: str,
                   max_growth: float = MAX_GROWTH) -> Verdict:
    middle, last = thirds(samples, duration)
    before = [getattr(s, field) for s in middle if getattr(s, field)]
    after = [getattr(s, field) for s in last if getattr(s, field)]
    if len(before) < 3 or len(after) < 3:
        return Verdict(name, False, "too few samples of its memory (%d and %d): was it running?"
                       % (len(before), len(after)))
    base, end = statistics.median(before), statistics.median(after)
    growth = (end - base) / base
    return Verdict(name, growth <= max_growth, "median resident size %.0f MiB in the middle third, %.0f MiB in the "
                   "last (%+.1f %%, at most %+.0f %%)" % (base / 1024, end / 1024, 100 * growth, 100 * max_growth))


def lag_verdict(samples: Sequence[Sample], duration: float, slack: int = LAG_SLACK) -> Verdict:
    middle, last = thirds(samples, duration)
    before = [s.lag for s in middle if s.lag is not None]
    after = [s.lag for s in last if s.lag is not None]
    if len(before) < 3 or len(after) < 3:
        return Verdict("lag", False, "too few samples of the lag (%d and %d)" % (len(before), len(after)))
    bound = 1.25 * max(before) + slack
    return Verdict("lag", max(after) <= bound, "largest %d message(s) in the middle third, %d in the last "
                   "(bound %d)" % (max(before), max(after), bound))


def restarts_verdict(first: Sample, last: Sample) -> Verdict:
    """Neither service restarted during the soak: a leak that ends in an OOM kill and a restart
    would otherwise look flat."""
    grew = [name for name, a, b in zip(("customer-producer", "customer-stream"), first.restarts, last.restarts)
            if a is None or b is None or b != a]
    return Verdict("restarts", not grew, "none" if not grew else "restarted or unknown: %s" % ", ".join(grew))


def rate(samples: Sequence[Sample]) -> Optional[float]:
    """Committed records per second in customers-raw over the samples."""
    known = [s for s in samples if s.raw is not None]
    if len(known) < 2 or known[-1].at <= known[0].at:
        return None
    return (known[-1].raw - known[0].raw) / (known[-1].at - known[0].at)  # type: ignore[operator]


def figures(samples: Sequence[Sample], duration: float, parts: int = 6) -> str:
    """A Markdown table: per stretch of the run, the producer's rate, both services' largest
    resident size and the largest lag."""
    lines = ["| minutes | records/s into customers-raw | producer MiB (max) | job MiB (max) | lag (max messages) |",
             "|---|---|---|---|---|"]
    for part in range(parts):
        start, end = duration * part / parts, duration * (part + 1) / parts
        stretch = [s for s in samples if start <= s.at < end or (part == parts - 1 and s.at >= end)]

        speed = rate(stretch)
        lines.append("| %s-%s | %s | %s | %s | %s |" % (
            _minutes(start), _minutes(end), "-" if speed is None else "%.0f" % speed,
            _most(stretch, "producer_kib", 1024), _most(stretch, "job_kib", 1024), _most(stretch, "lag")))
    return "\n".join(lines)


def _most(samples: Sequence[Sample], field: str, scale: float = 1.0) -> str:
    values = [getattr(s, field) for s in samples if getattr(s, field) is not None]
    return "%.0f" % (max(values) / scale) if values else "-"


def _minutes(seconds: float) -> str:
    """Whole minutes as such, a short run's stretches to a tenth."""
    return "%.0f" % (seconds / 60) if seconds % 60 == 0 else "%.1f" % (seconds / 60)
