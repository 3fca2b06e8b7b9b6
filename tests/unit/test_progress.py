"""Progress callbacks and cancellation."""

from __future__ import annotations

import pytest
from territory_planner.core.progress import Cancelled, Progress


def test_step_reports_fraction_and_message():
    seen = []
    Progress(report=lambda f, m: seen.append((f, m))).step(0.25, "half way there")
    assert seen == [(0.25, "half way there")]


def test_sub_maps_onto_its_span():
    seen = []
    child = Progress(report=lambda f, m: seen.append(f)).sub(0.5, 1.0).sub(0.0, 0.5)
    child.step(0.0)
    child.step(1.0)
    assert seen == pytest.approx([0.5, 0.75])


def test_step_raises_when_cancelled():
    with pytest.raises(Cancelled):
        Progress(is_cancelled=lambda: True).step(0.1)


def test_silent_progress_does_nothing():
    Progress().step(0.5, "nothing happens")


def test_reported_fractions_never_go_backwards():
    seen = []
    progress = Progress(report=lambda f, m: seen.append(f))
    progress.sub(0.0, 0.5).step(0.8)
    progress.sub(0.2, 0.3).step(0.5)  # a later phase that starts lower is held at 0.4
    assert seen == pytest.approx([0.4, 0.4])


def test_children_keep_the_deadline_and_until_keeps_the_earlier_one():
    progress = Progress().until(100.0)
    assert progress.sub(0.2, 0.4).deadline == 100.0
    assert progress.until(50.0).deadline == 50.0
    assert progress.until(200.0).deadline == 100.0
    assert progress.until(None) is progress
    assert not Progress().out_of_time() and not Progress(deadline=1e18).out_of_time()
    assert Progress(deadline=0.0).out_of_time()


def test_a_quiet_child_reports_nothing_but_is_cancelled_and_out_of_time_with_its_parent():
    seen, cancelled = [], []
    quiet = Progress(report=lambda f, m: seen.append(m), is_cancelled=lambda: bool(cancelled), deadline=0.0).quiet()
    quiet.step(0.5, "not shown")
    assert seen == [] and quiet.out_of_time()
    cancelled.append(True)
    with pytest.raises(Cancelled):
        quiet.check()
