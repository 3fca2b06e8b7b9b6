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


def location_allocation(
    model: Model,
    rng: np.random.Generator,
    progress: Optional[Progress] = None,
    iterations: int = 8,
    band: Optional[float] = None,
) -> np.ndarray:
    """Compact, nearly balanced labels (not yet contiguous) for the model's units."""
    p = model.p
    xy, weight = model.xy, model.weight
    if band is None:
        band = 0.5 * model.tolerance
    locked = model.locked
    fixed = None
    fixed_mask = np.zeros(p, dtype=bool)
    if model.seeds_xy is not None:
        fixed = model.seeds_xy.copy()
        fixed_mask[:] = True
    elif np.any(locked >= 0):
        fixed = np.full((p, 2), np.nan)
        lk = np.flatnonzero(locked >= 0)
        cen = weighted_centres(locked[lk], xy[lk], weight[lk], p, fixed)
        has = np.bincount(locked[lk], minlength=p) > 0
        fixed[has] = cen[has]
    centres = kmeans_pp(xy, weight, p, rng, fixed)
    if not fixed_mask.all():
        centres, _ = lloyd(xy, weight, centres, 6, fixed_mask)

    pts = Points(xy, weight, model.frac, locked)
    alloc = DualAllocator(pts, model.share, model.active, band)
    labels = None
    for it in range(iterations):
        if progress is not None:
            progress.step(it / iterations, "Placing territory centres")
        eps = (0.3, 0.1, 0.03) if it == 0 else (0.03,)
        new = alloc.allocate(centres, eps, maxiter=60, progress=progress)
        changed = labels is None or np.mean(new != labels) > 0.002
        labels = new
        if fixed_mask.all() or not changed:
            break
        centres = weighted_centres(labels, xy, weight, p, centres)
    return labels
