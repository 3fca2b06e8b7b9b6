"""Alignment scope "accounts only": balance territories by overriding accounts, never by moving units.

The units keep their territories. Accounts that carry no override may be handed to a territory
bordering their unit's territory (a new override), as little workload as possible being moved.
Accounts are small beside a territory, so the search works in three steps:

1. Flows. A small linear program over the territory graph decides how much of each territory's
   movable accounts crosses each border, every territory ending inside its band, as little
   workload moved as possible. A territory's movable accounts are pooled by their dominant
   measure, so the program knows what mix of workloads a border can carry.
2. Accounts. Each border's flow is carried by real accounts of the pool: the largest that still
   fit what is left, then the smallest that covers the rest. Single account moves (and returns
   home of the new overrides) then remove what excess the rounding left, best first.
3. Give back. New overrides that balance does not need return home, largest first, where both
   territories stay as good as they are.

Existing overrides are never touched. Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

#: Weight of excess left beyond the band against workload moved (keeps the program feasible).
SLACK_COST = 100.0
#: The repair moves at most this many accounts one at a time.
REPAIR_STEPS = 5000
#: ... looking at the territories furthest beyond their band first, this many per step.
REPAIR_TERRITORIES = 20
EPS = 1e-12


@dataclass
class AccountMoves:
    """What the search decided.

    destination     (a,) the new override of each account (a territory index), -1 where none is set
    sums            (p, m) the territories' sums afterwards
    moved_workload  (m,) workload given new overrides, per measure
    """

    destination: np.ndarray
    sums: np.ndarray
    moved_workload: np.ndarray

    @property
    def moved(self) -> np.ndarray:
        return np.flatnonzero(self.destination >= 0)


def move_accounts(territory, movable, workloads, sums, targets, tolerances, borders) -> AccountMoves:
    """Choose new overrides that bring every territory into its band, moving as little as possible.

    territory   (a,) each account's current territory (-1: none; such accounts never move)
    movable     (a,) bool, the account may receive a new override (it has none and is in its home
                unit's territory)
    workloads   (a, m) the accounts' workloads on every balanced measure (0 on the units' measures)
    sums        (p, m) every territory's current sums (units, accounts and overrides)
    targets     (p, m) targets; a measure whose targets are all 0 is not balanced
    tolerances  (m,) allowed deviation per measure (fractions)
    borders     (E, 2) pairs of territories that share a border (either order)
    """
    territory = np.asarray(territory, dtype=np.int64).reshape(-1)
    work = np.asarray(workloads, dtype=float).reshape(territory.size, -1)
    sums = np.asarray(sums, dtype=float).copy()
    targets = np.asarray(targets, dtype=float).reshape(sums.shape)
    tol = np.broadcast_to(np.asarray(tolerances, dtype=float).reshape(-1), (sums.shape[1],)).copy()
    search = _Search(territory, np.asarray(movable, dtype=bool) & (territory >= 0), work, sums, targets, tol,
                     _neighbour_sets(borders, sums.shape[0]))
    if search.excess(search.sums).sum() > EPS:
        search.carry_flows()
        search.repair()
        search.give_back()
    moved = search.destination >= 0
    return AccountMoves(search.destination, search.sums, work[moved].sum(axis=0))


def _neighbour_sets(borders, p: int) -> list[set]:
    pairs = np.asarray(borders, dtype=np.int64).reshape(-1, 2)
    sets: list[set] = [set() for _ in range(p)]
    for a, b in pairs.tolist():
        if a != b and 0 <= a < p and 0 <= b < p:
            sets[a].add(b)
            sets[b].add(a)
    return sets


class _Search:
    def __init__(self, territory, movable, work, sums, targets, tol, neighbours):
        self.territory, self.movable, self.work = territory, movable, work
        self.sums, self.tol, self.neighbours = sums, tol, neighbours
        self.p, self.m = sums.shape
        self.active = targets.max(axis=0) > 0 if targets.size else np.zeros(0, dtype=bool)
        # workloads measured in targets: one unit of every measure weighs the same
        self.scale = np.where(targets > 0, targets, 1.0)
        self.upper = targets * (1.0 + tol)[None, :]
        self.lower = targets * (1.0 - tol)[None, :]
        self.mean_target = np.where(self.active, targets.mean(axis=0), 1.0)
        self.size = (work[:, self.active] / self.mean_target[self.active]).sum(axis=1) if work.size else np.zeros(
            territory.size)
        self.destination = np.full(territory.size, -1, dtype=np.int64)
        movers = np.flatnonzero(movable & (self.size > 0))
        movers = movers[np.argsort(territory[movers], kind="stable")]
        starts = np.searchsorted(territory[movers], np.arange(self.p + 1))
        #: the movable accounts of every home territory
        self.members = [movers[starts[k]:starts[k + 1]] for k in range(self.p)]

    # -- figures ----------------------------------------------------------------------------------
    def excess(self, sums: np.ndarray) -> np.ndarray:
        """(p,) load beyond the band per territory, in targets, summed over the active measures."""
        over = np.maximum(sums - self.upper, 0.0) + np.maximum(self.lower - sums, 0.0)
        return (over / self.scale)[:, self.active].sum(axis=1)

    def _apply(self, account: int, source: int, target: int) -> None:
        self.sums[source] -= self.work[account]
        self.sums[target] += self.work[account]

    # -- 1. flows ---------------------------------------------------------------------------------
    def _pools(self) -> tuple[np.ndarray, np.ndarray]:
        """(pool of each account (-1: cannot move), (P, 2) territory and dominant measure of each pool)."""
        free = self.movable & (self.destination < 0) & (self.size > 0)
        act = np.flatnonzero(self.active)
        if act.size == 0:
            return np.full(self.territory.size, -1, dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
        share = self.work[:, act] / self.mean_target[act]
        dominant = act[np.argmax(share, axis=1)]
        key = np.where(free, self.territory * self.m + dominant, -1)
        pools, inverse = np.unique(key[free], return_inverse=True)
        pool = np.full(self.territory.size, -1, dtype=np.int64)
        pool[free] = inverse
        return pool, np.column_stack([pools // self.m, pools % self.m])

    def carry_flows(self) -> None:
        pool, pools = self._pools()
        if pools.shape[0] == 0:
            return
        totals = np.zeros((pools.shape[0], self.m))
        np.add.at(totals, pool[pool >= 0], self.work[pool >= 0])
        columns = [(g, b) for g, (k, _) in enumerate(pools.tolist()) for b in sorted(self.neighbours[k])]
        if not columns:
            return
        flows = self._solve_flows(pools, totals, columns)
        order = np.argsort(pool, kind="stable")
        starts = np.searchsorted(pool[order], np.arange(pools.shape[0] + 1))
        for (g, b), fraction in sorted(zip(columns, flows.tolist()), key=lambda item: -item[1]):
            if fraction <= 1e-9:
                continue
            members = order[starts[g]:starts[g + 1]]
            members = members[self.destination[members] < 0]
            amount = fraction * float(self.size[order[starts[g]:starts[g + 1]]].sum())
            for account in _cover(members, self.size, amount).tolist():
                self.destination[account] = b
                self._apply(account, int(self.territory[account]), b)

    def _solve_flows(self, pools: np.ndarray, totals: np.ndarray, columns: list) -> np.ndarray:
        """Fraction of each pool sent across each border: x[g, b] in [0, 1], sum over b <= 1."""
        act = np.flatnonzero(self.active)
        ncol = len(columns)
        source = pools[[g for g, _ in columns], 0]
        receiver = np.array([b for _, b in columns], dtype=np.int64)
        group = np.array([g for g, _ in columns], dtype=np.int64)
        upper_room = (self.upper - self.sums) / self.mean_target[None, :]
        lower_room = (self.sums - self.lower) / self.mean_target[None, :]
        rows, cols, vals, rhs = [group], [np.arange(ncol)], [np.ones(ncol)], [np.ones(pools.shape[0])]
        base = pools.shape[0]
        nslack = 0
        for a in act.tolist():
            carried = totals[group, a] / self.mean_target[a]
            up = base + np.arange(self.p)
            down = base + self.p + np.arange(self.p)
            slack_up = ncol + nslack + np.arange(self.p)
            slack_down = ncol + nslack + self.p + np.arange(self.p)
            # change_k = gains - losses: at most the room up, at least minus the room down
            rows += [up[receiver], up[source], up, down[receiver], down[source], down]
            cols += [np.arange(ncol), np.arange(ncol), slack_up, np.arange(ncol), np.arange(ncol), slack_down]
            vals += [carried, -carried, -np.ones(self.p), -carried, carried, -np.ones(self.p)]
            rhs += [upper_room[:, a], lower_room[:, a]]
            base += 2 * self.p
            nslack += 2 * self.p
        moved_size = (totals[group][:, act] / self.mean_target[act]).sum(axis=1)
        cost = np.concatenate([moved_size, np.full(nslack, SLACK_COST)])
        matrix = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                               shape=(base, ncol + nslack))
        bounds = [(0.0, 1.0)] * ncol + [(0.0, None)] * nslack
        result = linprog(cost, A_ub=matrix, b_ub=np.concatenate(rhs), bounds=bounds, method="highs")
        if result.status != 0 or result.x is None:
            return np.zeros(ncol)
        return np.clip(result.x[:ncol], 0.0, 1.0)

    # -- 2. single moves --------------------------------------------------------------------------
    def repair(self) -> None:
        for _ in range(REPAIR_STEPS):
            excess = self.excess(self.sums)
            if excess.sum() <= EPS:
                return
            best = None
            for k in np.flatnonzero(excess > EPS)[np.argsort(-excess[excess > EPS])][:REPAIR_TERRITORIES].tolist():
                found = self._best_move_for(k, excess)
                if found is not None and (best is None or found[0] < best[0] - EPS):
                    best = found
            if best is None:
                return
            _, account, target = best
            self._move(account, target)

    def _move(self, account: int, target: int) -> None:
        current = int(self.destination[account]) if self.destination[account] >= 0 else int(self.territory[account])
        self._apply(account, current, target)
        self.destination[account] = -1 if target == self.territory[account] else target

    def _best_move_for(self, k: int, excess: np.ndarray):
        """(change of the total excess, account, target) of the best single move that lowers the
        excess of territory k, or None. An account may go to its home unit's territory or to a
        territory bordering it."""
        current = np.where(self.destination >= 0, self.destination, self.territory)
        homes = {k} | self.neighbours[k] | set(self.territory[self.destination == k].tolist())
        accounts, targets = [], []
        for home in sorted(homes):
            members = self.members[home]
            allowed = self.neighbours[home] | {home}
            here = current[members]
            # out of k: every allowed territory but k; into k: when k is allowed
            leaving = members[here == k]
            for target in sorted(allowed - {k}):
                accounts.append(leaving)
                targets.append(np.full(leaving.size, target, dtype=np.int64))
            if k in allowed:
                arriving = members[here != k]
                accounts.append(arriving)
                targets.append(np.full(arriving.size, k, dtype=np.int64))
        accounts = np.concatenate(accounts) if accounts else np.zeros(0, dtype=np.int64)
        if accounts.size == 0:
            return None
        targets = np.concatenate(targets)
        sources = current[accounts]
        before = excess[sources] + excess[targets]
        after = (self._excess_rows(self.sums[sources] - self.work[accounts], sources)
                 + self._excess_rows(self.sums[targets] + self.work[accounts], targets))
        gain = after - before
        # returning home lowers the workload moved; leaving home raises it
        cost = np.where(targets == self.territory[accounts], -self.size[accounts], self.size[accounts])
        order = np.lexsort((cost, gain))
        first = int(order[0])
        if gain[first] >= -EPS:
            return None
        return float(gain[first]), int(accounts[first]), int(targets[first])

    def _excess_rows(self, rows: np.ndarray, territories: np.ndarray) -> np.ndarray:
        over = np.maximum(rows - self.upper[territories], 0.0) + np.maximum(self.lower[territories] - rows, 0.0)
        return (over / self.scale[territories])[:, self.active].sum(axis=1)

    # -- 3. give back -----------------------------------------------------------------------------
    def give_back(self) -> None:
        """Return new overrides home, largest first, where neither territory gets worse; again while
        some return (one return makes room for another)."""
        returned = True
        while returned:
            returned = False
            moved = np.flatnonzero(self.destination >= 0)
            for account in moved[np.argsort(-self.size[moved], kind="stable")].tolist():
                source, home = int(self.destination[account]), int(self.territory[account])
                pair = np.array([source, home])
                before = self._excess_rows(self.sums[pair], pair).sum()
                after = self._excess_rows(np.stack([self.sums[source] - self.work[account],
                                                    self.sums[home] + self.work[account]]), pair).sum()
                if after <= before + EPS:
                    self._move(account, home)
                    returned = True


def _cover(members: np.ndarray, size: np.ndarray, amount: float) -> np.ndarray:
    """Accounts of ``members`` whose sizes add up to ``amount`` with little overshoot: the largest
    that still fit what is left, then the smallest that covers the rest; or the smallest single
    account that covers the whole amount, when that overshoots less."""
    if amount <= EPS or members.size == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = members[np.argsort(-size[members], kind="stable")]
    values = size[ordered]
    chosen = []
    left = amount
    for index, value in enumerate(values.tolist()):
        if value <= left + EPS:
            chosen.append(index)
            left -= value
            if left <= EPS:
                break
    if left > EPS:
        taken = np.zeros(values.size, dtype=bool)
        taken[chosen] = True
        covering = np.flatnonzero(~taken & (values >= left))
        if covering.size:
            chosen.append(int(covering[-1]))  # the smallest that covers (sizes are descending)
    alone = np.flatnonzero(values >= amount - EPS)
    if alone.size and float(values[alone[-1]]) < float(values[chosen].sum()) - EPS:
        chosen = [int(alone[-1])]
    return ordered[np.asarray(chosen, dtype=np.int64)]


def move_accounts_in_plan(problem, labels, book, account_columns) -> tuple[AccountMoves, object]:
    """:func:`move_accounts` on a plan: ``problem`` holds the units' workloads (with the accounts
    aligned to them) and the fixed loads (the overridden accounts), ``labels`` the units'
    territories (they stay), ``book`` the accounts (a ``core.plan.accounts.AccountBook``) whose
    workload columns are the problem's measures ``account_columns``. Returns the moves and the book
    with the new overrides."""
    from ..metrics import plan_figures
    from ..plan.accounts import AccountBook
    from ..plan.colouring import territory_neighbours

    labels = np.asarray(labels, dtype=np.int64)
    p = int(problem.territory_count)
    figures = plan_figures(labels, problem)
    account_work = np.zeros((book.count, figures.sums.shape[1]))
    if book.measure_count:
        account_work[:, list(account_columns)] = book.workloads
    territory = book.territories(labels)
    movable = (~book.overridden) & (book.home >= 0) & (territory >= 0)
    coo = problem.adjacency.tocoo()
    neighbours = territory_neighbours(labels, np.column_stack([coo.row, coo.col]), p)
    borders = np.array([(a, b) for a in range(p) for b in neighbours[a] if a < b], dtype=np.int64).reshape(-1, 2)
    tolerances = problem.tolerance_vector()[: figures.sums.shape[1]]
    moves = move_accounts(territory, movable, account_work, figures.sums, figures.targets, tolerances, borders)
    override = np.where(moves.destination >= 0, moves.destination, book.override)
    return moves, AccountBook(home=book.home, override=override, workloads=book.workloads)
