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
