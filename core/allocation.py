"""Location–allocation: compact, nearly balanced territories around moving centres (Hess et al.).

Allocation with centres fixed is the balanced transportation LP
    min sum_ij weight_i d_ij^2 x_ij  s.t.  sum_j x_ij = 1,  (1 - t) <= ratio_ja <= (1 + t),
restricted to each unit's K nearest centres. Instead of handing that LP to a simplex code (too
slow past a few thousand units) we maximise its entropy-smoothed dual over the p x m' prices
with L-BFGS-B and assign every unit to its cheapest centre at those prices. Prices carry over
between iterations (warm start) and from a coarse level to the full one. Rounding leaves a few
units off balance; the local search finishes the balance exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import minimize
from scipy.spatial import cKDTree

from .model import Model
from .progress import Progress

CANDIDATES = 8
FIRST_EPS = (0.1,)
NEXT_EPS = (0.1,)
DUAL_ITERATIONS = 20  # L-BFGS-B iterations on the first allocation of a run
WARM_ITERATIONS = 8  # and on later, warm-started ones
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


class DualAllocator:
    """Balanced allocation of points to fixed centres through the smoothed LP dual."""

    def __init__(self, pts: Points, share: np.ndarray, active: np.ndarray, band: float):
        self.pts = pts
        self.p = share.shape[0]
        self.n = pts.xy.shape[0]
        self.m = pts.frac.shape[1]
        self.r = 1.0 / (self.p * share)  # price multiplier per territory (unequal targets)
        self.v = pts.frac * self.n  # ~1 per point
        self.v[:, ~active] = 0.0
        cap = self.n / self.p
        self.upper = np.where(active[None, :], (1.0 + band) * cap, 1e30) * np.ones((self.p, 1))
        self.lower = np.where(active[None, :], (1.0 - band) * cap, 0.0) * np.ones((self.p, 1))
        self.prices = np.zeros(2 * self.p * self.m)

    def _candidates(self, centres: np.ndarray):
        """Candidate centres per point, (K, N) layout, and their normalised costs."""
        n, p = self.n, self.p
        k = int(min(p, CANDIDATES))
        d, idx = cKDTree(centres).query(self.pts.xy, k=k)
        idx = np.asarray(idx).reshape(n, k)
        d2 = np.asarray(d).reshape(n, k) ** 2
        locked = self.pts.locked
        fix = np.flatnonzero(locked >= 0)
        if fix.size:
            idx[fix] = locked[fix][:, None]
            d2[fix] = ((self.pts.xy[fix] - centres[locked[fix]]) ** 2).sum(axis=1)[:, None]
        cost = self.pts.weight[:, None] * d2
        scale = float(np.mean(cost[:, 0])) or 1.0
        return np.ascontiguousarray(idx.T), np.ascontiguousarray(cost.T / scale)

    def allocate(self, centres: np.ndarray, eps_schedule=(0.1,), maxiter: int = 60, progress=None):
        """Labels of the points at the optimised prices (cheapest candidate centre)."""
        idx, cost = self._candidates(centres)
        n, p, m = self.n, self.p, self.m
        vt = np.ascontiguousarray(self.v.T)  # (m, N)
        rk = self.r[idx]  # (K, N)
        flat = idx.ravel()
        upper, lower = self.upper, self.lower

        def reduced(lam):
            z = np.zeros_like(cost)
            for a in range(m):
                z += np.take(lam[:, a], idx) * vt[a]
            z *= rk
            z += cost
            return z

        for eps in eps_schedule:
            if progress is not None:
                progress.check()

            def fun(x, eps=eps):
                alpha = x[: p * m].reshape(p, m)
                beta = x[p * m:].reshape(p, m)
                z = reduced(beta - alpha)
                zmin = z.min(axis=0)
                z -= zmin
                z *= -1.0 / eps
                e = np.exp(z, out=z)
                s = e.sum(axis=0)
                value = float(zmin.sum() - eps * np.log(s).sum())
                e *= rk / s
                load = np.empty((p, m))
                for a in range(m):
                    load[:, a] = np.bincount(flat, (e * vt[a]).ravel(), minlength=p)
                value -= float((upper * beta).sum() - (lower * alpha).sum())
                grad = np.concatenate([(load - lower).ravel(), (upper - load).ravel()]) / n
                return -value / n, grad

            res = minimize(
                fun,
                self.prices,
                jac=True,
                method="L-BFGS-B",
                bounds=[(0.0, None)] * (2 * p * m),
                options={"maxiter": int(maxiter), "ftol": 1e-12, "gtol": 1e-8},
            )
            self.prices = np.asarray(res.x)
            self.evaluations = getattr(self, "evaluations", 0) + int(res.nfev)
        lam = (self.prices[p * m:] - self.prices[: p * m]).reshape(p, m)
        z = reduced(lam)
        pick = np.argmin(z, axis=0)
        return idx[pick, np.arange(n)]


def initial_centres(model: Model, rng: np.random.Generator) -> tuple:
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

    def iterate(self, centres: np.ndarray, fixed: bool, iterations: int, progress=None, first=True):
        model = self.model
        xy, weight, p = model.xy, model.weight, model.p
        labels = None
        for it in range(iterations):
            if progress is not None:
                progress.check()
            cold = first and it == 0
            eps = FIRST_EPS if cold else NEXT_EPS
            maxiter = DUAL_ITERATIONS if cold else WARM_ITERATIONS
            new = self.alloc.allocate(centres, eps, maxiter=maxiter, progress=progress)
            changed = labels is None or np.mean(new != labels) > 0.002
            labels = new
            if fixed:
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


def location_allocation(
    model: Model,
    rng: np.random.Generator,
    progress: Optional[Progress] = None,
    trials: int = 0,
    iterations: int = 8,
    band: Optional[float] = None,
) -> np.ndarray:
    """Compact, nearly balanced labels (not yet contiguous) for the model's units.

    After the first Hess run, ``trials`` times one territory's centre is moved to a spot drawn
    by k-means++ sampling (far from the other centres) and the Hess iterations are rerun from
    there; the move is kept when the plan's cost about its centre units drops (iterated local
    search: Hess iterations alone stop in the first local optimum).
    """
    centres, fixed_mask = initial_centres(model, rng)
    la = LocationAllocation(model, band)
    fixed = bool(fixed_mask.all())
    labels, centres = la.iterate(centres, fixed, iterations, progress)
    if fixed or trials <= 0 or model.p < 2:
        return labels
    xy, weight, p = model.xy, model.weight, model.p
    movable = np.ones(p, dtype=bool)
    if np.any(model.locked >= 0):
        movable[np.unique(model.locked[model.locked >= 0])] = False
    if not np.any(movable):
        return labels
    best_cost = la.cost(labels)
    best_prices = la.alloc.prices.copy()
    for t in range(trials):
        if progress is not None:
            progress.step(t / trials, "Placing territory centres")
        trial = centres.copy()
        k = int(rng.choice(np.flatnonzero(movable)))
        others = np.delete(trial, k, axis=0)
        d2 = np.min(((xy[:, None, :] - others[None, :, :]) ** 2).sum(axis=2), axis=1)
        score = weight * d2
        total = score.sum()
        trial[k] = xy[int(rng.choice(xy.shape[0], p=score / total))] if total > 0 else trial[k]
        la.alloc.prices = best_prices.copy()
        new_labels, new_centres = la.iterate(trial, False, max(2, iterations - 2), progress, first=False)
        cost = la.cost(new_labels)
        if cost < best_cost:
            best_cost, labels, centres = cost, new_labels, new_centres
            best_prices = la.alloc.prices.copy()
    return labels
