"""tests/support/ci_budget.py: which long phase of make test CI skips on a slow day."""

from __future__ import annotations

import ci_budget
import pytest

DEADLINE = 10_000.0


def at(minutes_left: float) -> float:
    return DEADLINE - minutes_left * 60


def test_without_a_deadline_every_phase_runs():
    assert all(ci_budget.skip_reason(phase, 1e12, None) is None for phase in ci_budget.NAMES)


def test_a_phase_runs_when_it_and_every_later_phase_fit():
    assert ci_budget.minutes_needed("chaos") == 13 + 18 + 8 + 1
    assert ci_budget.skip_reason("chaos", at(40), DEADLINE) is None
    assert ci_budget.skip_reason("cluster3", at(27), DEADLINE) is None


def test_chaos_gives_way_first_then_the_three_node_tests_then_hdp():
    left = 30  # too little for chaos (40) but enough for the three-node tests and after (27)
    assert "make chaos" in ci_budget.skip_reason("chaos", at(left), DEADLINE)
    assert ci_budget.skip_reason("cluster3", at(left), DEADLINE) is None
    assert ci_budget.skip_reason("cluster3", at(26), DEADLINE) is not None
    assert ci_budget.skip_reason("hdp", at(26), DEADLINE) is None
    reason = ci_budget.skip_reason("hdp", at(8), DEADLINE)
    assert reason is not None and "8 min left" in reason and "needs about 9 min" in reason


def test_past_the_deadline_says_0_min_left():
    assert "0 min left" in ci_budget.skip_reason("audit", DEADLINE + 600, DEADLINE)


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase"):
        ci_budget.skip_reason("soak", 0, None)


def test_main_prints_and_logs_a_skip(monkeypatch, tmp_path, capsys):
    log = tmp_path / "ci-skipped.txt"
    monkeypatch.setattr(ci_budget, "SKIPPED_LOG", log)
    monkeypatch.setattr(ci_budget.time, "time", lambda: DEADLINE - 60)
    monkeypatch.setenv("CI_DEADLINE", str(int(DEADLINE)))
    assert ci_budget.main(["cluster3"]) == 1
    assert capsys.readouterr().out.startswith("ci-budget: SKIPPED make test-cluster")
    assert log.read_text().startswith("SKIPPED make test-cluster")
    monkeypatch.delenv("CI_DEADLINE")
    assert ci_budget.main(["cluster3"]) == 0
