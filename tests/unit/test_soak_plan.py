"""The soak's verdicts (tests/support/soak_plan.py) on made-up samples: a leak and a job that falls
behind must fail, a steady run must pass."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from soak_plan import Sample, figures, lag_verdict, memory_verdict, rate, restarts_verdict  # noqa: E402

DURATION = 900.0  # 15 minutes, a sample every 10 s


def run(producer, job, lag, restarts=(0, 0)) -> List[Sample]:  # type: ignore[no-untyped-def]
    """Samples whose values come from functions of the time (seconds)."""
    return [Sample(at, producer(at), job(at), lag(at), int(4500 * at), restarts) for at in range(0, 900, 10)]


def steady_lag(at: float) -> int:
    return int(40_000 * ((at % 30) / 30))  # a micro-batch's worth comes and goes


def test_a_steady_run_passes_every_verdict() -> None:
    # The JVM grows during warm-up (the first third), then stays.
    samples = run(lambda at: 60_000 + (at % 20), lambda at: min(900_000, 400_000 + 2_000 * at), steady_lag)
    assert memory_verdict(samples, DURATION, "producer_kib", "producer memory").ok
    assert memory_verdict(samples, DURATION, "job_kib", "job memory").ok
    verdict = lag_verdict(samples, DURATION)
    assert verdict.ok, verdict.detail
    assert restarts_verdict(samples[0], samples[-1]).ok
    assert abs(rate(samples) - 4500) < 1  # type: ignore[operator]


def test_a_leak_is_not_flat() -> None:
    # 60 MiB growing by 100 KiB a second: +50 % from the middle to the last third.
    samples = run(lambda at: 60_000 + 100 * at, lambda at: 800_000, steady_lag)
    verdict = memory_verdict(samples, DURATION, "producer_kib", "producer memory")
    assert not verdict.ok and "+" in verdict.detail, verdict.detail
    assert memory_verdict(samples, DURATION, "job_kib", "job memory").ok


def test_a_job_that_falls_behind_has_an_unbounded_lag() -> None:
    # 300 messages a second behind the producer.
    samples = run(lambda at: 60_000, lambda at: 800_000, lambda at: steady_lag(at) + 300 * int(at))
    verdict = lag_verdict(samples, DURATION)
    assert not verdict.ok, verdict.detail


def test_missing_samples_and_restarts_fail_rather_than_pass() -> None:
    samples = run(lambda at: None, lambda at: 800_000, lambda at: None)
    assert not memory_verdict(samples, DURATION, "producer_kib", "producer memory").ok
    assert not lag_verdict(samples, DURATION).ok
    restarted = run(lambda at: 1, lambda at: 1, steady_lag, restarts=(0, 1))
    assert not restarts_verdict(samples[0], restarted[-1]).ok
    assert not restarts_verdict(Sample(0, 1, 1, 0, 0, (None, 0)), Sample(9, 1, 1, 0, 0, (None, 0))).ok


def test_figures_have_a_row_per_stretch() -> None:
    samples = run(lambda at: 61_440, lambda at: 1_048_576, lambda at: 7)
    table = figures(samples, DURATION, parts=3).splitlines()
    assert len(table) == 5
    assert table[2] == "| 0-5 | 4500 | 60 | 1024 | 7 |"
    assert figures(samples, 180.0, parts=6).splitlines()[3] == "| 0.5-1 | 4500 | 60 | 1024 | 7 |"
