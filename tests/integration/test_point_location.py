"""Which unit a point lies in, for many points: the array path (ray casting over simple units) and the
GEOS path (units with many edges) give GEOS's own answer, point by point, boundaries, holes,
multipolygons and overlaps included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qgis.core import QgsGeometry, QgsPointXY
from territory_planner.layers import point_location
from territory_planner.layers.point_location import units_at_many


def square(x: float, y: float, side: float = 10.0) -> QgsGeometry:
    return QgsGeometry.fromPolygonXY([[QgsPointXY(x, y), QgsPointXY(x + side, y), QgsPointXY(x + side, y + side),
                                       QgsPointXY(x, y + side), QgsPointXY(x, y)]])


def geometries() -> list[QgsGeometry]:
    units = [square(10.0 * col, 10.0 * row) for row in range(4) for col in range(4)]  # 0…15, a 4 × 4 grid
    # a ring with a hole, east of the grid
    ring = [QgsPointXY(60, 12), QgsPointXY(76, 12), QgsPointXY(76, 28), QgsPointXY(60, 28), QgsPointXY(60, 12)]
    hole = [QgsPointXY(64, 16), QgsPointXY(72, 16), QgsPointXY(72, 24), QgsPointXY(64, 24), QgsPointXY(64, 16)]
    units.append(QgsGeometry.fromPolygonXY([ring, hole]))
    # two islands as one unit, east of the grid
    units.append(QgsGeometry.fromMultiPolygonXY([[[QgsPointXY(45, 0), QgsPointXY(50, 0), QgsPointXY(50, 5),
                                                   QgsPointXY(45, 5), QgsPointXY(45, 0)]],
                                                 [[QgsPointXY(45, 30), QgsPointXY(50, 30), QgsPointXY(50, 40),
                                                   QgsPointXY(45, 40), QgsPointXY(45, 30)]]]))
    # a disc of 400 edges (decided by GEOS) overlapping cells 3 and 7
    disc = [QgsPointXY(40 + 6 * math.cos(2 * math.pi * k / 400), 12 + 6 * math.sin(2 * math.pi * k / 400))
            for k in range(400)]
    units.append(QgsGeometry.fromPolygonXY([disc + disc[:1]]))
    # a triangle with sloping edges, over cells 0 and 1
    units.append(QgsGeometry.fromPolygonXY([[QgsPointXY(2, 1), QgsPointXY(17, 4), QgsPointXY(5, 9),
                                             QgsPointXY(2, 1)]]))
    return units


def geos_answer(units: list[QgsGeometry], points: np.ndarray) -> np.ndarray:
    """The rule by GEOS alone: the first unit holding the point inside, else the first it touches."""
    out = []
    for x, y in points.tolist():
        point = QgsGeometry.fromPointXY(QgsPointXY(x, y))
        inside = [i for i, g in enumerate(units) if g.contains(point)]
        touching = [i for i, g in enumerate(units) if g.intersects(point)]
        out.append(inside[0] if inside else touching[0] if touching else -1)
    return np.asarray(out, dtype=np.int64)


@pytest.mark.parametrize("simple_edges", [point_location.SIMPLE_EDGES, 0])
def test_many_points_land_where_geos_puts_them(monkeypatch, simple_edges):
    # simple_edges 0: every unit through GEOS (the path of units with many edges)
    monkeypatch.setattr(point_location, "SIMPLE_EDGES", simple_edges)
    monkeypatch.setattr(point_location, "EDGE_TESTS_AT_ONCE", 500)  # many blocks
    units = geometries()
    rng = np.random.default_rng(7)
    scattered = rng.uniform(-5, 80, size=(2000, 2))
    # on grid lines and corners, in the hole and on its edge, on the triangle's sloping edge, outside
    special = np.array([[10, 10], [10, 5], [0, 0], [40, 40], [68, 20], [64, 20], [72, 24], [62, 14],
                        [17, 4], [2 + 15 * 0.4, 1 + 3 * 0.4], [47.5, 5], [45, 35], [100, 100], [50, 20], [34, 12]],
                       dtype=float)
    points = np.vstack([scattered, special, np.round(scattered[:300])])
    found = units_at_many(units, points)
    expected = geos_answer(units, points)
    wrong = np.flatnonzero(found != expected)
    assert wrong.size == 0, [(points[k].tolist(), int(found[k]), int(expected[k])) for k in wrong[:10]]
    at = len(scattered)
    assert found[at + 4:at + 8].tolist() == [-1, 16, 16, 16], "the hole is no part of its unit; its edge is"
    assert (found == 17).any() and (found == 18).any() and (found == 19).any()


def test_a_cancelled_location_gives_none():
    class Cancelled:
        def isCanceled(self):
            return True

        def setProgress(self, value):
            pass

    assert units_at_many(geometries(), np.array([[1.0, 1.0]] * 10), Cancelled()) is None
