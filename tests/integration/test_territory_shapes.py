"""layers/shapes.py: each territory dissolved once and measured once (area, perimeter,
Polsby–Popper), the layer's outer edge, the unit at a point, and a repaired polygon that still
gives its territory a shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qgis.core import QgsCoordinateTransformContext, QgsFeature, QgsGeometry, QgsRectangle, QgsVectorLayer


def read(layer):
    from territory_planner.layers.shapes import read_unit_geometries
    from territory_planner.layers.units import read_units

    units = read_units(layer, [], QgsCoordinateTransformContext())
    return units, read_unit_geometries(layer, units)


def dissolve(layer, labels, count):
    from territory_planner.layers.shapes import TerritoryShapes

    units, geometries = read(layer)
    shapes = TerritoryShapes.dissolve(units, geometries, labels(units), count, layer.crs(),
                                      QgsCoordinateTransformContext())
    return units, shapes


def grid(columns: int, rows: int, crs: str = "EPSG:3857", bowtie: int | None = None) -> QgsVectorLayer:
    """Squares of 1 km; ``bowtie``: that square drawn as a self-crossing ring instead."""
    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=id:integer", "grid", "memory")
    features = []
    for row in range(rows):
        for col in range(columns):
            n = row * columns + col
            x, y = col * 1000.0, row * 1000.0
            feature = QgsFeature(layer.fields())
            if n == bowtie:
                feature.setGeometry(QgsGeometry.fromWkt(
                    f"POLYGON(({x} {y},{x + 1000} {y + 1000},{x + 1000} {y},{x} {y + 1000},{x} {y}))"))
            else:
                feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(x, y, x + 1000, y + 1000)))
            feature.setAttributes([n])
            features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    return layer


def test_a_territory_is_measured_on_its_one_dissolved_shape(georgia_layer):
    units, shapes = dissolve(georgia_layer, lambda u: (np.arange(u.count) % 3).astype(np.int64), 3)
    for k in range(3):
        members = [units.geometries[i] for i in range(units.count) if i % 3 == k]
        union = QgsGeometry.unaryUnion(members)
        assert shapes.area_km2[k] == pytest.approx(union.area() / 1e6, rel=1e-6)
        assert shapes.perimeter_km[k] == pytest.approx(union.length() / 1e3, rel=1e-6)
        assert shapes.polsby_popper[k] == pytest.approx(
            4 * math.pi * shapes.area_km2[k] / shapes.perimeter_km[k] ** 2, rel=1e-9)
        assert shapes.geometry[k].isMultipart() and shapes.geometry[k].area() == pytest.approx(union.area(), rel=1e-6)


def test_an_empty_territory_has_no_shape_and_points_have_no_area():
    layer = grid(3, 1)
    _, shapes = dissolve(layer, lambda u: np.zeros(u.count, dtype=np.int64), 2)
    assert shapes.geometry[1].isNull() and shapes.area_km2[1] == 0.0 and shapes.polsby_popper[1] is None
    assert shapes.area_km2[0] == pytest.approx(3.0)
    assert shapes.polsby_popper[0] == pytest.approx(4 * math.pi * 3.0 / 8.0 ** 2)
    points = QgsVectorLayer("Point?crs=EPSG:3857", "points", "memory")
    for x in (0.0, 1000.0, 0.0):
        feature = QgsFeature(points.fields())
        feature.setGeometry(QgsGeometry.fromWkt(f"POINT({x} {x / 2})"))
        points.dataProvider().addFeatures([feature])
    _, shapes = dissolve(points, lambda u: np.array([0, 0, 1]), 2)
    assert shapes.area_km2 == [None, None] and shapes.polsby_popper == [None, None]
    assert shapes.geometry[0].constGet().partCount() == 2


def test_a_repaired_polygon_still_gives_its_territory_a_shape():
    layer = grid(3, 1, bowtie=1)
    units, shapes = dissolve(layer, lambda u: np.zeros(u.count, dtype=np.int64), 1)
    assert len(units.repaired) == 1
    assert not shapes.geometry[0].isNull() and not shapes.geometry[0].isEmpty()
    assert shapes.area_km2[0] == pytest.approx(2.5)  # two squares and the bowtie's two triangles


def test_edge_units_and_the_unit_at_a_point():
    from territory_planner.layers.shapes import edge_units, nearest_unit, units_at

    layer = grid(3, 3)
    units, shapes = dissolve(layer, lambda u: np.zeros(u.count, dtype=np.int64), 1)
    centre = int(np.argmin(np.hypot(units.positions[:, 0] - 1500, units.positions[:, 1] - 1500)))
    edge = shapes.edge_units(units, np.zeros(units.count, dtype=np.int64))
    assert not edge[centre] and edge.sum() == 8
    assert np.array_equal(edge, edge_units(units))
    inside = units_at(units, [[1500.0, 1500.0], [99_999.0, 0.0]])
    assert inside[0] == centre and inside[1] == -1
    assert nearest_unit(units, [99_999.0, 0.0]) in (2, 8)
