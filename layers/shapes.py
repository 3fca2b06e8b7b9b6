"""Territory shapes: each territory's units dissolved once, and what is measured on the result.

Every algorithm that draws or measures a territory goes through :class:`TerritoryShapes`: the
units of a territory are dissolved once, in the units' own CRS (the geometry the outputs write and
the maps draw), and that geometry is measured once in the units' metric CRS: area, perimeter and
Polsby–Popper, one way for every output. The layer's outline for the edge test is the union of
those shapes. Also here: which units lie on the outer edge of a layer and which unit a point lies in.
"""

from __future__ import annotations

import math

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPoint,
    QgsPointXY,
    QgsProcessingException,
    QgsSpatialIndex,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QTransform

from ..i18n import tr
from .units import Units, default_snap_tolerance

#: above this many points, :func:`units_at` sorts the points into a grid instead of indexing the units
MANY_POINTS = 200


def polsby_popper(area: float, perimeter: float) -> float | None:
    """4π × area / perimeter²: 1 for a circle, near 0 for long thin shapes; None without a perimeter."""
    return 4 * math.pi * area / perimeter**2 if perimeter > 0 else None


class TerritoryShapes:
    """Each territory's units dissolved once (index k = territory k).

    ``geometry[k]``: the territory in the units' CRS, multi-part (a null geometry when it has no
    units). For polygon units also ``area_km2[k]``, ``perimeter_km[k]`` and ``polsby_popper[k]``,
    measured in the units' metric CRS (0, 0 and None for an empty territory); for point units
    these are None.
    """

    def __init__(self, geometry: list[QgsGeometry], metric: list[QgsGeometry], is_polygon: bool):
        self.geometry = geometry
        self._metric = metric  # the same shapes in metres (units.geometries' coordinates)
        count = len(geometry)
        self.area_km2: list[float | None] = [None] * count
        self.perimeter_km: list[float | None] = [None] * count
        self.polsby_popper: list[float | None] = [None] * count
        if not is_polygon:
            return
        for k, shape in enumerate(metric):
            area, perimeter = (0.0, 0.0) if shape.isNull() or shape.isEmpty() else (shape.area(), shape.length())
            self.area_km2[k] = area / 1e6
            self.perimeter_km[k] = perimeter / 1e3
            self.polsby_popper[k] = polsby_popper(area, perimeter)

    @classmethod
    def dissolve(cls, units: Units, unit_geometries: list[QgsGeometry], labels, count: int, source_crs,
                 transform_context, feedback=None, progress: tuple[float, float] = (0.0, 100.0)) -> TerritoryShapes:
        """Dissolve each territory's units once.

        ``unit_geometries[i]`` is unit i's geometry in ``source_crs`` (engine order), ``labels[i]``
        its territory (−1: none). Units the reader repaired (``units.repaired``) are repaired here
        too, so that an invalid polygon does not leave its territory without a shape. ``feedback``
        gets progress from ``progress[0]`` to ``progress[1]`` and is checked for cancellation.
        """
        labels = np.asarray(labels, dtype=np.int64)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(count + 1))
        repaired = {int(fid) for fid in units.repaired}
        to_metric = QgsCoordinateTransform(source_crs, units.metric_crs, transform_context)
        scale = QTransform.fromScale(units.unit_factor, units.unit_factor) if units.unit_factor != 1.0 else None
        start, end = progress
        geometries, metric = [], []
        for k in range(count):
            if feedback is not None:
                if feedback.isCanceled():
                    raise QgsProcessingException(tr("Cancelled."))
                feedback.setProgress(start + (end - start) * k / max(count, 1))
            members = order[bounds[k]:bounds[k + 1]]
            parts = [_valid(unit_geometries[i]) if int(units.fids[i]) in repaired else unit_geometries[i]
                     for i in members]
            geometry = QgsGeometry.unaryUnion(parts) if parts else QgsGeometry()
            if not geometry.isNull():
                geometry.convertToMultiType()
            geometries.append(geometry)
            measured = QgsGeometry()
            if units.is_polygon and not geometry.isNull():
                measured = QgsGeometry(geometry)
                measured.transform(to_metric)
                if scale is not None:
                    measured.transform(scale)
            metric.append(measured)
        return cls(geometries, metric, units.is_polygon)

    def edge_units(self, units: Units, labels) -> np.ndarray:
        """Which units lie on the outer edge of the layer (see :func:`edge_units`), with the layer's
        outline joined from these shapes and the units in no territory."""
        if not units.is_polygon:
            return edge_units(units)
        loose = [units.geometries[i] for i in np.flatnonzero(np.asarray(labels) < 0)]
        pieces = [shape for shape in self._metric if not shape.isNull() and not shape.isEmpty()] + loose
        return edge_units(units, pieces)


def edge_units(units: Units, pieces: list[QgsGeometry] | None = None) -> np.ndarray:
    """Units on the outer edge of the layer: polygons within snapping distance of the outline of
    all units (holes such as lakes do not count as edge); points on the convex hull.

    ``pieces`` (optional): polygons in the units' metric coordinates whose union is the whole
    layer (e.g. the dissolved territories), so the layer is not dissolved again.
    """
    n = units.count
    edge = np.zeros(n, dtype=bool)
    if not units.is_polygon:
        from scipy.spatial import ConvexHull, QhullError

        unique = np.unique(units.positions, axis=0)
        if len(unique) < 3:
            return np.ones(n, dtype=bool)
        try:
            hull = ConvexHull(units.positions)
        except QhullError:
            return np.ones(n, dtype=bool)
        edge[hull.vertices] = True
        return edge
    tolerance = default_snap_tolerance(units.geometries)
    union = QgsGeometry.unaryUnion(units.geometries if pieces is None else pieces).buffer(tolerance, 2)
    rings = []
    for part in union.constParts():
        exterior = part.exteriorRing() if hasattr(part, "exteriorRing") else None
        if exterior is not None:
            rings.append(QgsGeometry(exterior.clone()))
    if not rings:
        return np.ones(n, dtype=bool)
    outline = QgsGeometry.collectGeometry(rings)
    engine = QgsGeometry.createGeometryEngine(outline.constGet())
    engine.prepareGeometry()
    for i, geometry in enumerate(units.geometries):
        edge[i] = engine.distance(geometry.constGet()) <= 3 * tolerance
    return edge


def units_at(units: Units, positions, feedback=None) -> np.ndarray | None:
    """The unit each point (metres, in the units' metric CRS) lies in: for polygon units the one
    containing it (−1 when none does; a point on a shared boundary goes to the first of its units),
    for point units the nearest. Many points (accounts) are sorted into a grid and each unit tests
    the points in its bounding box against its prepared geometry; a few (rep homes) look their
    units up in a spatial index. Returns None when ``feedback`` is cancelled."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    out = np.full(len(positions), -1, dtype=np.int64)
    if len(positions) == 0 or units.count == 0:
        return out
    if not units.is_polygon:
        return np.array([nearest_unit(units, position) for position in positions], dtype=np.int64)
    if len(positions) > MANY_POINTS:
        return _units_at_many(units.geometries, positions, feedback)
    index = QgsSpatialIndex()
    for i, geometry in enumerate(units.geometries):
        index.addFeature(i, geometry.boundingBox())
    for row, (x, y) in enumerate(positions):
        point = QgsGeometry.fromPointXY(QgsPointXY(float(x), float(y)))
        for i in sorted(index.intersects(point.boundingBox())):
            if units.geometries[i].intersects(point):
                out[row] = i
                break
    return out


def nearest_unit(units: Units, position) -> int:
    """The unit whose centre is nearest to a point (metres, in the units' metric CRS); −1 without units."""
    if units.count == 0:
        return -1
    x, y = float(position[0]), float(position[1])
    return int(np.argmin(np.hypot(units.positions[:, 0] - x, units.positions[:, 1] - y)))


def _units_at_many(geometries: list[QgsGeometry], points: np.ndarray, feedback=None) -> np.ndarray | None:
    """:func:`units_at` for many points over polygons: the points sit in a grid of cells, sorted by
    cell, so each unit tests only the points in its bounding box, against its prepared (GEOS)
    geometry: first their interiors, then the boundaries for the points no interior holds."""
    found = np.full(len(points), -1, dtype=np.int64)
    grid = _PointGrid(points)
    step = max(1, len(geometries) // 50)
    boundary: list[tuple[int, np.ndarray]] = []
    for unit, geometry in enumerate(geometries):
        if feedback is not None and unit % step == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(100.0 * unit / len(geometries))
        box = geometry.boundingBox()
        candidates = grid.within(box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum())
        candidates = candidates[found[candidates] < 0]
        if candidates.size == 0:
            continue
        engine = QgsGeometry.createGeometryEngine(geometry.constGet())
        engine.prepareGeometry()
        inside = [i for i, (x, y) in zip(candidates.tolist(), points[candidates].tolist())
                  if engine.contains(QgsPoint(x, y))]
        found[inside] = unit
        boundary.append((unit, candidates))
    # points on a boundary are in no unit's interior: the first unit that touches them
    for unit, candidates in boundary:
        left = candidates[found[candidates] < 0]
        if left.size == 0:
            continue
        engine = QgsGeometry.createGeometryEngine(geometries[unit].constGet())
        touching = [i for i, (x, y) in zip(left.tolist(), points[left].tolist()) if engine.intersects(QgsPoint(x, y))]
        found[touching] = unit
    return found


class _PointGrid:
    """Points sorted by the cell of a uniform grid (about 16 points per cell)."""

    def __init__(self, points: np.ndarray):
        self.points = points
        low = points.min(axis=0)
        span = np.maximum(points.max(axis=0) - low, 1e-9)
        cells = max(1, len(points) // 16)
        side = float(max(np.sqrt(span[0] * span[1] / cells), span.max() / 4096, 1e-9))
        self.low, self.side = low, side
        self.width = int(span[0] // side) + 1
        self.height = int(span[1] // side) + 1
        column = np.minimum(((points[:, 0] - low[0]) // side).astype(np.int64), self.width - 1)
        row = np.minimum(((points[:, 1] - low[1]) // side).astype(np.int64), self.height - 1)
        cell = row * self.width + column
        self.order = np.argsort(cell, kind="stable")
        self.starts = np.searchsorted(cell[self.order], np.arange(self.width * self.height + 1))

    def within(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Indices of the points inside the box (closed)."""
        c0 = max(0, int((xmin - self.low[0]) // self.side))
        c1 = min(self.width - 1, int((xmax - self.low[0]) // self.side))
        r0 = max(0, int((ymin - self.low[1]) // self.side))
        r1 = min(self.height - 1, int((ymax - self.low[1]) // self.side))
        if c0 > c1 or r0 > r1:
            return np.zeros(0, dtype=np.int64)
        parts = [self.order[self.starts[r * self.width + c0]:self.starts[r * self.width + c1 + 1]]
                 for r in range(r0, r1 + 1)]
        found = np.concatenate(parts) if len(parts) > 1 else parts[0]
        xy = self.points[found]
        keep = (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin) & (xy[:, 1] <= ymax)
        return found[keep]


def read_unit_geometries(source, units: Units, feedback=None) -> list[QgsGeometry]:
    """Every unit's geometry as the layer holds it (its own CRS), in engine order."""
    geometries = [QgsGeometry()] * units.count
    for count, feature in enumerate(source.getFeatures(QgsFeatureRequest().setNoAttributes())):
        if feedback is not None and count % 1000 == 0 and feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled."))
        i = units.index_of_fid.get(feature.id())
        if i is not None:
            geometries[i] = QgsGeometry(feature.geometry())
    return geometries


def _valid(geometry: QgsGeometry) -> QgsGeometry:
    """A repaired copy of an invalid polygon, keeping only its polygon parts."""
    fixed = geometry.makeValid()
    if QgsWkbTypes.geometryType(fixed.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry:
        return fixed
    polygons = [part for part in fixed.asGeometryCollection()
                if QgsWkbTypes.geometryType(part.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry]
    return QgsGeometry.unaryUnion(polygons) if polygons else geometry
