"""Turn a QGIS layer of sales units into the engine's arrays.

This is the one place where features become ids, representative points, workloads and an
adjacency graph, so the Processing algorithms and the dock always agree on what a unit is and
which units touch. Distances are always in metres: a layer in a geographic CRS is projected to
a Lambert azimuthal equal-area projection centred on the layer; a projected CRS in feet or other
units is scaled to metres.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsRectangle,
    QgsUnitTypes,
    QgsWkbTypes,
)
from scipy import sparse
from scipy.spatial import Delaunay, cKDTree

from ..i18n import tr
from .plan_reader import UnitDataError, workload_value

#: A Delaunay edge between account points is kept when it is at most this many times the
#: distance to the third-nearest point at both of its ends (or short by the layer's own standard).
LOCAL_EDGE_FACTOR = 4.0


@dataclass
class Units:
    """The units of one layer, in the order the engine sees them.

    ``fids`` maps engine index → feature id. ``positions`` are representative points in metres
    (in ``metric_crs``). ``workloads`` has one column per measure in ``measure_names``.
    ``adjacency`` is symmetric (n × n); it may be disconnected (islands): the engine joins
    detached pieces and reports them. ``geometries`` are the units in metres (``metric_crs``
    coordinates times ``unit_factor``), for measuring areas and perimeters, not for writing.
    """

    fids: np.ndarray
    positions: np.ndarray
    workloads: np.ndarray
    measure_names: list[str]
    adjacency: sparse.csr_matrix
    metric_crs: QgsCoordinateReferenceSystem
    is_polygon: bool
    unit_factor: float = 1.0
    geometries: list[QgsGeometry] = field(default_factory=list, repr=False)
    repaired: list[int] = field(default_factory=list)
    index_of_fid: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.fids)


# --- coordinate systems ---------------------------------------------------------------------

def metric_crs_for(crs: QgsCoordinateReferenceSystem, extent_in_crs: QgsRectangle,
                   transform_context: QgsCoordinateTransformContext) -> tuple[QgsCoordinateReferenceSystem, float]:
    """Pick the CRS in which distances are measured, and a factor from its units to metres.

    Projected layers keep their CRS (their analyst chose it) with a unit factor; geographic or
    unknown-unit layers get an equal-area azimuthal projection centred on the layer.
    """
    check_crs_is_defined(crs)
    if crs.isValid() and not crs.isGeographic():
        factor = QgsUnitTypes.fromUnitToUnitFactor(crs.mapUnits(), QgsUnitTypes.DistanceUnit.DistanceMeters)
        if factor and math.isfinite(factor) and crs.mapUnits() != QgsUnitTypes.DistanceUnit.DistanceUnknownUnit:
            return crs, float(factor)
    centre = extent_in_crs.center()
    lon, lat = centre.x(), centre.y()
    if crs.isValid() and crs.isGeographic():
        to_wgs84 = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem("EPSG:4326"), transform_context)
        point = to_wgs84.transform(centre)
        lon, lat = point.x(), point.y()
    if not crs.isValid():
        raise UnitDataError(tr(
            "The layer has no coordinate reference system, so distances cannot be measured. "
            "Set the layer's CRS (Layer Properties ▸ Source) and run again."))
    lat = max(-89.0, min(89.0, lat))
    proj = f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    metric = QgsCoordinateReferenceSystem.fromProj(proj)
    if not metric.isValid():
        raise UnitDataError(tr("Could not build a local projection for the layer's area."))
    return metric, 1.0


def check_crs_is_defined(crs: QgsCoordinateReferenceSystem) -> None:
    """Raise :class:`UnitDataError` for the placeholder CRSs GDAL gives a layer without one.

    A GeoPackage written without a CRS carries "Undefined geographic SRS" (or "Undefined Cartesian
    SRS"): QGIS reports it as a valid CRS, in degrees yet not geographic, so metre coordinates
    would be measured as degrees and areas come out ten orders of magnitude too large.
    """
    if not crs.isValid() or crs.authid():
        return
    description = crs.description().strip().lower()
    degrees_but_planar = crs.mapUnits() == QgsUnitTypes.DistanceUnit.DistanceDegrees and not crs.isGeographic()
    if description.startswith("undefined") or degrees_but_planar or not crs.toProj():
        raise UnitDataError(tr(
            "The layer's coordinate reference system is undefined (“{}”), so distances and areas cannot be "
            "measured. Set the layer's CRS to the one its coordinates are in (Layer Properties ▸ Source, or "
            "“Assign projection”) and run again.").format(crs.description() or crs.toWkt()[:60]))


# --- reading --------------------------------------------------------------------------------

def numeric_field_names(source) -> set[str]:
    return {f.name() for f in source.fields() if f.isNumeric()}


def read_units(source, balance_fields: list[str], transform_context: QgsCoordinateTransformContext,
               feedback=None, with_adjacency: bool = True, snap_tolerance: float | None = None,
               request: QgsFeatureRequest | None = None, point_geometries: bool = True) -> Units:
    """Read every feature of ``source`` (a QgsFeatureSource or vector layer) as a unit.

    ``balance_fields`` are numeric fields whose values are the workloads. NULL or negative
    workloads, empty or unrepairable geometries raise :class:`UnitDataError` naming the feature.
    ``feedback`` (QgsFeedback or None) receives progress 0–100 and is checked for cancellation;
    a cancelled read returns ``None``. ``point_geometries=False``: no geometry object per point
    (``Units.geometries`` stays empty for a point layer; the panel needs positions only).
    """
    fields = source.fields()
    for name in balance_fields:
        index = fields.lookupField(name)
        if index < 0:
            raise UnitDataError(tr("The balance field “{}” is not in the layer. Pick one of its fields.").format(name))
        if not fields.at(index).isNumeric():
            raise UnitDataError(tr(
                "The balance field “{}” is not numeric ({}). Choose a numeric field, or convert it "
                "with the Field Calculator.").format(name, fields.at(index).typeName()))
    geometry_type = QgsWkbTypes.geometryType(source.wkbType())
    if geometry_type not in (QgsWkbTypes.GeometryType.PolygonGeometry, QgsWkbTypes.GeometryType.PointGeometry):
        raise UnitDataError(tr("Territories are built from polygon or point layers; this layer has {} geometries.")
                            .format(QgsWkbTypes.geometryDisplayString(geometry_type)))
    is_polygon = geometry_type == QgsWkbTypes.GeometryType.PolygonGeometry
    total = source.featureCount()
    if total == 0:
        raise UnitDataError(tr("The layer has no features. Choose a layer with units to assign."))

    extent = source.sourceExtent()
    metric_crs, factor = metric_crs_for(source.sourceCrs(), extent, transform_context)
    transform = None
    if metric_crs != source.sourceCrs():
        transform = QgsCoordinateTransform(source.sourceCrs(), metric_crs, transform_context)

    req = QgsFeatureRequest(request) if request is not None else QgsFeatureRequest()
    field_indexes = [fields.lookupField(name) for name in balance_fields]
    # only the balance fields travel from the provider (a layer may carry dozens of columns)
    req.setSubsetOfAttributes(field_indexes)
    fids = array("q")
    # flat buffers, not lists of tuples: numpy takes them over without looking at a million
    # Python objects (which would hold the interpreter for a noticeable time on a worker thread)
    xs, ys = array("d"), array("d")
    rows = array("d")
    geometries: list[QgsGeometry] = []
    repaired: list[int] = []
    step = max(1, total // 100)
    for count, feature in enumerate(source.getFeatures(req)):
        if feedback is not None and count % step == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(60.0 * count / max(total, 1) if with_adjacency else 100.0 * count / total)
        geometry = feature.geometry()
        if geometry is None or geometry.isNull() or geometry.isEmpty():
            raise UnitDataError(tr(
                "Feature {} has no geometry. Give it a geometry or filter it out (e.g. with "
                "Extract by expression) before building territories.").format(feature.id()))
        if not is_polygon and not geometry.isMultipart():
            # a single point: transform the coordinates, not a geometry copy (a million accounts)
            point = geometry.asPoint()
            if transform is not None:
                point = transform.transform(point)
            if factor != 1.0:
                point = QgsPointXY(point.x() * factor, point.y() * factor)
            rows.extend(_workload_row(feature, balance_fields, field_indexes))
            fids.append(feature.id())
            xs.append(point.x())
            ys.append(point.y())
            if point_geometries:
                geometries.append(QgsGeometry.fromPointXY(point))
            continue
        geometry = QgsGeometry(geometry)
        if transform is not None:
            geometry.transform(transform)
        if factor != 1.0:
            geometry.transform(_scale_matrix(factor))
        if is_polygon and not geometry.isGeosValid():
            fixed = geometry.makeValid()
            polygonal = QgsWkbTypes.geometryType(fixed.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry
            if fixed.isNull() or fixed.isEmpty() or not polygonal:
                fixed = _polygon_part(fixed)
            if fixed is None or fixed.isEmpty():
                raise UnitDataError(tr(
                    "Feature {} has an invalid geometry that cannot be repaired. Fix it with "
                    "“Fix geometries” or the Vertex tool and run again.").format(feature.id()))
            geometry = fixed
            repaired.append(feature.id())
        rows.extend(_workload_row(feature, balance_fields, field_indexes))
        fids.append(feature.id())
        x, y = _representative_point(geometry, is_polygon)
        xs.append(x)
        ys.append(y)
        geometries.append(geometry)
    if feedback is not None and with_adjacency:
        feedback.setProgress(60.0)

    n = len(fids)
    if n == 0:
        raise UnitDataError(tr("The layer has no features. Choose a layer with units to assign."))
    positions = np.column_stack([np.frombuffer(xs, dtype=float), np.frombuffer(ys, dtype=float)]).reshape(n, 2)
    workloads = np.frombuffer(rows, dtype=float).reshape(n, len(balance_fields)).copy()
    if with_adjacency:
        sub = ScaledFeedback(feedback, 60.0, 100.0) if feedback is not None else None
        if is_polygon:
            adjacency = polygon_adjacency(geometries, snap_tolerance, sub)
        else:
            adjacency = point_adjacency(positions)
        if adjacency is None:
            return None
    else:
        adjacency = sparse.csr_matrix((n, n), dtype=np.int8)
    return Units(
        fids=np.frombuffer(fids, dtype=np.int64).copy(), positions=positions, workloads=workloads,
        measure_names=list(balance_fields), adjacency=adjacency, metric_crs=metric_crs,
        is_polygon=is_polygon, unit_factor=factor, geometries=geometries, repaired=repaired,
        index_of_fid={fid: i for i, fid in enumerate(fids)})


def _workload_row(feature, balance_fields: list[str], field_indexes: list[int]) -> list[float]:
    """The feature's workloads (plan_reader.workload_value: the panel reads them by the same rule)."""
    fid = feature.id()
    return [workload_value(fid, name, feature.attribute(index)) for name, index in zip(balance_fields, field_indexes)]


def _scale_matrix(factor: float):
    from qgis.PyQt.QtGui import QTransform

    return QTransform.fromScale(factor, factor)


def _polygon_part(geometry: QgsGeometry) -> QgsGeometry | None:
    """Keep the polygonal pieces of a repaired geometry collection."""
    if geometry is None or geometry.isNull():
        return None
    parts = [QgsGeometry(part.clone()) for part in geometry.constParts()]
    polygons = [p for p in parts if QgsWkbTypes.geometryType(p.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry]
    if not polygons:
        return None
    return QgsGeometry.unaryUnion(polygons)


def _representative_point(geometry: QgsGeometry, is_polygon: bool) -> tuple[float, float]:
    """The centroid, or a point on the surface when the centroid falls outside the unit."""
    if not is_polygon:
        point = geometry.centroid().asPoint()
        return point.x(), point.y()
    centroid = geometry.centroid()
    if not centroid.isEmpty() and geometry.contains(centroid):
        point = centroid.asPoint()
    else:
        point = geometry.pointOnSurface().asPoint()
    return point.x(), point.y()


class ScaledFeedback:
    """Maps 0–100 progress of a step onto a slice of the caller's feedback."""

    def __init__(self, feedback, start: float, end: float):
        self.feedback, self.start, self.end = feedback, start, end

    def isCanceled(self) -> bool:
        return self.feedback.isCanceled()

    def setProgress(self, value: float) -> None:
        self.feedback.setProgress(self.start + (self.end - self.start) * value / 100.0)

    def __getattr__(self, name: str):
        # Messages (pushWarning, pushInfo, setProgressText, reportError…) go to the caller's feedback
        # unchanged: only progress is scaled.
        return getattr(self.feedback, name)


# --- adjacency ------------------------------------------------------------------------------

def default_snap_tolerance(geometries: list[QgsGeometry]) -> float:
    """Half a percent of the median unit's size (√area), in metres: closes slivers and small
    gaps between neighbours without joining units across real water."""
    areas = np.array([g.area() for g in geometries], dtype=float)
    areas = areas[areas > 0]
    if len(areas) == 0:
        return 1.0
    return float(max(0.005 * math.sqrt(float(np.median(areas))), 1e-6))


def polygon_adjacency(geometries: list[QgsGeometry], tolerance: float | None = None,
                      feedback=None) -> sparse.csr_matrix | None:
    """Units sharing a stretch of boundary (not just a corner) are neighbours.

    Boundaries that share at least two vertices (after snapping to ``tolerance``) are neighbours
    at once; every other pair whose bounding boxes come within ``tolerance`` is tested with GEOS:
    the overlap of one unit's ``tolerance`` buffer with the other must be longer than a corner
    contact (about three tolerances of shared boundary). Returns None when cancelled.

    Vectorised for a million units: the vertices come from each geometry's WKB as one array, the
    boxes and the pairs of overlapping boxes are array operations (a grid of cells), and only the
    pairs that share no two vertices reach GEOS.
    """
    n = len(geometries)
    if tolerance is None:
        tolerance = default_snap_tolerance(geometries)
    if n < 2:
        return _symmetric([], [], n)
    xy, owner = _all_vertices(geometries)
    if feedback is not None:
        if feedback.isCanceled():
            return None
        feedback.setProgress(20.0)
    m = n + 1
    shared = _shared_vertex_keys(xy, owner, n, tolerance)
    boxes = _boxes(xy, owner, n, tolerance)
    candidates = _box_pairs(boxes)
    rest = candidates[~np.isin(candidates, shared)] if shared.size else candidates
    if feedback is not None:
        if feedback.isCanceled():
            return None
        feedback.setProgress(40.0)
    rows: list[int] = []
    cols: list[int] = []
    min_area = 3.0 * tolerance * tolerance
    step = max(1, rest.size // 30)
    engine = None
    engine_of = -1
    buffered = None
    for count, (i, j) in enumerate(zip((rest // m).tolist(), (rest % m).tolist())):
        if feedback is not None and count % step == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(40.0 + 60.0 * count / max(rest.size, 1))
        if i != engine_of:  # pairs come sorted by their first unit
            engine = QgsGeometry.createGeometryEngine(geometries[i].constGet())
            engine.prepareGeometry()
            engine_of, buffered = i, None
        if engine.distance(geometries[j].constGet()) > tolerance:
            continue
        if buffered is None:
            buffered = geometries[i].buffer(tolerance, 2)
        overlap = buffered.intersection(geometries[j])
        if overlap is not None and not overlap.isEmpty() and overlap.area() > min_area:
            rows.append(i)
            cols.append(j)
    accepted = np.asarray(rows, dtype=np.int64) * m + np.asarray(cols, dtype=np.int64)
    keys = np.concatenate([shared, accepted])
    return _symmetric(keys // m, keys % m, n)


def _boxes(xy: np.ndarray, owner: np.ndarray, n: int, grow: float) -> np.ndarray:
    """(n, 4) boxes xmin, ymin, xmax, ymax of every unit's vertices, grown by ``grow``."""
    boxes = np.full((n, 4), np.nan)  # a unit without vertices has no box and no neighbour
    has = np.bincount(owner, minlength=n) > 0
    if not has.any():
        return boxes
    starts = np.searchsorted(owner, np.flatnonzero(has))
    boxes[has, 0] = np.minimum.reduceat(xy[:, 0], starts) - grow
    boxes[has, 1] = np.minimum.reduceat(xy[:, 1], starts) - grow
    boxes[has, 2] = np.maximum.reduceat(xy[:, 0], starts) + grow
    boxes[has, 3] = np.maximum.reduceat(xy[:, 1], starts) + grow
    return boxes


def _box_pairs(boxes: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Sorted keys i * (n + 1) + j (i < j) of every pair of intersecting boxes (closed).

    Each box is entered in every cell of a uniform grid it covers (cell side: a large box's
    size, so most boxes cover one to four cells); pairs are formed within cells, in chunks.
    """
    n = len(boxes)
    m = n + 1
    keys = []
    valid = np.flatnonzero(np.isfinite(boxes).all(axis=1))
    if valid.size < 2:
        return np.zeros(0, dtype=np.int64)
    size = np.maximum(boxes[valid, 2] - boxes[valid, 0], boxes[valid, 3] - boxes[valid, 1])
    cell = float(np.percentile(size, 90))
    if not np.isfinite(cell) or cell <= 0:
        cell = max(float(size.max()), 1.0)
    origin = boxes[valid, :2].min(axis=0)
    c0 = np.floor((boxes[valid, :2] - origin) / cell).astype(np.int64)
    c1 = np.floor((boxes[valid, 2:] - origin) / cell).astype(np.int64)
    span = c1 - c0 + 1
    count = span[:, 0] * span[:, 1]
    big = count > 64
    if big.any():
        # a few units far larger than most: each against every box, then left out of the grid
        for i in valid[big].tolist():
            hit = ((boxes[i, 0] <= boxes[valid, 2]) & (boxes[valid, 0] <= boxes[i, 2])
                   & (boxes[i, 1] <= boxes[valid, 3]) & (boxes[valid, 1] <= boxes[i, 3]))
            j = valid[hit]
            j = j[j != i]
            keys.append(np.minimum(i, j) * m + np.maximum(i, j))
        count = np.where(big, 0, count)
    unit = np.repeat(valid.astype(np.int64), count)
    c0 = np.repeat(c0, count, axis=0)
    span = np.repeat(span, count, axis=0)
    within = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    cx = c0[:, 0] + within % span[:, 0]
    cy = c0[:, 1] + within // span[:, 0]
    width = int(c1[:, 0].max()) + 2
    cell_id = cy * width + cx
    del c0, span, within, cx, cy
    order = np.lexsort((unit, cell_id))
    cell_id, unit = cell_id[order], unit[order]
    for gap in range(1, len(unit)):
        same = np.flatnonzero(cell_id[gap:] == cell_id[:-gap])
        if same.size == 0:
            break
        for lo in range(0, same.size, chunk):
            at = same[lo:lo + chunk]
            i, j = unit[at], unit[at + gap]  # i < j: units are sorted within a cell
            hit = ((boxes[i, 0] <= boxes[j, 2]) & (boxes[j, 0] <= boxes[i, 2])
                   & (boxes[i, 1] <= boxes[j, 3]) & (boxes[j, 1] <= boxes[i, 3]))
            keys.append(i[hit] * m + j[hit])
    if not keys:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(keys))


def _shared_vertex_keys(xy: np.ndarray, owner: np.ndarray, n: int, tolerance: float) -> np.ndarray:
    """Sorted keys i * (n + 1) + j (i < j) of units whose boundaries share two or more vertices
    on a ``tolerance`` grid."""
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64)
    cells = np.floor(xy / tolerance).astype(np.int64)
    order = np.lexsort((owner, cells[:, 1], cells[:, 0]))
    cells, owner = cells[order], owner[order]
    # one entry per (cell, unit): a ring's closing vertex and repeated points count once
    keep = np.ones(len(owner), dtype=bool)
    keep[1:] = (owner[1:] != owner[:-1]) | np.any(cells[1:] != cells[:-1], axis=1)
    cells, owner = cells[keep], owner[keep]
    m = n + 1
    pair_keys = []
    # every pair of units within a run of equal cells (three or more units meet at a vertex)
    for gap in range(1, len(owner)):
        same = np.all(cells[gap:] == cells[:-gap], axis=1)
        if not same.any():
            break
        left, right = owner[:-gap][same], owner[gap:][same]
        pair_keys.append(np.minimum(left, right) * m + np.maximum(left, right))
    if not pair_keys:
        return np.zeros(0, dtype=np.int64)
    unique, counts = np.unique(np.concatenate(pair_keys), return_counts=True)
    return unique[counts >= 2]


def _all_vertices(geometries: list[QgsGeometry], block: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of every geometry as one (V, 2) array, and the index of its geometry.

    Gathered ``block`` geometries at a time: one NumPy call over a million small arrays holds the
    interpreter (and so the panel, when this runs on a worker thread) for a noticeable time."""
    parts, owners = [], []
    for start in range(0, len(geometries), block):
        chunks = [_vertices(g) for g in geometries[start:start + block]]
        lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
        owners.append(np.repeat(np.arange(start, start + len(chunks), dtype=np.int64), lengths))
        kept = [c for c in chunks if len(c)]
        if kept:
            parts.append(np.concatenate(kept))
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    if not parts:
        return np.zeros((0, 2)), owner
    return np.concatenate(parts), owner


_WKB_POLYGON = 3
_WKB_MULTIPOLYGON = 6


def _vertices(geometry: QgsGeometry) -> np.ndarray:
    """The geometry's vertices (x, y); read from its WKB when it is a 2-D (multi)polygon."""
    wkb = bytes(geometry.asWkb())
    if len(wkb) >= 9 and wkb[0] == 1:
        kind = int.from_bytes(wkb[1:5], "little")
        if kind in (_WKB_POLYGON, _WKB_MULTIPOLYGON):
            parts = []
            offset = 5
            polygons = 1
            if kind == _WKB_MULTIPOLYGON:
                polygons = int.from_bytes(wkb[5:9], "little")
                offset = 9
            ok = True
            for _ in range(polygons):
                if kind == _WKB_MULTIPOLYGON:
                    if wkb[offset] != 1 or int.from_bytes(wkb[offset + 1:offset + 5], "little") != _WKB_POLYGON:
                        ok = False
                        break
                    offset += 5
                rings = int.from_bytes(wkb[offset:offset + 4], "little")
                offset += 4
                for _ in range(rings):
                    count = int.from_bytes(wkb[offset:offset + 4], "little")
                    offset += 4
                    parts.append(np.frombuffer(wkb, dtype="<f8", count=2 * count, offset=offset))
                    offset += 16 * count
            if ok:
                if not parts:
                    return np.zeros((0, 2))
                return np.concatenate(parts).reshape(-1, 2)
    coords = [(v.x(), v.y()) for v in geometry.vertices()]
    return np.asarray(coords, dtype=float).reshape(-1, 2)


def point_adjacency(positions: np.ndarray) -> sparse.csr_matrix:
    """Delaunay neighbours of account points, without the absurdly long edges that the
    triangulation adds along the convex hull and across empty country."""
    n = len(positions)
    if n < 2:
        return sparse.csr_matrix((n, n), dtype=np.int8)
    unique, inverse = _unique_points(positions)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    # Units at the same place are neighbours of each other.
    order = np.argsort(inverse, kind="stable")
    same = inverse[order][1:] == inverse[order][:-1]
    rows.append(order[:-1][same])
    cols.append(order[1:][same])
    if len(unique) >= 3 and np.linalg.matrix_rank(unique - unique[0]) >= 2:
        triangulation = Delaunay(unique)
        simplices = triangulation.simplices
        edges = np.concatenate([simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [0, 2]]]).astype(np.int64)
        # each edge once: one int64 key per pair is far faster to deduplicate than rows
        keys = np.unique(edges.min(axis=1) * len(unique) + edges.max(axis=1))
        edges = np.column_stack([keys // len(unique), keys % len(unique)])
        lengths = np.hypot(*(unique[edges[:, 0]] - unique[edges[:, 1]]).T)
        q1, q3 = np.percentile(lengths, [25, 75])
        limit = q3 + 3.0 * (q3 - q1)
        # Accounts cluster (cities) over a sparse background: a global length limit would cut
        # every rural edge and leave the countryside as a tree of joined islands. An edge is
        # absurd only when it is long for the local spacing at both of its ends.
        k = int(min(3, len(unique) - 1))
        spacing, _ = cKDTree(unique).query(unique, k=k + 1)
        local = np.asarray(spacing).reshape(len(unique), k + 1)[:, -1]
        local_limit = LOCAL_EDGE_FACTOR * np.minimum(local[edges[:, 0]], local[edges[:, 1]])
        keep = (lengths <= max(limit, 0.0) + 1e-9) | (lengths <= local_limit)
        edges = edges[keep]
    elif len(unique) >= 2:
        # collinear points: chain them in order along the line
        direction = unique[-1] - unique[0]
        chain = np.argsort(unique @ direction)
        edges = np.stack([chain[:-1], chain[1:]], axis=1)
    else:
        edges = np.zeros((0, 2), dtype=np.int64)
    # map unique-point edges back to every unit (first unit at each place)
    first = np.full(len(unique), -1, dtype=np.int64)
    first[inverse[order][::-1]] = order[::-1]
    rows.append(first[edges[:, 0]])
    cols.append(first[edges[:, 1]])
    return _symmetric(np.concatenate(rows), np.concatenate(cols), n)


def _unique_points(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct points in lexicographic order (x, then y) and each point's index among them:
    ``np.unique(positions, axis=0, return_inverse=True)``, by a sort of the two float columns
    (several times faster, and short numpy calls that let other threads run in between)."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    order = np.lexsort((positions[:, 1], positions[:, 0]))
    ordered = positions[order]
    new = np.ones(len(ordered), dtype=bool)
    new[1:] = (ordered[1:, 0] != ordered[:-1, 0]) | (ordered[1:, 1] != ordered[:-1, 1])
    inverse = np.empty(len(ordered), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return ordered[new], inverse


def _symmetric(rows, cols, n: int) -> sparse.csr_matrix:
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    data = np.ones(2 * len(rows), dtype=np.int8)
    matrix = sparse.coo_matrix((data, (np.concatenate([rows, cols]), np.concatenate([cols, rows]))), shape=(n, n))
    matrix = matrix.tocsr()
    matrix.data[:] = 1
    matrix.eliminate_zeros()
    return matrix


def points_to_metric(points: list[QgsPointXY], crs: QgsCoordinateReferenceSystem, units: Units,
                     transform_context: QgsCoordinateTransformContext) -> np.ndarray:
    """Project points (e.g. rep homes or seeds) into the units' metric CRS."""
    transform = QgsCoordinateTransform(crs, units.metric_crs, transform_context)
    out = np.empty((len(points), 2), dtype=float)
    for k, point in enumerate(points):
        projected = transform.transform(point)
        out[k] = (projected.x(), projected.y())
    return out * units.unit_factor
