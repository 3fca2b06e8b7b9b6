"""Which polygon unit each of many points (accounts) lies in.

A million accounts over tens of thousands of units: the points are sorted into a grid, each unit
is paired with the points in its bounding box, and each pair is decided by casting a ray from the
point across the unit's rings (an odd number of crossings: inside). Units with few edges (ZIP-like
cells, counties drawn simply) are decided for all their pairs at once with array operations; a
unit with many edges goes to GEOS (its prepared geometry), one point at a time, where testing every
edge for every point would cost more. Both give GEOS's answer: a point inside a unit (not on its
boundary) belongs to it, the first such unit when units overlap; a point on a boundary and inside
no unit belongs to the first unit whose boundary it touches.
"""

from __future__ import annotations

import numpy as np
from qgis.core import QgsGeometry, QgsPoint

#: a unit with more edges than this is decided by GEOS, point by point
SIMPLE_EDGES = 96
#: the (point, edge) tests made at once: blocks of a few megabytes stay in the processor's caches and
#: the allocator's pools (blocks ten times larger took half as long again)
EDGE_TESTS_AT_ONCE = 400_000

_WKB_POLYGON, _WKB_MULTIPOLYGON = 3, 6


def units_at_many(geometries: list[QgsGeometry], points: np.ndarray, feedback=None) -> np.ndarray | None:
    """(p,) the index of the unit each point lies in (−1: none), by the rule of the module docstring;
    None when ``feedback`` is cancelled. ``points`` are in the geometries' coordinates."""
    n = len(geometries)
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    inside = np.full(len(points), n, dtype=np.int64)  # the first unit holding the point inside (n: none)
    touching = np.full(len(points), n, dtype=np.int64)  # the first unit whose boundary it touches
    if n == 0 or len(points) == 0:
        return np.full(len(points), -1, dtype=np.int64)
    edges = _Edges.of(geometries)
    grid = _PointGrid(points, edges.cell_side(points))
    simple = np.flatnonzero(edges.parsed & (edges.count <= SIMPLE_EDGES))
    if not _decide_simple(edges, simple, grid, points, inside, touching, feedback):
        return None
    complex_units = np.setdiff1d(np.arange(n), simple)
    if not _decide_with_geos(geometries, complex_units, grid, points, inside, touching, feedback):
        return None
    return np.where(inside < n, inside, np.where(touching < n, touching, -1))


class _Edges:
    """Every edge of every unit's rings (exterior and holes, every part), grouped by unit."""

    def __init__(self, starts, ends, owner, parsed):
        self.x1, self.y1 = starts[:, 0], starts[:, 1]
        self.x2, self.y2 = ends[:, 0], ends[:, 1]
        n = len(parsed)
        self.parsed = parsed
        self.count = np.bincount(owner, minlength=n).astype(np.int64)
        self.first = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        # each unit's box, from its vertices (of a unit not parsed, from its geometry: see of())
        low = np.full((n, 2), np.inf)
        high = np.full((n, 2), -np.inf)
        if len(owner):
            np.minimum.at(low, owner, np.minimum(starts, ends))
            np.maximum.at(high, owner, np.maximum(starts, ends))
        self.low, self.high = low, high

    def cell_side(self, points: np.ndarray) -> float:
        """A grid cell about as wide as the smallest units (the 2nd percentile of the boxes' sides), so
        that a unit of a dense city pairs with the points of a few cells, not of a whole region; wide
        enough that the units' boxes cross at most two million rows of cells in all, and that the grid
        has at most 10¹² cells."""
        sides = np.max(self.high - self.low, axis=1)
        finite = np.isfinite(sides) & (sides > 0)
        span = float(np.max(points.max(axis=0) - points.min(axis=0))) if len(points) else 1.0
        if not finite.any():
            return max(span, 1e-9)
        heights = (self.high - self.low)[finite, 1]
        side = float(np.percentile(sides[finite], 2))
        return max(side, float(heights.sum()) / 2e6, span / 1e6, 1e-9)

    @classmethod
    def of(cls, geometries: list[QgsGeometry]) -> _Edges:
        rings, ring_owner, unparsed = [], [], []
        parsed = np.zeros(len(geometries), dtype=bool)
        for unit, geometry in enumerate(geometries):
            found = wkb_rings(bytes(geometry.asWkb()))
            if found is None:
                unparsed.append(unit)
                continue
            parsed[unit] = True
            rings += found
            ring_owner += [unit] * len(found)
        if rings:
            # one array of every vertex; an edge joins each vertex to the next of its ring
            lengths = np.fromiter((len(ring) for ring in rings), dtype=np.int64, count=len(rings))
            vertices = np.concatenate(rings)
            last = np.cumsum(lengths) - 1
            first = last - lengths + 1
            starts = np.ones(len(vertices), dtype=bool)
            starts[last] = False
            owner = np.repeat(np.asarray(ring_owner, dtype=np.int64), lengths)
            begin = np.flatnonzero(starts)
            edge_starts, edge_ends, edge_owner = vertices[begin], vertices[begin + 1], owner[begin]
            # a ring not closed in its WKB closes from its last vertex back to its first
            open_rings = np.flatnonzero((vertices[first] != vertices[last]).any(axis=1))
            if open_rings.size:
                edge_starts = np.vstack([edge_starts, vertices[last[open_rings]]])
                edge_ends = np.vstack([edge_ends, vertices[first[open_rings]]])
                edge_owner = np.concatenate([edge_owner, owner[first[open_rings]]])
                order = np.argsort(edge_owner, kind="stable")
                edge_starts, edge_ends, edge_owner = edge_starts[order], edge_ends[order], edge_owner[order]
            edges = cls(edge_starts, edge_ends, edge_owner, parsed)
        else:
            edges = cls(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, dtype=np.int64), parsed)
        for unit in unparsed:
            box = geometries[unit].boundingBox()
            edges.low[unit] = box.xMinimum(), box.yMinimum()
            edges.high[unit] = box.xMaximum(), box.yMaximum()
        return edges


def wkb_rings(wkb: bytes) -> list[np.ndarray] | None:
    """The rings (k, 2) of a little-endian 2-D polygon or multipolygon WKB; None otherwise (curves,
    Z or M: GEOS decides those units)."""
    if len(wkb) < 9 or wkb[0] != 1:
        return None
    kind = int.from_bytes(wkb[1:5], "little")
    if kind not in (_WKB_POLYGON, _WKB_MULTIPOLYGON):
        return None
    polygons, offset = (int.from_bytes(wkb[5:9], "little"), 9) if kind == _WKB_MULTIPOLYGON else (1, 5)
    rings = []
    for _ in range(polygons):
        if kind == _WKB_MULTIPOLYGON:
            if wkb[offset] != 1 or int.from_bytes(wkb[offset + 1:offset + 5], "little") != _WKB_POLYGON:
                return None
            offset += 5
        count = int.from_bytes(wkb[offset:offset + 4], "little")
        offset += 4
        for _ in range(count):
            vertices = int.from_bytes(wkb[offset:offset + 4], "little")
            offset += 4
            if vertices:
                rings.append(np.frombuffer(wkb, dtype="<f8", count=2 * vertices, offset=offset).reshape(vertices, 2))
            offset += 16 * vertices
    return rings


class _PointGrid:
    """Points sorted by the cell of a uniform grid of cells of ``side`` (no array per cell: the
    runs of a row are found by searching the sorted cells, so the grid may be fine)."""

    def __init__(self, points: np.ndarray, side: float):
        self.points = points
        self.x, self.y = np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1])
        low = points.min(axis=0)
        span = np.maximum(points.max(axis=0) - low, 1e-9)
        self.low, self.side = low, side
        self.width = int(span[0] // side) + 1
        self.height = int(span[1] // side) + 1
        column = np.minimum(((points[:, 0] - low[0]) // side).astype(np.int64), self.width - 1)
        row = np.minimum(((points[:, 1] - low[1]) // side).astype(np.int64), self.height - 1)
        cell = row * self.width + column
        self.order = np.argsort(cell, kind="stable")
        self.sorted_cells = cell[self.order]

    def cells(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
        """(first column, last column, first row, last row) of the cells boxes ``low``–``high`` (k, 2)
        cover, clipped to the grid (a box outside it has first > last)."""
        def clip(values, limit):
            return np.clip(np.floor(values), -1, limit).astype(np.int64)

        c0 = np.maximum(clip((low[:, 0] - self.low[0]) / self.side, self.width), 0)
        c1 = np.minimum(clip((high[:, 0] - self.low[0]) / self.side, self.width), self.width - 1)
        r0 = np.maximum(clip((low[:, 1] - self.low[1]) / self.side, self.height), 0)
        r1 = np.minimum(clip((high[:, 1] - self.low[1]) / self.side, self.height), self.height - 1)
        return c0, c1, r0, r1

    def _runs(self, rows: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) in the sorted points of the cells c0…c1 of each row."""
        return (np.searchsorted(self.sorted_cells, rows * self.width + c0, side="left"),
                np.searchsorted(self.sorted_cells, rows * self.width + c1, side="right"))

    def within(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Indices of the points inside the box (closed)."""
        c0, c1, r0, r1 = (int(v[0]) for v in self.cells(np.array([[xmin, ymin]]), np.array([[xmax, ymax]])))
        if c0 > c1 or r0 > r1:
            return np.zeros(0, dtype=np.int64)
        rows = np.arange(r0, r1 + 1, dtype=np.int64)
        start, end = self._runs(rows, np.full(rows.size, c0), np.full(rows.size, c1))
        lengths = end - start
        found = self.order[np.repeat(start, lengths) + _ragged_arange(lengths)]
        xy = self.points[found]
        keep = (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin) & (xy[:, 1] <= ymax)
        return found[keep]

    def runs(self, units: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, ...]:
        """(unit, start, length) of the runs of sorted points in the cells each of ``units``' boxes
        (``low``, ``high`` of all units) covers: one run per grid row of a box."""
        c0, c1, r0, r1 = self.cells(low[units], high[units])
        valid = (c0 <= c1) & (r0 <= r1)
        units, c0, c1, r0, r1 = units[valid], c0[valid], c1[valid], r0[valid], r1[valid]
        rows = r1 - r0 + 1
        row = np.repeat(r0, rows) + _ragged_arange(rows)
        start, end = self._runs(row, np.repeat(c0, rows), np.repeat(c1, rows))
        return np.repeat(units, rows), start, end - start

    def pairs(self, unit: np.ndarray, start: np.ndarray, length: np.ndarray, low: np.ndarray,
              high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unit, point) of the points of the runs (see :meth:`runs`) inside their unit's box."""
        point = self.order[np.repeat(start, length) + _ragged_arange(length)]
        unit = np.repeat(unit, length)
        x, y = self.x[point], self.y[point]
        keep = (x >= low[unit, 0]) & (x <= high[unit, 0])
        keep &= (y >= low[unit, 1]) & (y <= high[unit, 1])
        return unit[keep], point[keep]


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """0…lengths[0]−1, 0…lengths[1]−1, … as one array."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _decide_simple(edges: _Edges, units: np.ndarray, grid: _PointGrid, points: np.ndarray, inside: np.ndarray,
                   touching: np.ndarray, feedback) -> bool:
    """Ray casting for every (point, unit) pair of the simple ``units``, a block of pairs at a time
    (blocks of a few megabytes: see EDGE_TESTS_AT_ONCE)."""
    run_unit, run_start, run_length = grid.runs(units, edges.low, edges.high)
    # blocks of runs holding about as many candidate points as there are edge tests in a block
    tests_per_point = max(1.0, float(edges.count[units].mean())) if units.size else 1.0
    block_of = np.cumsum(run_length) // max(1, int(EDGE_TESTS_AT_ONCE / tests_per_point))
    bounds = np.searchsorted(block_of, np.arange(int(block_of[-1]) + 2 if len(block_of) else 1))
    for b, (lo, hi) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
        if feedback is not None:
            if feedback.isCanceled():
                return False
            feedback.setProgress(80.0 * b / max(len(bounds) - 1, 1))
        if hi <= lo:
            continue
        pair_unit, pair_point = grid.pairs(run_unit[lo:hi], run_start[lo:hi], run_length[lo:hi], edges.low,
                                           edges.high)
        tests = edges.count[pair_unit]
        # a block of units with many edges is cut again
        sub = np.cumsum(tests) // EDGE_TESTS_AT_ONCE
        cuts = np.searchsorted(sub, np.arange(int(sub[-1]) + 2 if len(sub) else 1))
        for first, last in zip(cuts[:-1].tolist(), cuts[1:].tolist()):
            if last > first:
                _ray_cast(edges, grid, pair_unit[first:last], pair_point[first:last], tests[first:last], inside,
                          touching)
    return True


def _ray_cast(edges: _Edges, grid: _PointGrid, unit: np.ndarray, point: np.ndarray, count: np.ndarray,
              inside: np.ndarray, touching: np.ndarray) -> None:
    """Each pair (point, unit): a ray from the point towards +x crosses the unit's edges an odd number
    of times when the point is inside; a point on an edge touches the unit."""
    pairs = len(unit)
    pair = np.repeat(np.arange(pairs), count)
    edge = np.repeat(edges.first[unit], count) + _ragged_arange(count)
    px, py = grid.x[point][pair], grid.y[point][pair]
    x1, y1, x2, y2 = edges.x1[edge], edges.y1[edge], edges.x2[edge], edges.y2[edge]
    dx, dy = x2 - x1, y2 - y1
    on_edge = ((dx * (py - y1) - dy * (px - x1)) == 0) & (px >= np.minimum(x1, x2)) & \
        (px <= np.maximum(x1, x2)) & (py >= np.minimum(y1, y2)) & (py <= np.maximum(y1, y2))
    straddles = (y1 > py) != (y2 > py)
    crossing = straddles & (px < x1 + (py - y1) * dx / np.where(straddles, dy, 1.0))
    odd = np.bincount(pair, weights=crossing, minlength=pairs).astype(np.int64) % 2 == 1
    boundary = np.bincount(pair, weights=on_edge, minlength=pairs) > 0
    held = odd & ~boundary
    np.minimum.at(inside, point[held], unit[held])
    np.minimum.at(touching, point[boundary], unit[boundary])


def _decide_with_geos(geometries: list[QgsGeometry], units: np.ndarray, grid: _PointGrid, points: np.ndarray,
                      inside: np.ndarray, touching: np.ndarray, feedback) -> bool:
    """Each of ``units`` tests the points in its box against its prepared (GEOS) geometry: first their
    interiors, then, for the points no interior holds, the boundaries; a point keeps the first unit
    (lowest index) of each kind."""
    step = max(1, len(units) // 20)
    boxes = []
    for count, unit in enumerate(units.tolist()):
        if feedback is not None and count % step == 0:
            if feedback.isCanceled():
                return False
            feedback.setProgress(80.0 + 20.0 * count / max(len(units), 1))
        box = geometries[unit].boundingBox()
        candidates = grid.within(box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
        boxes.append((unit, candidates))
        candidates = candidates[inside[candidates] > unit]
        if candidates.size == 0:
            continue
        engine = QgsGeometry.createGeometryEngine(geometries[unit].constGet())
        engine.prepareGeometry()
        held = [i for i, (x, y) in zip(candidates.tolist(), points[candidates].tolist())
                if engine.contains(QgsPoint(x, y))]
        inside[held] = unit
    none = len(geometries)
    for unit, candidates in boxes:
        candidates = candidates[(inside[candidates] == none) & (touching[candidates] > unit)]
        if candidates.size == 0:
            continue
        engine = QgsGeometry.createGeometryEngine(geometries[unit].constGet())
        touched = [i for i, (x, y) in zip(candidates.tolist(), points[candidates].tolist())
                   if engine.intersects(QgsPoint(x, y))]
        touching[touched] = unit
    return True
