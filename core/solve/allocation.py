"""Location–allocation: compact, nearly balanced territories around moving centres (Hess et al.).

Allocation with centres fixed is the balanced transportation LP
    min sum_ij weight_i d_ij^2 x_ij  s.t.  sum_j x_ij = 1,  (1 - t) <= ratio_ja <= (1 + t),
restricted to each unit's K nearest centres. Instead of handing that LP to a simplex code (too
slow past a few thousand units) we maximise its entropy-smoothed dual over the p x m' prices
with our own projected quasi-Newton method (``minimise_in_box``) and assign every unit to its
cheapest centre at those prices. Prices carry over between iterations (warm start) and from a
coarse level to the full one. Rounding leaves a few
units off balance; the local search finishes the balance exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from ..progress import Progress
from .model import Model, nearest_stable

CANDIDATES = 8
REACH = 3.0  # every territory is a candidate of its REACH x (its share of units) nearest units
FIRST_EPS = (0.1,)
NEXT_EPS = (0.1,)
DUAL_ITERATIONS = 50  # dual iterations on the first allocation of a run
WARM_ITERATIONS = 50  # and on later, warm-started ones
# stop when every territory's load is within about this fraction of its band (gradient / p)
GRADIENT_TOLERANCE = 0.005
# prices are capped (costs are about 1 per unit): a band that the candidate lists cannot meet
# then costs a finite penalty instead of sending the dual to infinity
PRICE_CAP = 100.0
TRIAL_ITERATIONS = 4  # Hess iterations after a centre relocation (warm-started)
SNAP_CENTRES = True


@dataclass
class Points:
    """What the allocation sees: (possibly aggregated) units."""

    xy: np.ndarray  # (N, 2)
    weight: np.ndarray  # (N,)
    frac: np.ndarray  # (N, m')
    locked: np.ndarray  # (N,) -1 or territory


def kmeans_pp(xy: np.ndarray, weight: np.ndarray, p: int, rng: np.random.Generator, fixed=None) -> np.ndarray:
    """Weighted k-means++ centres; rows of ``fixed`` (non-NaN) are kept and seed the sampling."""
    n = xy.shape[0]
    centres = np.full((p, 2), np.nan) if fixed is None else np.array(fixed, dtype=float)
    have = ~np.isnan(centres[:, 0])
    d2 = np.full(n, np.inf)
    for k in np.flatnonzero(have):
        d2 = np.minimum(d2, ((xy - centres[k]) ** 2).sum(axis=1))
    for k in np.flatnonzero(~have):
        if np.all(np.isinf(d2)):
            prob = weight / weight.sum()
        else:
            score = weight * d2
            total = score.sum()
            prob = score / total if total > 0 else np.full(n, 1.0 / n)
        i = int(rng.choice(n, p=prob))
        centres[k] = xy[i]
        d2 = np.minimum(d2, ((xy - xy[i]) ** 2).sum(axis=1))
    return centres


def weighted_centres(labels, xy, weight, p, old=None) -> np.ndarray:
    wsum = np.bincount(labels, weight, minlength=p)
    out = np.empty((p, 2)) if old is None else np.array(old, dtype=float)
    for d in range(2):
        s = np.bincount(labels, weight * xy[:, d], minlength=p)
        ok = wsum > 0
        out[ok, d] = s[ok] / wsum[ok]
    return out


def lloyd(xy, weight, centres, iterations, fixed_mask=None):
    """Plain (unbalanced) weighted k-means steps; centres in ``fixed_mask`` stay."""
    p = centres.shape[0]
    labels = None
    for _ in range(iterations):
        _, labels = cKDTree(centres).query(xy)
        new = weighted_centres(labels, xy, weight, p, centres)
        if fixed_mask is not None:
            new[fixed_mask] = centres[fixed_mask]
        if np.allclose(new, centres):
            centres = new
            break
        centres = new
    return centres, labels


class Candidates:
    """Flat (unit, territory, cost) triples, sorted by unit, every unit at least once."""

    def __init__(self, unit: np.ndarray, terr: np.ndarray, cost: np.ndarray, n: int, presorted: bool = False):
        if presorted:  # already by unit, then territory (``_dedupe``)
            self.unit, self.terr, self.cost = unit, terr, cost
        else:
            order = np.lexsort((terr, unit))
            self.unit = unit[order]
            self.terr = terr[order]
            self.cost = cost[order]
        self.count = np.bincount(self.unit, minlength=n)
        if np.any(self.count == 0):
            raise ValueError("every unit needs a candidate territory")
        self.starts = np.r_[0, np.cumsum(self.count)[:-1]]


def _dedupe(unit: np.ndarray, terr: np.ndarray, p: int) -> tuple:
    key = np.unique(unit.astype(np.int64) * p + terr)
    return key // p, key % p


# The dual solve is our own projected quasi-Newton method rather than scipy's L-BFGS-B: SciPy 1.15
# rewrote L-BFGS-B, and the same seed then gave different plans on Debian 12 and 13. Every step is
# plain numpy arithmetic; dot products are summed exactly (math.fsum, no BLAS) and the iterates are
# rounded to a fixed grid, so that last-bit differences of exp/log between NumPy releases die out
# instead of steering the search elsewhere.
MEMORY = 5  # curvature pairs kept
GRID = float(2**32)  # iterates are multiples of 1 / GRID
ARMIJO = 1e-4
BACKTRACKS = 20
DIAGONAL = True  # scale by the Hessian's diagonal (when ``fun`` returns it)
CURVATURE_FLOOR = 1e-3  # of the largest diagonal entry
MAX_STEP = 1.0  # longest first trial step of one price (costs are about 1 per unit)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return math.fsum((a * b).tolist())


def _snap(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip(np.round(x * GRID) / GRID, low, high)


def minimise_in_box(fun, x0: np.ndarray, low: float, high: float, maxiter: int, gtol: float,
                    progress=None) -> tuple:
    """Minimise a smooth convex ``fun`` over the box [low, high]^d.

    ``fun(x)`` returns (value, gradient) or (value, gradient, diagonal of the Hessian). Projected
    limited-memory quasi-Newton: variables at a bound whose gradient pushes outwards are held, the
    two-loop recursion gives the direction on the others (started from the inverse of the
    Hessian's diagonal when given: the territories' prices differ widely in how fast their loads
    react), and an Armijo backtracking along the projected path takes the step, no variable
    moving more than MAX_STEP at first. Stops after ``maxiter`` iterations or when the projected
    gradient is at most ``gtol`` everywhere. Returns (x, iterations).
    """
    x = _snap(np.asarray(x0, dtype=float), low, high)
    fx, g, *diag = fun(x)
    pairs: list = []
    it = 0
    for it in range(1, maxiter + 1):
        if progress is not None:
            progress.check()
            if it > 1 and progress.out_of_time():
                it -= 1
                break  # the caller's time is up: the prices so far give a complete allocation
        if np.abs(x - np.clip(x - g, low, high)).max() <= gtol:
            it -= 1
            break
        free = ~(((x <= low) & (g > 0)) | ((x >= high) & (g < 0)))
        q = np.where(free, g, 0.0)
        if diag:
            # the Hessian's diagonal (floored) as the initial inverse Hessian of the recursion
            h = diag[0]
            gamma = 1.0 / np.maximum(h, CURVATURE_FLOOR * max(float(h.max()), 1e-300))
        elif pairs:
            s, y, rho = pairs[-1]
            gamma = _dot(s, y) / _dot(y, y)
        else:
            gamma = 1.0 / max(float(np.abs(q).max()) * x.size, 1e-300)
        coef = []
        for s, y, rho in reversed(pairs):
            a = rho * _dot(s, q)
            q = q - a * y
            coef.append(a)
        d = gamma * q
        for (s, y, rho), a in zip(pairs, reversed(coef)):
            d = d + (a - rho * _dot(y, d)) * s
        d = -np.where(free, d, 0.0)
        if _dot(g, d) >= 0.0:  # not a descent direction: start the memory again
            pairs.clear()
            d = -np.where(free, g, 0.0) / max(float(np.abs(g).max()) * x.size, 1e-300)
        t = 1.0
        longest = float(np.abs(d).max())
        if longest > MAX_STEP:
            t = MAX_STEP / longest
        for _ in range(BACKTRACKS):
            xn = _snap(x + t * d, low, high)
            fn, gn, *diag_n = fun(xn)
            if fn <= fx + ARMIJO * _dot(g, xn - x):
                break
            t *= 0.5
        else:
            break  # no decrease along the direction: as good as it gets at this precision
        s, y = xn - x, gn - g
        sy = _dot(s, y)
        if sy > 1e-12 * _dot(y, y) and sy > 0.0:
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > MEMORY:
                pairs.pop(0)
        x, fx, g, diag = xn, fn, gn, diag_n
    return x, it


class DualAllocator:
    """Balanced allocation of points to fixed centres through the smoothed LP dual."""

    def __init__(self, points: Points, share: np.ndarray, active: np.ndarray, band: float):
        self.points = points
        self.territory_count = share.shape[0]
        self.point_count = points.xy.shape[0]
        self.measure_count = points.frac.shape[1]
        # price multiplier per territory (unequal targets)
        self.target_scale = 1.0 / (self.territory_count * share)
        self.point_load = points.frac * self.point_count  # ~1 per point
        self.point_load[:, ~active] = 0.0
        cap = self.point_count / self.territory_count
        rows = np.ones((self.territory_count, 1))
        self.upper = np.where(active[None, :], (1.0 + band) * cap, 1e30) * rows
        self.lower = np.where(active[None, :], (1.0 - band) * cap, 0.0) * rows
        self.prices = np.zeros(2 * self.territory_count * self.measure_count)
        self.tree = None

    def candidates(self, centres: np.ndarray) -> Candidates:
        """Each unit's K nearest centres, plus every centre's REACH x share nearest units.

        The second list makes every territory able to gather its target even where the units'
        own nearest centres all lie elsewhere (clusters, coasts), which keeps the dual bounded.
        """
        n, p = self.point_count, self.territory_count
        xy = self.points.xy
        k = int(min(p, CANDIDATES))
        d, near = nearest_stable(cKDTree(centres), xy, k)
        d_first = d[:, 0]
        if self.tree is None:
            self.tree = cKDTree(xy)
        reach = int(min(n, np.ceil(REACH * n / (p * self.target_scale.min()))))
        _, rev = self.tree.query(centres, k=reach)
        rev = np.asarray(rev).reshape(p, reach)
        unit = np.concatenate([np.repeat(np.arange(n), k), rev.ravel()])
        terr = np.concatenate([near.ravel(), np.repeat(np.arange(p), reach)])
        locked = self.points.locked
        if np.any(locked >= 0):
            keep = (locked[unit] < 0) | (locked[unit] == terr)
            fix = np.flatnonzero(locked >= 0)
            unit = np.concatenate([unit[keep], fix])
            terr = np.concatenate([terr[keep], locked[fix]])
        unit, terr = _dedupe(unit, terr, p)
        cost = self.points.weight[unit] * ((xy[unit] - centres[terr]) ** 2).sum(axis=1)
        scale = float(np.mean(self.points.weight * d_first**2)) or 1.0
        return Candidates(unit, terr, cost / scale, n, presorted=True)

    def allocate(self, centres: np.ndarray, eps_schedule=(0.1,), maxiter: int = 60, progress=None):
        """Labels of the points at the optimised prices (cheapest candidate centre)."""
        return self.allocate_candidates(self.candidates(centres), eps_schedule, maxiter, progress)

    def allocate_candidates(self, cand: Candidates, eps_schedule=(0.1,), maxiter: int = 60, progress=None):
        """Labels at the optimised prices for given candidates (costs about 1 per point)."""
        n, p, m = self.point_count, self.territory_count, self.measure_count
        terr, cost, count, starts = cand.terr, cand.cost, cand.count, cand.starts
        # load a candidate brings to its territory per measure, in target units x n / p
        vu = (self.point_load[cand.unit] * self.target_scale[terr][:, None]).T.copy()  # (m, L)
        upper, lower = self.upper, self.lower

        def reduced(lam):
            z = cost.copy()
            for a in range(m):
                z += np.take(lam[:, a], terr) * vu[a]
            return z

        for eps in eps_schedule:
            if progress is not None:
                progress.check()

            def fun(x, eps=eps):
                alpha = x[: p * m].reshape(p, m)
                beta = x[p * m:].reshape(p, m)
                z = reduced(beta - alpha)
                zmin = np.minimum.reduceat(z, starts)
                z -= np.repeat(zmin, count)
                z *= -1.0 / eps
                e = np.exp(z, out=z)
                s = np.add.reduceat(e, starts)
                value = float(zmin.sum() - eps * np.log(s).sum())
                e /= np.repeat(s, count)
                load = np.empty((p, m))
                for a in range(m):
                    load[:, a] = np.bincount(terr, e * vu[a], minlength=p)
                value -= float((upper * beta).sum() - (lower * alpha).sum())
                grad = np.concatenate([(load - lower).ravel(), (upper - load).ravel()]) / n
                if not DIAGONAL:
                    return -value / n, grad
                # diagonal of the Hessian: how fast each territory's load reacts to its own price
                e *= 1.0 - e
                curv = np.empty((p, m))
                for a in range(m):
                    curv[:, a] = np.bincount(terr, e * vu[a] * vu[a], minlength=p)
                curv = curv.ravel() / (n * eps)
                return -value / n, grad, np.concatenate([curv, curv])

            self.prices, nit = minimise_in_box(fun, self.prices, 0.0, PRICE_CAP, int(maxiter),
                                               GRADIENT_TOLERANCE / p, progress)
            self.iterations = getattr(self, "iterations", 0) + nit
        lam = (self.prices[p * m:] - self.prices[: p * m]).reshape(p, m)
        z = reduced(lam)
        zmin = np.minimum.reduceat(z, starts)
        best = np.flatnonzero(z <= np.repeat(zmin, count))
        first = np.r_[True, cand.unit[best][1:] != cand.unit[best][:-1]]
        labels = np.empty(n, dtype=np.int64)
        labels[cand.unit[best][first]] = terr[best][first]
        return labels


def bisection_centres(xy: np.ndarray, load: np.ndarray, shares: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Centres of a weighted recursive bisection: cut the units, in a randomly rotated frame,
    across their longer side at the load quantile that matches the shares on each side.

    The cells carry about their share of the load, so the first balanced allocation starts
    feasible even where the units cluster (plain k-means puts centres at density peaks).
    """
    p = shares.shape[0]
    angle = rng.uniform(0.0, np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = xy @ rot
    centres = np.zeros((p, 2))
    stack = [(np.arange(xy.shape[0]), np.arange(p))]
    while stack:
        members, terrs = stack.pop()
        if terrs.size == 1 or members.size <= 1:
            w = load[members]
            c = (w[:, None] * xy[members]).sum(axis=0) / w.sum() if w.sum() > 0 else xy[members].mean(axis=0)
            centres[terrs] = c
            continue
        half = terrs.size // 2
        left, right = terrs[:half], terrs[half:]
        frac = shares[left].sum() / shares[terrs].sum()
        span = np.ptp(pts[members], axis=0)
        axis = int(np.argmax(span))
        order = members[np.argsort(pts[members, axis], kind="stable")]
        cum = np.cumsum(load[order])
        cut = int(np.searchsorted(cum, frac * cum[-1]))
        cut = min(max(cut, 1), order.size - 1)
        stack.append((order[:cut], left))
        stack.append((order[cut:], right))
    return centres


def initial_centres(model: Model, rng: np.random.Generator, kind: str = "bisection") -> tuple:
    """Centres to start from and which of them are fixed (seeds).

    Seeds are fixed centres; a territory with locked units starts at their weighted centre;
    the rest come from weighted k-means++ and a few Lloyd steps.
    """
    p = model.p
    xy, weight, locked = model.xy, model.weight, model.locked
    fixed = None
    fixed_mask = np.zeros(p, dtype=bool)
    if model.seeds_xy is not None:
        return model.seeds_xy.copy(), np.ones(p, dtype=bool)
    if np.any(locked >= 0):
        fixed = np.full((p, 2), np.nan)
        lk = np.flatnonzero(locked >= 0)
        cen = weighted_centres(locked[lk], xy[lk], weight[lk], p, fixed)
        has = np.bincount(locked[lk], minlength=p) > 0
        fixed[has] = cen[has]
    if kind == "bisection":
        load = (model.frac * model.active).sum(axis=1)
        centres = bisection_centres(xy, load, model.share, rng)
        if fixed is not None:
            has = ~np.isnan(fixed[:, 0])
            centres[has] = fixed[has]
        return centres, fixed_mask
    centres = kmeans_pp(xy, weight, p, rng, fixed)
    centres, _ = lloyd(xy, weight, centres, 6, fixed_mask)
    return centres, fixed_mask


class LocationAllocation:
    """Hess iterations (balanced allocation, then centres to the territories' centre units)."""

    def __init__(self, model: Model, band: Optional[float] = None):
        self.model = model
        if band is None:
            band = 0.5 * model.tolerance
        pts = Points(model.xy, model.weight, model.frac, model.locked)
        self.alloc = DualAllocator(pts, model.share, model.active, band)
        self.tree = cKDTree(model.xy)
        self.alloc.tree = self.tree  # one k-d tree of the units for both
        self.warm_iterations = WARM_ITERATIONS

    def iterate(self, centres: np.ndarray, fixed: bool, iterations: int, progress=None, first=True):
        model = self.model
        xy, weight, p = model.xy, model.weight, model.p
        labels = None
        for it in range(iterations):
            if progress is not None:
                progress.step(it / iterations, "Placing territory centres")
            cold = first and it == 0
            eps = FIRST_EPS if cold else NEXT_EPS
            maxiter = DUAL_ITERATIONS if cold else self.warm_iterations
            new = self.alloc.allocate(centres, eps, maxiter=maxiter, progress=progress)
            changed = labels is None or np.mean(new != labels) > 0.002
            labels = new
            if fixed or (progress is not None and progress.out_of_time()):
                break
            centres = weighted_centres(labels, xy, weight, p, centres)
            if SNAP_CENTRES:
                _, near = self.tree.query(centres)
                centres = xy[np.asarray(near)]
            if not changed:
                break
        return labels, centres

    def cost(self, labels: np.ndarray) -> float:
        """Weighted squared distance of every unit to its territory's centre unit."""
        model = self.model
        xy, weight = model.xy, model.weight
        centres = weighted_centres(labels, xy, weight, model.p)
        _, units = self.tree.query(centres)
        return float((weight * ((xy - xy[np.asarray(units)][labels]) ** 2).sum(axis=1)).sum())


# Layers with many units per territory are first allocated on groups of neighbouring units
# (consecutive along a Hilbert curve), then once on the units themselves with the group prices.
COARSE_ABOVE = 150_000  # units
COARSE_PER_TERRITORY = 40  # groups per territory (at least)
COARSE_MIN_GROUPS = 60_000
# warm-started dual iterations on the groups: their balance is only as fine as a group (1/40 of a
# territory) anyway; the allocation of the units settles the rest
COARSE_WARM_ITERATIONS = 20
FINE_ITERATIONS = 10  # dual iterations of the final allocation of the units, per smoothing step
FINE_EPS = (0.03, 0.01)  # smoothing steps of that allocation (warm-started: sharper than NEXT_EPS)


def hilbert_order(xy: np.ndarray, bits: int = 16) -> np.ndarray:
    """Index of every point along a Hilbert curve over the points' bounding box (vectorised)."""
    low = xy.min(axis=0)
    span = float(max(np.ptp(xy, axis=0).max(), 1e-300))
    side = 1 << bits
    x = np.minimum(((xy[:, 0] - low[0]) / span * side).astype(np.int64), side - 1)
    y = np.minimum(((xy[:, 1] - low[1]) / span * side).astype(np.int64), side - 1)
    d = np.zeros(xy.shape[0], dtype=np.int64)
    s = side >> 1
    while s > 0:
        rx = (x & s) > 0
        ry = (y & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = ~ry
        swap_x = flip & rx
        x = np.where(swap_x, side - 1 - x, x)
        y = np.where(swap_x, side - 1 - y, y)
        x, y = np.where(flip, y, x), np.where(flip, x, y)
        s >>= 1
    return d


def coarse_groups(model: Model) -> Optional[np.ndarray]:
    """Group of every unit for the coarse allocation, or None when the layer is small enough.

    Groups are runs of about equal unit count along a Hilbert curve (compact, small where units
    are dense); every locked unit is a group of its own so that it keeps its territory.
    """
    n, p = model.n, model.p
    groups = max(COARSE_PER_TERRITORY * p, COARSE_MIN_GROUPS)
    if n <= COARSE_ABOVE or n < 2 * groups:
        return None
    order = np.argsort(hilbert_order(model.xy), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    group = rank * groups // n
    locked = np.flatnonzero(model.locked >= 0)
    group[locked] = groups + np.arange(locked.size)
    _, group = np.unique(group, return_inverse=True)
    return group.reshape(-1)


def coarse_model(model: Model, group: np.ndarray) -> Model:
    """The model whose units are the groups: summed workloads and weights, weighted centres."""
    from dataclasses import replace

    g = int(group.max()) + 1
    weight = np.bincount(group, model.weight, minlength=g)
    xy = np.column_stack([np.bincount(group, model.weight * model.xy[:, d], minlength=g) for d in range(2)])
    xy /= np.maximum(weight, 1e-300)[:, None]
    frac = np.column_stack([np.bincount(group, model.frac[:, a], minlength=g) for a in range(model.m)])
    locked = np.full(g, -1, dtype=np.int64)
    lk = np.flatnonzero(model.locked >= 0)
    locked[group[lk]] = model.locked[lk]
    return replace(model, n=g, xy=xy, weight=weight, frac=frac.reshape(g, model.m), locked=locked,
                   user_locked=locked.copy(), anchors=np.full(model.p, -1, dtype=np.int64),
                   _neighbours=None, _edges=None)


def location_allocation(
    model: Model,
    rng: np.random.Generator,
    progress: Optional[Progress] = None,
    trials: int = 0,
    iterations: int = 8,
    band: Optional[float] = None,
    start: str = "bisection",
) -> np.ndarray:
    """Compact, nearly balanced labels (not yet contiguous) for the model's units.

    Large layers (over COARSE_ABOVE units) are allocated on groups of neighbouring units first
    (``coarse_groups``), then the units themselves are allocated once to the resulting centres,
    starting from the groups' prices; see ``relocating_hess`` for the rest.
    """
    group = coarse_groups(model)
    if group is None:
        labels, _ = relocating_hess(LocationAllocation(model, band), rng, progress, trials, iterations, start)
        return labels
    coarse = coarse_model(model, group)
    part = None if progress is None else progress.sub(0.0, 0.7)
    on_groups = LocationAllocation(coarse, band)
    on_groups.warm_iterations = COARSE_WARM_ITERATIONS
    # no centre-relocation trials: moving one centre among the thousands of a layer this large
    # changes next to nothing and costs TRIAL_ITERATIONS allocations
    labels_coarse, prices = relocating_hess(on_groups, rng, part, 0, iterations, start)
    labels = labels_coarse[group]
    if progress is not None:
        progress.step(0.7, "Placing territory centres")
    # one allocation of the units themselves about the territories' centre units, warm-started
    on_units = LocationAllocation(model, band)
    on_units.alloc.prices = prices
    centres = weighted_centres(labels, model.xy, model.weight, model.p)
    _, near = on_units.tree.query(centres)
    centres = model.xy[np.asarray(near)]
    return on_units.alloc.allocate(centres, FINE_EPS, maxiter=FINE_ITERATIONS,
                                   progress=None if progress is None else progress.sub(0.7, 1.0))


def relocating_hess(hess: LocationAllocation, rng: np.random.Generator, progress: Optional[Progress],
                    trials: int, iterations: int, start: str) -> tuple:
    """Compact, nearly balanced labels (not yet contiguous) for the units of ``hess.model``, and
    the territories' prices of the allocation kept: (labels, prices).

    ``start`` picks the first centres: "bisection" (weighted recursive bisection, robust where
    units cluster) or "kmeans" (k-means++ and Lloyd steps). After the first Hess run, ``trials``
    times one territory's centre is moved to a spot drawn by k-means++ sampling (far from the
    other centres) and the Hess iterations are rerun from there; the move is kept when the
    plan's cost about its centre units drops (iterated local search: Hess iterations alone stop
    in the first local optimum).
    """
    model = hess.model
    centres, fixed_mask = initial_centres(model, rng, start)
    fixed = bool(fixed_mask.all())
    searching = not (fixed or trials <= 0 or model.p < 2)
    first_part = None if progress is None else progress.sub(0.0, 0.5 if searching else 1.0)
    labels, centres = hess.iterate(centres, fixed, iterations, first_part)
    if not searching:
        return labels, hess.alloc.prices.copy()
    xy, weight, p = model.xy, model.weight, model.p
    movable = np.ones(p, dtype=bool)
    if np.any(model.locked >= 0):
        movable[np.unique(model.locked[model.locked >= 0])] = False
    if not np.any(movable):
        return labels, hess.alloc.prices.copy()
    best_cost = hess.cost(labels)
    best_prices = hess.alloc.prices.copy()
    for t in range(trials):
        if progress is not None and progress.out_of_time():
            break
        part = None if progress is None else progress.sub(0.5 + 0.5 * t / trials, 0.5 + 0.5 * (t + 1) / trials)
        trial = centres.copy()
        k = int(rng.choice(np.flatnonzero(movable)))
        others = np.delete(trial, k, axis=0)
        # nearest other centre through a k-d tree: never a units x territories array
        dist, _ = cKDTree(others).query(xy)
        score = weight * np.asarray(dist) ** 2
        total = score.sum()
        trial[k] = xy[int(rng.choice(xy.shape[0], p=score / total))] if total > 0 else trial[k]
        hess.alloc.prices = best_prices.copy()
        new_labels, new_centres = hess.iterate(trial, False, TRIAL_ITERATIONS, part, first=False)
        cost = hess.cost(new_labels)
        if cost < best_cost:
            best_cost, labels, centres = cost, new_labels, new_centres
            best_prices = hess.alloc.prices.copy()
    return labels, best_prices


def reassign_with_least_disruption(
    model: Model, labels: np.ndarray, band: float, hops: int = 2, progress: Optional[Progress] = None
) -> np.ndarray:
    """Balanced assignment that stays close to ``labels`` (the rebalancing LP).

    Every unit may stay (free) or join a territory found within ``hops`` steps of it in the
    adjacency graph, at a cost of its workload, plus a little for moving away from the receiving
    territory's centre (so border units go first). The balance band is enforced through the same
    smoothed dual as the location–allocation, so long chains of territories pass load along in one
    solve. Contiguity is not guaranteed; the caller repairs and polishes.
    """
    n, p = model.n, model.p
    xy, weight = model.xy, model.weight
    adj = model.adjacency
    onehot = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, p))
    reach = onehot
    step = (adj + sp.identity(n, format="csr")).tocsr()
    for _ in range(hops):
        reach = (step @ reach).tocsr()
        reach.data[:] = 1.0
    centres = weighted_centres(labels, xy, weight, p)
    d2_own = ((xy - centres[labels]) ** 2).sum(axis=1)
    r2 = float(np.average(d2_own, weights=weight)) or 1.0
    coo = reach.tocoo()
    other = coo.col != labels[coo.row]
    rows, cols = coo.row[other], coo.col[other]
    d2 = ((xy[rows] - centres[cols]) ** 2).sum(axis=1)
    extra = np.maximum((d2 - d2_own[rows]) / r2, 0.0)
    c = weight[rows] * (1.0 + 0.25 * extra)
    locked = model.locked
    free = locked[rows] < 0
    rows, cols, c = rows[free], cols[free], c[free]
    own = np.where(locked >= 0, locked, labels)
    unit = np.concatenate([np.arange(n), rows])
    terr = np.concatenate([own, cols])
    cost = np.concatenate([np.zeros(n), c])
    scale = float(np.mean(weight)) or 1.0
    pts = Points(xy, weight, model.frac, model.locked)
    alloc = DualAllocator(pts, model.share, model.active, band)
    cand = Candidates(unit.astype(np.int64), terr.astype(np.int64), cost / scale, n)
    return alloc.allocate_candidates(cand, (0.3, 0.1, 0.03), maxiter=100, progress=progress)
