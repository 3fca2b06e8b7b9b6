"""Units as SVG shapes for self-contained pages: path data in a fixed-width viewBox, simplified with
QGIS's own generalisation so that a page stays small (a territory of 500 counties in a few hundred KB).
"""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import QgsGeometry, QgsRectangle, QgsWkbTypes

#: the map's width in SVG user units; heights follow the extent's aspect
MAP_WIDTH = 1000.0
#: simplification tolerance and rounding step, in SVG user units (a fraction of a screen pixel
#: on a page 1,000 px wide: invisible, and it keeps a county to a few dozen vertices)
SIMPLIFY_PIXELS = 0.6
DECIMALS = 1


@dataclass
class SvgMap:
    """``shapes[i]``: the SVG path data of unit i (or ``None`` for a point, drawn at ``points[i]``)."""

    width: float
    height: float
    shapes: list[str | None]
    points: list[tuple[float, float] | None]


def svg_map(geometries: list[QgsGeometry], margin: float = 0.02) -> SvgMap:
    """Path data of each geometry (metric coordinates: x east, y north) in a viewBox
    ``0 0 width height`` with y down, fitted to their common extent with a small margin."""
    # QgsRectangle.setMinimal() is deprecated in QGIS 3.40: start from the first geometry's box
    extent = QgsRectangle(geometries[0].boundingBox()) if geometries else QgsRectangle(0, 0, 1, 1)
    for geometry in geometries[1:]:
        extent.combineExtentWith(geometry.boundingBox())
    span = max(extent.width(), extent.height(), 1e-9)
    pad = span * margin
    extent.grow(pad)
    scale = MAP_WIDTH / max(extent.width(), 1e-9)
    height = round(max(extent.height() * scale, 1.0), DECIMALS)
    left, top = extent.xMinimum(), extent.yMaximum()

    def svg_xy(x: float, y: float) -> tuple[float, float]:
        return round((x - left) * scale, DECIMALS), round((top - y) * scale, DECIMALS)

    shapes: list[str | None] = []
    points: list[tuple[float, float] | None] = []
    tolerance = SIMPLIFY_PIXELS / scale
    for geometry in geometries:
        if QgsWkbTypes.geometryType(geometry.wkbType()) == QgsWkbTypes.GeometryType.PointGeometry:
            point = geometry.centroid().asPoint() if geometry.isMultipart() else geometry.asPoint()
            shapes.append(None)
            points.append(svg_xy(point.x(), point.y()))
            continue
        shapes.append(_path_data(_simplified(geometry, tolerance), svg_xy))
        points.append(None)
    return SvgMap(MAP_WIDTH, height, shapes, points)


def _simplified(geometry: QgsGeometry, tolerance: float) -> QgsGeometry:
    """The geometry generalised by ``tolerance`` (Douglas-Peucker), as a (multi)polygon; the
    original when generalising would make it vanish (a unit smaller than a pixel stays visible)."""
    simple = geometry.simplify(tolerance)
    if simple is None or simple.isNull() or simple.isEmpty():
        return geometry
    if QgsWkbTypes.geometryType(simple.wkbType()) != QgsWkbTypes.GeometryType.PolygonGeometry:
        polygons = [g for g in simple.coerceToType(QgsWkbTypes.Type.MultiPolygon) if not g.isEmpty()]
        return polygons[0] if polygons else geometry
    return simple


def _path_data(geometry: QgsGeometry, svg_xy) -> str:
    """SVG path data: every ring as ``M x y L x y … Z``, repeated rounded vertices dropped."""
    parts = geometry.asMultiPolygon() if geometry.isMultipart() else [geometry.asPolygon()]
    out = []
    for polygon in parts:
        for ring in polygon:
            vertices = []
            previous = None
            for vertex in ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring:
                xy = svg_xy(vertex.x(), vertex.y())
                if xy != previous:
                    vertices.append(f"{xy[0]:g} {xy[1]:g}")
                    previous = xy
            if len(vertices) >= 3:
                out.append("M" + "L".join(vertices) + "Z")
    return "".join(out)
