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


# -- the grown ledger: list, locks, deviations, pieces -------------------------------------------------
from types import SimpleNamespace  # noqa: E402

from territory_planner.core.graph import count_parts, join_islands  # noqa: E402
from territory_planner.core.metrics import relative_deviation  # noqa: E402
from territory_planner.core.plan.ledger import (  # noqa: E402
    TerritoryList,
    pieces_and_strays,
    prepare_units,
)


def stray_fids_from_scratch(ledger: TerritoryLedger, adjacency) -> list:
    """Units outside their territory's largest piece, territory by territory from scratch."""
    from scipy.sparse.csgraph import connected_components

    found = []
    for name in ledger.territories.names:
        members = ledger.members(name)
        if len(members) == 0:
            continue
        count, piece = connected_components(adjacency[members][:, members], directed=False)
        if count > 1:
            found += ledger.fids[members[piece != np.bincount(piece).argmax()]].tolist()
    return sorted(found)


def test_pieces_are_counted_again_only_where_moves_touch_and_equal_a_full_count(grid_instance):
    positions, adjacency = grid_instance(10, 10)
    rng = np.random.default_rng(8)
    names = [["A", "B", "C", "D"][int(x // 2500) if x < 10_000 else 3] for x in positions[:, 0]]
    fids = np.arange(100, 200)
    ledger = TerritoryLedger(names, rng.uniform(1, 5, (100, 1)), registry=["A", "B", "C", "D"], fids=fids)
    assert (ledger.pieces.parts == -1).all(), "unknown until the neighbours are given"
    ledger.count_pieces(adjacency)
    for step in range(300):
        ledger.move(int(rng.integers(100)), ["A", "B", "C", "D", None][int(rng.integers(5))])
        if step % 7 == 0:
            ledger.settle()
            labels = ledger.plan_labels()
            listed = ledger.listed()
            assert ledger.pieces.parts[listed].tolist() == count_parts(labels, adjacency, 4).tolist()
            assert sorted(ledger.stray_fids()) == stray_fids_from_scratch(ledger, adjacency)
            assert ledger.noncontiguous() == int((count_parts(labels, adjacency, 4) > 1).sum())


def test_all_pieces_at_once_equal_the_engines_count_and_prepared_units_take_the_plans_order(grid_instance):
    positions, adjacency = grid_instance(6, 8)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 48)  # registry numbers; 0 is unassigned
    parts, strays = pieces_and_strays(adjacency, labels, 4)
    assert parts[1:].tolist() == count_parts(labels - 1, adjacency, 3).tolist()
    assert all((labels[units] == k).all() for k, units in strays.items())

    # units read in another order than the plan's: prepare_units puts them back
    fids = np.arange(1000, 1048)
    shuffled = rng.permutation(48)
    read = SimpleNamespace(fids=fids[shuffled], positions=positions[shuffled],
                           adjacency=adjacency[shuffled][:, shuffled])
    prepared = prepare_units(read, fids, labels)
    assert np.array_equal(prepared.positions, positions)
    assert (prepared.raw_adjacency != (adjacency > 0)).nnz == 0
    assert (prepared.adjacency != join_islands(adjacency, positions).adjacency).nnz == 0
    assert prepared.parts.tolist() == parts.tolist()
    assert prepare_units(read, fids[:-1]) is None, "not the same units"


def test_territory_list_locks_and_settle_say_what_changed():
    workloads = np.array([[1.0], [2.0], [3.0], [4.0]])
    ledger = TerritoryLedger(["A", "A", "B", None], workloads, territories=TerritoryList(("A", "B"), frozenset({"B"})),
                             field_locks=np.array([True, False, False, False]), fids=np.array([10, 11, 12, 13]))
    assert ledger.locked_mask().tolist() == [True, False, True, False], "a locked unit, and B's units"
    assert ledger.lock_units([1, 0], True) == 2 and ledger.is_unit_locked(11)
    assert ledger.lock_units([1], True) == 0, "already on the list"
    assert ledger.territory_of_fid(12) == "B" and ledger.fids_of(None) == [13]

    ledger.move(3, "C")  # a value typed elsewhere: C joins the list when the change settles
    settled = ledger.settle(name_order=str)
    assert settled.list_changed and ledger.territories.names == ("A", "B", "C")
    ledger.set_workload(1, 0, 6.0)
    settled = ledger.settle()
    assert settled.totals_changed and not settled.list_changed and settled.territories == ["A"]
    ledger.set_field_lock(2, True)
    assert ledger.settle().territories == ["B"]


def test_deviations_and_tolerances_use_the_one_formula():
    ledger = TerritoryLedger(["A", "A", "B", "C"], np.array([[1.0, 10], [2, 10], [3, 10], [6, 30]]))
    target = np.array([12 / 3, 60 / 3])
    sums = {"A": [3.0, 20], "B": [3.0, 10], "C": [6.0, 30]}
    for name, row in sums.items():
        np.testing.assert_allclose(ledger.figures_of(name)["deviation"], relative_deviation(np.array(row), target))
    assert ledger.max_deviation() == pytest.approx(0.5)  # C: 6 against 4, B: 10 against 20
    assert ledger.out_of_tolerance("A", [0.2, 0.1]), "A's sum is 25 % under its target on the first measure"
    assert not ledger.out_of_tolerance("A", [0.3, 0.0])
    assert not ledger.out_of_tolerance(None, [0.0, 0.0]), "the unassigned row has no tolerance"
    assert np.isnan(ledger.figures_of(None)["deviation"]).all() and ledger.figures_of("Nowhere") == {}


def test_accounts_count_where_they_are_aligned_and_stay_equal_to_a_recount():
    ledger = TerritoryLedger(["A", "A", "B", None], np.array([[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [8.0, 0.0]]))
    # measure 1 is an account measure: 3 at unit 0, 5 at unit 2; an account of 7 overridden to A
    ledger.set_account_loads([1], np.array([[3.0], [0.0], [5.0], [0.0]]), {"A": np.array([0.0, 7.0])})
    a, b = ledger.registry_index["A"], ledger.registry_index["B"]
    np.testing.assert_allclose(ledger.sums[a], [3.0, 10.0])
    np.testing.assert_allclose(ledger.sums[b], [4.0, 5.0])
    np.testing.assert_allclose(ledger.totals, [15.0, 15.0])
    # the account of 5 at unit 2 is overridden to A: it leaves its unit and joins A's fixed load
    ledger.add_to_unit(2, np.array([0.0, -5.0]))
    ledger.add_fixed("A", np.array([0.0, 5.0]))
    ledger.move(0, "B")  # a unit moves with its accounts, never with the overrides
    np.testing.assert_allclose(ledger.sums[a], [2.0, 12.0])
    np.testing.assert_allclose(ledger.sums[b], [5.0, 3.0])
    fixed = ledger.fixed.copy()
    ledger.recount()
    np.testing.assert_allclose(ledger.sums[a], [2.0, 12.0])
    np.testing.assert_allclose(ledger.fixed, fixed)
    assert ledger.settle().totals_changed


def test_rescaling_a_measure_scales_units_sums_and_totals_alike():
    ledger = TerritoryLedger(["A", "A", "B"], np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]))
    before = ledger.figures_of("A")["deviation"].copy()
    ledger.rescale(1, 0.5)
    assert ledger.workloads[:, 1].tolist() == [5.0, 10.0, 15.0]
    assert ledger.figures_of("A")["sums"].tolist() == [3.0, 15.0]
    assert ledger.totals.tolist() == [6.0, 30.0]
    np.testing.assert_allclose(ledger.figures_of("A")["deviation"], before)
