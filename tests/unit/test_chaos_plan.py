"""The chaos run's schedule and recovery rules (tests/support/chaos_plan.py), on made-up samples."""

from __future__ import annotations

from collections import Counter

import pytest
from chaos_plan import Fault, measure_recovery, schedule, table, verdict

KINDS = ["driver", "producer", "broker", "datanode", "namenode", "s3", "reboot", "unwritable"]


def test_every_kind_happens_twice_in_sixteen_faults_with_gaps_in_range():
    faults = schedule(KINDS, seed=42)
    assert len(faults) == 16
    assert Counter(f.kind for f in faults) == {kind: 2 for kind in KINDS}
    assert all(20.0 <= f.gap_seconds <= 40.0 for f in faults)
    assert all(a.kind != b.kind for a, b in zip(faults, faults[1:]))


def test_the_seed_replays_the_order_and_another_seed_draws_another():
    first = [(f.kind, f.gap_seconds) for f in schedule(KINDS, seed=7)]
    assert first == [(f.kind, f.gap_seconds) for f in schedule(KINDS, seed=7)]
    assert first != [(f.kind, f.gap_seconds) for f in schedule(KINDS, seed=8)]


def test_a_single_kind_repeated_cannot_avoid_itself_and_still_terminates():
    assert [f.kind for f in schedule(["only"], seed=1, repeats=3)] == ["only"] * 3


@pytest.mark.parametrize("kinds, repeats, gaps", [([], 2, (20, 40)), (KINDS, 0, (20, 40)), (KINDS, 2, (40, 20))])
def test_an_impossible_schedule_is_refused(kinds, repeats, gaps):
    with pytest.raises(ValueError):
        schedule(kinds, seed=1, repeats=repeats, min_gap=gaps[0], max_gap=gaps[1])


def flowing(start: int, end: int, raw_stops=(), out_stops=(), down=()):
    """One sample a second; raw grows 100/s and out 90/s except in the stop ranges; None in `down`."""
    samples, raw, out = [], 0, 0
    for second in range(start, end):
        if not any(a <= second < b for a, b in raw_stops):
            raw += 100
        if not any(a <= second < b for a, b in out_stops):
            out += 90
        if any(a <= second < b for a, b in down):
            samples.append((float(second), None, None))
        else:
            samples.append((float(second), raw, out))
    return samples


def test_recovery_is_when_the_later_of_both_flows_moves_again():
    # The driver killed at 100: output stops until 135, raw keeps flowing.
    fault = Fault("driver", 30, injected_at=100.0, restored_at=100.0)
    measure_recovery(fault, flowing(0, 300, out_stops=[(100, 135)]))
    assert fault.waited_for == "raw+out"
    assert fault.recovered_after == 35.0
    assert verdict(fault) == "recovered"


def test_a_broker_that_does_not_answer_counts_from_its_first_answer():
    fault = Fault("broker", 30, injected_at=100.0, restored_at=110.0)
    samples = flowing(0, 300, raw_stops=[(100, 125)], out_stops=[(100, 130)], down=[(100, 120)])
    measure_recovery(fault, samples)
    assert fault.recovered_after == 30.0


def test_a_flow_that_never_moves_again_is_not_recovered():
    fault = Fault("unwritable", 30, injected_at=100.0, restored_at=130.0)
    measure_recovery(fault, flowing(0, 300, out_stops=[(100, 300)]))
    assert fault.recovered_after is None
    assert verdict(fault) == "NOT recovered"


def test_growth_right_after_the_restore_is_not_taken_for_recovery():
    # One sample that still carries a batch written before the kill, then nothing until 150.
    samples = flowing(0, 300, out_stops=[(101, 150)])
    fault = Fault("driver", 30, injected_at=100.0, restored_at=100.0)
    measure_recovery(fault, samples)
    assert fault.recovered_after == 50.0


def test_nothing_flowing_before_the_fault_needs_nothing_to_resume():
    fault = Fault("datanode", 30, injected_at=100.0, restored_at=104.0)
    measure_recovery(fault, flowing(0, 300, raw_stops=[(0, 300)], out_stops=[(0, 300)]))
    assert (fault.waited_for, fault.recovered_after) == ("", 4.0)


def test_the_table_has_a_row_per_fault_with_its_verdict():
    done = Fault("driver", 30, injected_at=110.0, restored_at=110.0, note="driver PID 7", recovered_after=31.4,
                 waited_for="raw+out")
    failed = Fault("s3", 25, injected_at=170.0, restored_at=171.0, error="seaweedfs: exit 5")
    text = table([done, failed, Fault("reboot", 20)], started=100.0)
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[2] == "| 1 | driver (driver PID 7) | 10 | 0 | raw+out | 31 | recovered |"
    assert lines[3].endswith("| FAILED to inject: seaweedfs: exit 5 |")
    assert lines[4].endswith("| not run |")


def test_a_recovery_that_outlasted_the_next_fault_says_so():
    first = Fault("driver", 30, injected_at=110.0, restored_at=110.0, recovered_after=40.0, waited_for="out")
    second = Fault("s3", 25, injected_at=140.0, restored_at=170.0, recovered_after=35.0, waited_for="raw")
    lines = table([first, second], started=100.0).splitlines()
    assert "| 40 (after #2 came) | recovered |" in lines[2]
    assert "| 35 | recovered |" in lines[3]


def test_one_broker_down_must_be_served_through_by_the_others():
    # Both flows go on while the broker is down (100-160), a little slower.
    served = Fault("broker down", 30, injected_at=100.0, restored_at=160.0, must_serve=True)
    measure_recovery(served, flowing(0, 300))
    assert served.during == (5800, 5220)  # 58 s of samples after the settle time
    assert verdict(served) == "recovered"
    assert "(during it raw +5,800, out +5,220)" in table([served], started=0.0)


def test_a_stall_while_the_broker_is_down_is_not_served_even_if_it_recovers():
    stalled = Fault("broker down", 30, injected_at=100.0, restored_at=160.0, must_serve=True)
    measure_recovery(stalled, flowing(0, 300, out_stops=[(100, 165)]))
    assert stalled.recovered_after is not None and stalled.during[1] == 0
    assert verdict(stalled) == "NOT served during the fault"
    # The same samples for a fault nobody must serve through: recovery is all that counts.
    outage = Fault("store stopped", 30, injected_at=100.0, restored_at=160.0)
    measure_recovery(outage, flowing(0, 300, out_stops=[(100, 165)]))
    assert verdict(outage) == "recovered"
