"""The local search's merit: how much a move, an exchange or a chain of two moves improves a plan.

Merit of a plan (lower is better):
    big * excess  +  beta * spread  +  inertia_weight * inertia / inertia_ref  +  disruption * moved_weight
excess  = sum over territories and active measures of how far |ratio - 1| lies beyond the goal band;
spread  = sum of (ratio - 1)^2, switched on (beta > 0) only when plain moves stall while the
          tolerance is still violated, so that load can travel through territories already in band;
inertia = workload-weighted moment of inertia about each territory's weighted centre (or about
          its fixed centre: a seed, or a centre unit while polishing);
moved_weight = compactness weight of the units away from their initial territory (rebalance).

A change of merit is computed in two forms of the same formula: :meth:`Merit.transfer` scores
many moves at once (numpy), :meth:`Merit.rescore` one move or exchange in the current state
(Python floats: a round re-scores thousands of single moves, where numpy's per-call cost would
dominate). They agree to rounding (tests/unit/test_merit.py checks it term by term), and each is
used where it always was, so the plans stay the same bit for bit.
"""

from __future__ import annotations

import numpy as np

#: Weight of the balance excess when balance dominates.
BIG = 1000.0


def inertia(weight, moment, second_moment) -> np.ndarray:
    """Weighted inertia about the weighted centre, from the sums of w, w·xy (k, 2) and w·|xy|²
    of k groups of units (0 for a weightless group)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = second_moment - (moment**2).sum(axis=1) / np.where(weight > 1e-300, weight, 1.0)
    return np.where(weight > 1e-300, value, 0.0)


def moment_inertia(moments: np.ndarray) -> np.ndarray:
    """:func:`inertia` from (k, 4) rows of sums (w, wx, wy, w|xy|²)."""
    return inertia(moments[:, 0], moments[:, 1:3], moments[:, 3])


def _inertia_scalar(weight: float, moment_x: float, moment_y: float, second_moment: float) -> float:
    return second_moment - (moment_x * moment_x + moment_y * moment_y) / weight if weight > 1e-300 else 0.0


class Merit:
    """The merit of a LocalSearch: its weights (``big``, ``beta``, ``goal``, ``inertia_weight``,
    ``inertia_ref``, ``disruption``, ``initial``, ``fixed_centres``) and its territories' figures
    (``ratios``, ``mass``, ``moment``, ``second_moment``) are read from the search at every call."""

    def __init__(self, search):
        self.search = search
        model = search.model
        self.frac = model.frac
        self.share = model.share
        self.weight = model.weight
        self.xy = model.xy
        self.active = model.active.astype(float)

    def signature(self) -> tuple:
        """Everything besides the territories' figures that a move's score depends on."""
        search = self.search
        goal = np.asarray(search.goal, dtype=float)
        fixed = None if search.fixed_centres is None else np.asarray(search.fixed_centres, dtype=float).tobytes()
        return (float(search.big), float(search.beta), goal.tobytes(), float(search.inertia_weight),
                float(search.inertia_ref), float(search.disruption), id(search.initial), fixed)

    # ----- many moves at once ------------------------------------------------------------------
    def moves(self, unit: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Merit change of moving every ``unit`` from ``src`` to ``dst`` (each alone)."""
        if unit.size == 0:
            return np.zeros(0)
        weight = self.weight[unit]
        delta = self.transfer_between(src, dst, self.frac[unit], weight, weight[:, None] * self.xy[unit],
                                      weight * (self.xy[unit] ** 2).sum(axis=1))
        delta += self.disruption_change(unit, src, dst)
        if self.search.fixed_centres is not None:
            search = self.search
            delta += search.inertia_weight * self.fixed_change(unit, src, dst) / search.inertia_ref
        return delta

    def exchanges(self, first: np.ndarray, second: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Merit change of every exchange: ``first`` from a to b while ``second`` goes from b to a."""
        search = self.search
        weight_first, weight_second = self.weight[first], self.weight[second]
        frac = self.frac[first] - self.frac[second]
        moment = weight_first[:, None] * self.xy[first] - weight_second[:, None] * self.xy[second]
        second_moment = (weight_first * (self.xy[first] ** 2).sum(axis=1)
                         - weight_second * (self.xy[second] ** 2).sum(axis=1))
        delta = self.transfer_between(a, b, frac, weight_first - weight_second, moment, second_moment)
        if search.fixed_centres is not None:
            delta += search.inertia_weight * (self.fixed_change(first, a, b)
                                              + self.fixed_change(second, b, a)) / search.inertia_ref
        delta += self.disruption_change(first, a, b) + self.disruption_change(second, b, a)
        return delta

    def chained(self, first: np.ndarray, second: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Merit change of the second move of every chain (``second`` from b to c) after the first
        (``first`` from its territory into b) was made."""
        search = self.search
        weight_first = self.weight[first]
        weight_second = self.weight[second]
        delta = self.transfer(
            search.ratios[b] + self.frac[first] / self.share[b][:, None], search.ratios[c],
            search.mass[b] + weight_first, search.moment[b] + weight_first[:, None] * self.xy[first],
            search.second_moment[b] + weight_first * (self.xy[first] ** 2).sum(axis=1),
            search.mass[c], search.moment[c], search.second_moment[c], self.share[b], self.share[c],
            self.frac[second], weight_second, weight_second[:, None] * self.xy[second],
            weight_second * (self.xy[second] ** 2).sum(axis=1),
        )
        delta += self.disruption_change(second, b, c)
        if search.fixed_centres is not None:
            delta += search.inertia_weight * self.fixed_change(second, b, c) / search.inertia_ref
        return delta

    def transfer_between(self, src, dst, frac, weight, moment, second_moment) -> np.ndarray:
        """Merit change when load (frac, w, w·xy, w·|xy|²) passes from territory src to dst, in
        the search's current figures (no disruption, no fixed centres)."""
        search = self.search
        return self.transfer(
            search.ratios[src], search.ratios[dst], search.mass[src], search.moment[src],
            search.second_moment[src], search.mass[dst], search.moment[dst], search.second_moment[dst],
            self.share[src], self.share[dst], frac, weight, moment, second_moment,
        )

    def transfer(self, ratios_src, ratios_dst, mass_src, moment_src, second_src, mass_dst, moment_dst,
                 second_dst, share_src, share_dst, frac, weight, moment, second_moment) -> np.ndarray:
        """:meth:`transfer_between` with the two territories' figures given (for chained moves)."""
        search = self.search
        new_src = ratios_src - frac / share_src[:, None]
        new_dst = ratios_dst + frac / share_dst[:, None]
        goal = search.goal
        active = self.active[None, :]

        def beyond(ratios):
            return np.maximum(np.abs(ratios - 1.0) - goal, 0.0) * active

        delta = search.big * (beyond(new_src) + beyond(new_dst) - beyond(ratios_src) - beyond(ratios_dst)).sum(axis=1)
        if search.beta > 0:
            spread = (
                ((new_src - 1.0) ** 2 + (new_dst - 1.0) ** 2 - (ratios_src - 1.0) ** 2 - (ratios_dst - 1.0) ** 2)
                * active
            ).sum(axis=1)
            delta += search.beta * spread
        if search.inertia_weight > 0 and search.fixed_centres is None:
            change = (
                inertia(mass_src - weight, moment_src - moment, second_src - second_moment)
                + inertia(mass_dst + weight, moment_dst + moment, second_dst + second_moment)
                - inertia(mass_src, moment_src, second_src)
                - inertia(mass_dst, moment_dst, second_dst)
            )
            delta += search.inertia_weight * change / search.inertia_ref
        return delta

    def disruption_change(self, unit, src, dst) -> np.ndarray:
        search = self.search
        if search.disruption <= 0 or search.initial is None:
            return np.zeros(unit.shape[0])
        initial = search.initial[unit]
        assigned = initial >= 0
        moved = assigned & (dst != initial)
        was = assigned & (src != initial)
        return search.disruption * self.weight[unit] * (moved.astype(float) - was.astype(float))

    def fixed_change(self, unit, src, dst) -> np.ndarray:
        centres = self.search.fixed_centres
        xy = self.xy[unit]
        return self.weight[unit] * (((xy - centres[dst]) ** 2).sum(axis=1) - ((xy - centres[src]) ** 2).sum(axis=1))

    # ----- one move in the current state -------------------------------------------------------
    def rescore(self, u: int, v: int, a: int, b: int, swap: bool) -> float:
        """Exact merit change of one move of u from a to b (or the exchange of u with v from b),
        in the current state: :meth:`moves` / :meth:`exchanges` for one, in Python floats."""
        search = self.search
        if not swap and search.count[a] <= 1:
            return float("inf")
        frac = self.frac[u].tolist()
        weight = float(self.weight[u])
        x, y = self.xy[u].tolist()
        moment_x, moment_y, second_moment = weight * x, weight * y, weight * (x * x + y * y)
        if swap:
            frac_v = self.frac[v].tolist()
            frac = [fu - fv for fu, fv in zip(frac, frac_v)]
            weight_v = float(self.weight[v])
            xv, yv = self.xy[v].tolist()
            weight -= weight_v
            moment_x -= weight_v * xv
            moment_y -= weight_v * yv
            second_moment -= weight_v * (xv * xv + yv * yv)
        share_a = float(self.share[a])
        share_b = float(self.share[b])
        ratios_a = search.ratios[a].tolist()
        ratios_b = search.ratios[b].tolist()
        goal = search.goal
        goals = goal.tolist() if np.ndim(goal) else [float(goal)] * len(ratios_a)
        big = search.big
        beta = search.beta
        delta = 0.0
        for k, active in enumerate(self.active.tolist()):
            if not active:
                continue
            band = goals[k]
            old_a, old_b = ratios_a[k], ratios_b[k]
            new_a, new_b = old_a - frac[k] / share_a, old_b + frac[k] / share_b
            delta += big * (
                max(abs(new_a - 1.0) - band, 0.0) + max(abs(new_b - 1.0) - band, 0.0)
                - max(abs(old_a - 1.0) - band, 0.0) - max(abs(old_b - 1.0) - band, 0.0)
            )
            if beta > 0:
                delta += beta * ((new_a - 1.0) ** 2 + (new_b - 1.0) ** 2 - (old_a - 1.0) ** 2 - (old_b - 1.0) ** 2)
        if search.inertia_weight > 0:
            if search.fixed_centres is not None:
                change = self._fixed_scalar(u, a, b) + (self._fixed_scalar(v, b, a) if swap else 0.0)
            else:
                mass_a, mass_b = float(search.mass[a]), float(search.mass[b])
                moment_a, moment_b = search.moment[a].tolist(), search.moment[b].tolist()
                second_a, second_b = float(search.second_moment[a]), float(search.second_moment[b])
                change = (
                    _inertia_scalar(mass_a - weight, moment_a[0] - moment_x, moment_a[1] - moment_y,
                                    second_a - second_moment)
                    + _inertia_scalar(mass_b + weight, moment_b[0] + moment_x, moment_b[1] + moment_y,
                                      second_b + second_moment)
                    - _inertia_scalar(mass_a, moment_a[0], moment_a[1], second_a)
                    - _inertia_scalar(mass_b, moment_b[0], moment_b[1], second_b)
                )
            delta += search.inertia_weight * change / search.inertia_ref
        if search.disruption > 0 and search.initial is not None:
            delta += search.disruption * self._disruption_scalar(u, a, b)
            if swap:
                delta += search.disruption * self._disruption_scalar(v, b, a)
        return delta

    def _fixed_scalar(self, u: int, a: int, b: int) -> float:
        x, y = self.xy[u].tolist()
        centre_a = self.search.fixed_centres[a].tolist()
        centre_b = self.search.fixed_centres[b].tolist()
        return float(self.weight[u]) * (
            (x - centre_b[0]) ** 2 + (y - centre_b[1]) ** 2 - (x - centre_a[0]) ** 2 - (y - centre_a[1]) ** 2
        )

    def _disruption_scalar(self, u: int, a: int, b: int) -> float:
        initial = int(self.search.initial[u])
        if initial < 0:
            return 0.0
        return float(self.weight[u]) * (float(b != initial) - float(a != initial))
