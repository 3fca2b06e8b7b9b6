"""Units too heavy to share a territory.

Two units whose joint workload on some measure exceeds what the largest territory may carry
(its target plus the tolerance) can never share a balanced territory, whether or not they touch.
That is known before any search starts, and once such a pair sits together no sequence of single
boundary moves that keeps territories connected may pull it apart. The search therefore never
makes a move that puts such a pair together, and the merge-and-resplit only cuts that separate them.
"""

from __future__ import annotations

import numpy as np

#: Partners lighter than this share of a territory's upper bound are left to the balance merit
#: (a unit that alone nearly fills a territory conflicts with almost every unit).
MIN_PARTNER = 0.2


class HeavyPairs:
    """Conflicting pairs of units, as partner lists per unit.

    ``partners[u]`` (sorted unit indices) for every unit in ``units``; ``blocked(u, labels, k)``
    says whether moving u into territory k would put it beside a partner.
    """

    def __init__(self, frac: np.ndarray, share: np.ndarray, active: np.ndarray, tolerance, locked=None):
        n, m = frac.shape
        tol = np.asarray(tolerance, dtype=float).reshape(-1)
        tol = np.full(m, float(tol[0])) if tol.size == 1 else tol[:m]
        upper = (1.0 + tol) * float(np.max(share))  # the most any territory may carry, as a share
        pairs: dict = {}
        for a in range(m):
            if not active[a] or upper[a] <= 0:
                continue
            col = frac[:, a] / upper[a]
            big = np.flatnonzero(col > 0.5)
            if big.size == 0:
                continue
            cand = np.flatnonzero(col >= MIN_PARTNER)
            for i in big[np.argsort(-col[big], kind="stable")].tolist():
                mates = cand[(col[cand] + col[i] > 1.0) & (cand != i)]
                for j in mates.tolist():
                    pairs.setdefault(i, set()).add(j)
                    pairs.setdefault(j, set()).add(i)
        self.partners = {u: np.array(sorted(v), dtype=np.int64) for u, v in sorted(pairs.items())}
        self.units = np.array(sorted(self.partners), dtype=np.int64)
        self.mask = np.zeros(n, dtype=bool)
        self.mask[self.units] = True

    def __bool__(self) -> bool:
        return bool(self.units.size)

    def pair_count(self) -> int:
        return int(sum(v.size for v in self.partners.values()) // 2)

    def blocked(self, unit: int, labels: np.ndarray, territory: int, ignore: int = -1) -> bool:
        """Moving ``unit`` into ``territory`` would put it beside a partner (``ignore`` leaves)."""
        mates = self.partners.get(int(unit))
        if mates is None:
            return False
        hit = labels[mates] == territory
        if ignore >= 0:
            hit &= mates != ignore
        return bool(hit.any())

    def blocked_matrix(self, labels: np.ndarray, p: int) -> np.ndarray:
        """(n_heavy, p) bool: heavy unit i (in ``units`` order) may not enter territory k."""
        out = np.zeros((self.units.size, p), dtype=bool)
        for row, u in enumerate(self.units.tolist()):
            out[row, labels[self.partners[u]]] = True
        return out

    def row_of(self) -> np.ndarray:
        """(n,) row of every heavy unit in ``blocked_matrix`` (-1 for the others)."""
        row = np.full(self.mask.size, -1, dtype=np.int64)
        row[self.units] = np.arange(self.units.size)
        return row

    def together(self, labels: np.ndarray) -> list:
        """Conflicting pairs (i < j) that share a territory in ``labels``."""
        out = []
        for u, mates in self.partners.items():
            same = mates[(labels[mates] == labels[u]) & (mates > u)]
            out.extend((u, int(j)) for j in same.tolist())
        return out


def heavy_pairs(model) -> HeavyPairs:
    """The model's conflicting pairs (computed once per model)."""
    cached = getattr(model, "_heavy_pairs", None)
    if cached is None:
        cached = HeavyPairs(model.frac, model.share, model.active,
                            model.tolerance if model.tolerances is None else model.tolerances, model.locked)
        model._heavy_pairs = cached
    return cached
