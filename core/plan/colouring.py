"""Territory colours: one colour per territory code, neighbours clearly apart.

The palette's twelve colours are at least 60 apart from each other in RGB (Euclidean, 0–255 per
channel), light enough for black labels. Territories are coloured on their adjacency graph with
DSatur (most-constrained territory first). Up to twelve territories each get their own colour;
beyond that each takes the colour farthest from its neighbours' colours, least used first.
Colours a territory already has are kept unless a neighbour has the same or a near colour, so a
rename, a reload or a small edit recolours nothing.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence

PALETTE: tuple[str, ...] = (
    "#f4a259", "#4f86d9", "#7cc47f", "#e0607a", "#b59be0", "#f6e05e",
    "#3fb0a8", "#b07a4f", "#b4e6f0", "#d9c59a", "#f7b8d8", "#8a6fc4",
)
MIN_DISTANCE = 60.0


def rgb(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` as three integers; raises ValueError on anything else."""
    text = str(colour).strip()
    if len(text) != 7 or not text.startswith("#"):
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)


def distance(a: str, b: str) -> float:
    """Euclidean distance of two ``#rrggbb`` colours in RGB (0–441)."""
    return math.dist(rgb(a), rgb(b))


def is_colour(value) -> bool:
    try:
        rgb(value)
    except (TypeError, ValueError):
        return False
    return True


def territory_neighbours(labels: Sequence[int], pairs: Iterable[tuple[int, int]], count: int) -> list[set[int]]:
    """Which territories touch: ``pairs`` are adjacent units (i, j), ``labels[i]`` their territory
    (negative: none)."""
    import numpy as np

    labels = np.asarray(labels, dtype=np.int64)
    pairs = np.asarray(list(pairs) if not isinstance(pairs, np.ndarray) else pairs, dtype=np.int64).reshape(-1, 2)
    neighbours: list[set[int]] = [set() for _ in range(count)]
    if len(pairs) == 0:
        return neighbours
    a, b = labels[pairs[:, 0]], labels[pairs[:, 1]]
    keep = (a != b) & (a >= 0) & (b >= 0)
    low, high = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    for code in np.unique(low * count + high).tolist():
        x, y = divmod(code, count)
        neighbours[x].add(y)
        neighbours[y].add(x)
    return neighbours


def assign_colours(neighbours: Sequence[set[int]], keep: Mapping[int, str] | None = None,
                   palette: Sequence[str] = PALETTE) -> list[str]:
    """A ``#rrggbb`` colour per territory so that neighbours are at least ``MIN_DISTANCE`` apart.

    ``keep[k]`` is territory k's current colour: kept when no neighbour already kept has a near
    colour (territories are checked in index order). The others are coloured by DSatur.
    """
    count = len(neighbours)
    colour: list[str | None] = [None] * count
    for k in sorted((keep or {}).keys()):
        wanted = keep[k]
        if not (0 <= k < count) or not is_colour(wanted):
            continue
        if all(colour[m] is None or distance(colour[m], wanted) >= MIN_DISTANCE for m in neighbours[k]):
            colour[k] = wanted.lower()
    distinct = count <= len(palette)
    used = {c: 0 for c in palette}
    for c in colour:
        if c in used:
            used[c] += 1
    # DSatur: most distinct neighbour colours first, then most neighbours, then lowest index. The
    # saturation of each territory is kept up to date as its neighbours get colours, and the next
    # territory comes from a heap (stale entries are skipped): thousands of territories stay fast.
    seen: list[set[str]] = [{colour[m] for m in neighbours[t] if colour[m]} for t in range(count)]
    heap = [(-len(seen[t]), -len(neighbours[t]), t) for t in range(count) if colour[t] is None]
    heapq.heapify(heap)
    while heap:
        saturation, _degree, k = heapq.heappop(heap)
        if colour[k] is not None or -saturation != len(seen[k]):
            continue
        taken = [colour[m] for m in neighbours[k] if colour[m]]

        def merit(c: str, taken: list = taken) -> tuple:
            nearest = min((distance(c, t) for t in taken), default=441.0)
            if distinct:  # every territory its own colour: any two palette colours are far enough apart
                return (-used.get(c, 0), nearest, -palette.index(c))
            return (min(nearest, 100.0), -used.get(c, 0), nearest, -palette.index(c))

        colour[k] = max(palette, key=merit)
        used[colour[k]] = used.get(colour[k], 0) + 1
        for m in neighbours[k]:
            if colour[m] is None and colour[k] not in seen[m]:
                seen[m].add(colour[k])
                heapq.heappush(heap, (-len(seen[m]), -len(neighbours[m]), m))
    return [str(c) for c in colour]


def closest_pair(colours: Sequence[str], neighbours: Sequence[set[int]]) -> float:
    """The smallest RGB distance between two neighbouring territories (441 when none touch)."""
    return min((distance(colours[a], colours[b]) for a in range(len(colours)) for b in neighbours[a] if a < b),
               default=441.0)
