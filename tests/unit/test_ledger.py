"""The panel's per-territory bookkeeping, one change at a time, always equal to a full recount."""

import numpy as np
import pytest
from territory_planner.core.plan.ledger import UNASSIGNED, TerritoryLedger


def fresh(ledger: TerritoryLedger) -> TerritoryLedger:
    names = [ledger.registry[k] for k in ledger.labels]
    return TerritoryLedger(names, ledger.workloads, registry=ledger.registry[1:], rep_values=ledger.rep_values)


def test_moves_keep_counts_sums_and_reps_equal_to_a_recount():
    rng = np.random.default_rng(3)
    n = 200
    names = [rng.choice(["A", "B", "C", None]) for _ in range(n)]
    reps = [rng.choice(["ann", "bob", None]) for _ in range(n)]
    ledger = TerritoryLedger(names, rng.uniform(0, 10, (n, 2)), registry=["C", "B", "A"], rep_values=reps)
    assert ledger.registry == [None, "C", "B", "A"], "the plan's order first"
    for _ in range(500):
        i = int(rng.integers(n))
        change = rng.integers(3)
        if change == 0:
            ledger.move(i, rng.choice(["A", "B", "C", "D", None]))
        elif change == 1:
            ledger.set_workload(i, int(rng.integers(2)), float(rng.uniform(0, 10)))
        else:
            ledger.set_rep(i, rng.choice(["ann", "bob", "cy", None]))
    again = fresh(ledger)
    assert again.registry == ledger.registry
    np.testing.assert_array_equal(ledger.counts, again.counts)
    np.testing.assert_allclose(ledger.sums, again.sums, atol=1e-9)
    np.testing.assert_allclose(ledger.totals, again.totals)
    assert [dict(c) for c in ledger.reps] == [dict(c) for c in again.reps]


def test_move_reports_what_changed_and_names_keep_their_number():
    ledger = TerritoryLedger(["A", "A", None], np.array([[1.0], [2.0], [4.0]]))
    a = ledger.registry_index["A"]
    assert ledger.move(0, "A") is None
    assert ledger.move(2, "B") == (UNASSIGNED, ledger.registry_index["B"])
    b = ledger.registry_index["B"]
    assert ledger.move(2, None) == (b, UNASSIGNED)
    assert ledger.registry_index["B"] == b, "an emptied territory keeps its number (undo finds it)"
    assert ledger.counts[b] == 0 and ledger.sums[a, 0] == 3.0
    assert ledger.positions(["B", "A"]).tolist() == [1, 1, -1]
    assert ledger.deviation(a, 2)[0] == pytest.approx((3.0 - 3.5) / 3.5)


def test_rows_must_match():
    with pytest.raises(ValueError, match="workload rows"):
        TerritoryLedger(["A", "B"], np.zeros((3, 1)))
