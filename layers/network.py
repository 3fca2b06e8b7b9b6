"""Road networks and barriers from QGIS layers, for travel-time territories.

A line layer becomes a :class:`core.travel.RoadNetwork` in the units' metric CRS, read the way
QGIS's own network analysis (``native:shortestpathpointtopoint``) reads it: every vertex is a node,
consecutive vertices are linked, ends within the topology tolerance are joined, the speed comes
from a field in km/h (or the default speed) and the direction from a field whose values mean
forward, backward or both (else the default direction).

Barriers (rivers, ridges, restricted areas) cut adjacency edges between units whose shared
boundary lies along a barrier, or whose connecting line crosses one; with a road network, an
edge stays when a road crosses the barrier between the two units (a bridge, a pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsSpatialIndex,
    QgsWkbTypes,
)
from scipy import sparse

from ..core import travel
from ..i18n import tr
from .units import Units, default_snap_tolerance
from .values import as_number, is_null


class NetworkDataError(ValueError):
    """The network or barrier layer cannot be used; the message names the problem and the fix."""




@dataclass
class NetworkSettings:
    """The network parameters, in the terms of ``native:shortestpathpointtopoint``."""

    speed_field: str = ""
    default_speed: float = 50.0          # km/h
    direction_field: str = ""
    value_forward: str = ""
    value_backward: str = ""
    value_both: str = ""
    default_direction: int = travel.BOTH  # 0 forward, 1 backward, 2 both
    tolerance: float = 0.0                # topology tolerance, in the units' CRS units


@dataclass
class RoadLayer:
    """The network read from a layer: the graph and the road lines (metres, for barrier tests)."""

    network: travel.RoadNetwork
    roads: list[QgsGeometry] = field(default_factory=list, repr=False)
    skipped_speeds: int = 0
    _index: QgsSpatialIndex | None = field(default=None, repr=False)

    def index(self) -> QgsSpatialIndex:
        if self._index is None:
            self._index = QgsSpatialIndex()
            for k, geometry in enumerate(self.roads):
                self._index.addFeature(k, geometry.boundingBox())
        return self._index


def _transform(source, units: Units, transform_context):
    if source.sourceCrs() == units.metric_crs:
        return None
    return QgsCoordinateTransform(source.sourceCrs(), units.metric_crs, transform_context)


def _to_metric(geometry: QgsGeometry, transform, factor: float) -> QgsGeometry:
    geometry = QgsGeometry(geometry)
    if transform is not None:
        geometry.transform(transform)
    if factor != 1.0:
        from qgis.PyQt.QtGui import QTransform

        geometry.transform(QTransform.fromScale(factor, factor))
    return geometry


def read_network(source, units: Units, settings: NetworkSettings, transform_context, feedback=None,
                 keep_roads: bool = True) -> RoadLayer:
    """Read a line layer as a directed road network in the units' metric CRS (metres, minutes).

    ``keep_roads``: keep each road's geometry (needed to test barrier crossings)."""
    if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.GeometryType.LineGeometry:
        raise NetworkDataError(tr("The road network must be a line layer; this one has {} geometries.")
                               .format(QgsWkbTypes.geometryDisplayString(QgsWkbTypes.geometryType(source.wkbType()))))
    if not settings.default_speed > 0:
        raise NetworkDataError(tr("The default speed must be above 0 km/h (got {}).").format(settings.default_speed))
    fields = source.fields()
    speed_index = direction_index = -1
    if settings.speed_field:
        speed_index = fields.lookupField(settings.speed_field)
        if speed_index < 0:
            raise NetworkDataError(tr("The speed field “{}” is not in the road layer. Pick one of its fields.")
                                   .format(settings.speed_field))
    if settings.direction_field:
        direction_index = fields.lookupField(settings.direction_field)
        if direction_index < 0:
            raise NetworkDataError(tr("The direction field “{}” is not in the road layer. Pick one of its fields.")
                                   .format(settings.direction_field))
    values = {}
    for text, code in ((settings.value_forward, travel.FORWARD), (settings.value_backward, travel.BACKWARD),
                       (settings.value_both, travel.BOTH)):
        if text is not None and str(text) != "":
            values[str(text)] = code
    transform = _transform(source, units, transform_context)
    factor = units.unit_factor
    attributes = [i for i in (speed_index, direction_index) if i >= 0]
    request = QgsFeatureRequest().setSubsetOfAttributes(attributes)
    parts_xy: list[np.ndarray] = []
    part_speed: list[float] = []
    part_direction: list[int] = []
    roads: list[QgsGeometry] = []
    skipped = 0
    total = max(source.featureCount(), 1)
    for count, feature in enumerate(source.getFeatures(request)):
        if feedback is not None and count % 1000 == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(100.0 * count / total)
        geometry = feature.geometry()
        if geometry is None or geometry.isNull() or geometry.isEmpty():
            continue
        if transform is not None or factor != 1.0:
            geometry = _to_metric(geometry, transform, factor)
        speed = settings.default_speed
        if speed_index >= 0:
            value = as_number(feature.attribute(speed_index))
            if value is not None and value > 0:
                speed = value
            else:
                skipped += 1
        direction = settings.default_direction
        if direction_index >= 0:
            value = feature.attribute(direction_index)
            if not is_null(value):
                direction = values.get(str(value), settings.default_direction)
        if keep_roads:
            roads.append(geometry)
        for part in geometry.constParts():
            xy = _line_xy(part)
            if len(xy) < 2:
                continue
            parts_xy.append(xy)
            part_speed.append(speed)
            part_direction.append(direction)
    if not parts_xy:
        raise NetworkDataError(tr("The road network has no lines. Choose a line layer with roads."))
    lengths = np.fromiter((len(xy) for xy in parts_xy), dtype=np.int64, count=len(parts_xy))
    xy = np.concatenate(parts_xy)
    last = np.cumsum(lengths) - 1          # a part's last vertex starts no link
    starts_mask = np.ones(len(xy), dtype=bool)
    starts_mask[last] = False
    a, b = xy[:-1][starts_mask[:-1]], xy[1:][starts_mask[:-1]]
    links = lengths - 1
    minutes = travel.link_minutes(np.hypot(*(b - a).T), np.repeat(np.asarray(part_speed, dtype=float), links))
    forward, backward = travel.direction_minutes(minutes, np.repeat(np.asarray(part_direction), links))
    network = travel.build_network(a, b, forward, backward, settings.tolerance * factor)
    return RoadLayer(network=network, roads=roads, skipped_speeds=skipped)


def _line_xy(part) -> np.ndarray:
    """The (k, 2) vertices of a line part, read from its WKB (curves are segmentized first)."""
    if QgsWkbTypes.flatType(part.wkbType()) != QgsWkbTypes.Type.LineString:
        part = part.segmentize()
        if QgsWkbTypes.flatType(part.wkbType()) != QgsWkbTypes.Type.LineString:
            return np.array([(v.x(), v.y()) for v in part.vertices()], dtype=float).reshape(-1, 2)
    dims = 2 + int(QgsWkbTypes.hasZ(part.wkbType())) + int(QgsWkbTypes.hasM(part.wkbType()))
    wkb = bytes(part.asWkb())
    order = "<" if wkb[0] == 1 else ">"
    return np.frombuffer(wkb, dtype=f"{order}f8", offset=9).reshape(-1, dims)[:, :2].astype(float)


# --- barriers -------------------------------------------------------------------------------

def read_barriers(source, units: Units, transform_context) -> list[QgsGeometry]:
    """Barrier lines or polygons in the units' metric CRS."""
    kind = QgsWkbTypes.geometryType(source.wkbType())
    if kind not in (QgsWkbTypes.GeometryType.LineGeometry, QgsWkbTypes.GeometryType.PolygonGeometry):
        raise NetworkDataError(tr("Barriers must be lines (rivers, ridges) or polygons (restricted areas); this "
                                  "layer has {} geometries.").format(QgsWkbTypes.geometryDisplayString(kind)))
    transform = _transform(source, units, transform_context)
    out = []
    for feature in source.getFeatures(QgsFeatureRequest().setNoAttributes()):
        geometry = feature.geometry()
        if geometry is None or geometry.isNull() or geometry.isEmpty():
            continue
        out.append(_to_metric(geometry, transform, units.unit_factor))
    return out


def cut_by_barriers(units: Units, adjacency: sparse.csr_matrix, barriers: list[QgsGeometry],
                    roads: RoadLayer | None = None, feedback=None) -> tuple[sparse.csr_matrix, int]:
    """Remove adjacency edges that cross a barrier; keep those a road crosses it for.

    An edge (i, j) crosses a barrier when the straight line between the units' representative
    points crosses it, or (polygon units) when most of their shared boundary lies within the snap
    tolerance of it. With ``roads``, the edge is kept when a road crosses the barrier near the
    two units' shared boundary (or near the middle of the line between points). Returns the
    new adjacency and the number of neighbour pairs cut.
    """
    if not barriers:
        return adjacency, 0
    n = units.count
    tolerance = default_snap_tolerance(units.geometries) if units.is_polygon else 1.0
    index = QgsSpatialIndex()
    zones = []
    for k, barrier in enumerate(barriers):
        index.addFeature(k, barrier.boundingBox())
        zones.append(None)
    coo = sparse.triu(adjacency, k=1).tocoo()
    keep = np.ones(len(coo.row), dtype=bool)
    step = max(1, len(coo.row) // 50)
    for e, (i, j) in enumerate(zip(coo.row.tolist(), coo.col.tolist())):
        if feedback is not None and e % step == 0 and feedback.isCanceled():
            return None, 0
        a = QgsPointXY(*units.positions[i])
        b = QgsPointXY(*units.positions[j])
        line = QgsGeometry.fromPolylineXY([a, b])
        box = line.boundingBox()
        shared = None
        if units.is_polygon:
            box.combineExtentWith(units.geometries[i].boundingBox())
            box.combineExtentWith(units.geometries[j].boundingBox())
        candidates = index.intersects(box)
        if not candidates:
            continue
        cut_by = None
        for k in candidates:
            if line.intersects(barriers[k]):
                cut_by = k
                break
            if units.is_polygon:
                if shared is None:
                    shared = _shared_boundary(units.geometries[i], units.geometries[j], tolerance)
                if shared is not None and shared.length() > 0:
                    if zones[k] is None:
                        zones[k] = barriers[k].buffer(2 * tolerance, 4)
                    along = shared.intersection(zones[k])
                    if along is not None and not along.isEmpty() and along.length() >= 0.5 * shared.length():
                        cut_by = k
                        break
        if cut_by is None:
            continue
        if roads is not None and _road_crosses(roads, barriers[cut_by], line, shared, tolerance):
            continue
        keep[e] = False
    rows, cols = coo.row[keep], coo.col[keep]
    data = np.ones(2 * len(rows), dtype=np.int8)
    cut = sparse.coo_matrix((data, (np.concatenate([rows, cols]), np.concatenate([cols, rows]))),
                            shape=(n, n)).tocsr()
    return cut, int((~keep).sum())


def _shared_boundary(first: QgsGeometry, second: QgsGeometry, tolerance: float) -> QgsGeometry | None:
    boundary = QgsGeometry(first.constGet().boundary())
    if boundary.isNull():
        return None
    shared = boundary.intersection(second.buffer(tolerance, 2))
    if shared is None or shared.isEmpty():
        return None
    return shared


def _road_crosses(roads: RoadLayer, barrier: QgsGeometry, line: QgsGeometry, shared: QgsGeometry | None,
                  tolerance: float) -> bool:
    """A road crosses the barrier between the two units: near their shared boundary (polygons), or
    within a quarter of the line's length of its middle (points)."""
    if shared is not None and shared.length() > 0:
        region = shared.buffer(max(4 * tolerance, 1.0), 4)
    else:
        middle = line.interpolate(line.length() / 2)
        region = middle.buffer(max(line.length() / 4, 1.0), 8)
    zone = barrier.intersection(region)
    if zone is None or zone.isEmpty():
        return False
    for k in roads.index().intersects(zone.boundingBox()):
        if roads.roads[k].intersects(zone):
            return True
    return False
