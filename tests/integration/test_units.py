"""Layers become engine arrays the same way for every algorithm and the dock (layers/units.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsVectorLayer,
)
from scipy.sparse.csgraph import connected_components
from territory_planner.compat import INT, make_field
from territory_planner.layers.units import UnitDataError, read_units

GAL = Path(__file__).resolve().parents[1] / "data" / "nc_counties.gal"


def _read(layer, fields=(), **kwargs):
    return read_units(layer, list(fields), QgsCoordinateTransformContext(), **kwargs)


def _neighbour_pairs_by(layer, units, key):
    value = {f.id(): f[key] for f in layer.getFeatures()}
    coo = units.adjacency.tocoo()
    return {(int(value[int(units.fids[i])]), int(value[int(units.fids[j])])) for i, j in zip(coo.row, coo.col)}


def _reference_pairs():
    lines = GAL.read_text().splitlines()[1:]
    pairs = set()
    for head, tail in zip(lines[0::2], lines[1::2]):
        unit = int(head.split()[0])
        pairs |= {(unit, int(other)) for other in tail.split()}
    return pairs


def test_nc_county_neighbours_match_the_published_contiguity(nc_layer):
    units = _read(nc_layer, ["births_1974"])
    assert units.count == 100
    assert _neighbour_pairs_by(nc_layer, units, "fips") == _reference_pairs()


def test_geographic_layer_is_measured_in_metres(nc_layer):
    units = _read(nc_layer, ["births_1974"])
    assert not units.metric_crs.isGeographic()
    # North Carolina is about 800 km wide; in degrees it would be about 9.
    span = units.positions.max(axis=0) - units.positions.min(axis=0)
    assert 700_000 < span[0] < 900_000
    assert 150_000 < span[1] < 350_000


def test_small_gaps_between_neighbours_are_tolerated(nc_layer):
    """Shrinking every county by 30 m leaves 60 m gaps; neighbours must stay neighbours."""
    units = _read(nc_layer)
    shrunk = QgsVectorLayer("MultiPolygon?crs=" + units.metric_crs.toWkt(), "shrunk", "memory")

    shrunk.dataProvider().addAttributes([make_field("fips", INT)])
    shrunk.updateFields()
    fips = {f.id(): int(f["fips"]) for f in nc_layer.getFeatures()}
    features = []
    for i, geometry in enumerate(units.geometries):
        feature = QgsFeature(shrunk.fields())
        feature.setGeometry(geometry.buffer(-30, 4))
        feature.setAttributes([fips[int(units.fids[i])]])
        features.append(feature)
    shrunk.dataProvider().addFeatures(features)
    gapped = _read(shrunk)
    assert _neighbour_pairs_by(shrunk, gapped, "fips") == _reference_pairs()


def _grid_layer(rows=3, cols=3, values=None, crs="EPSG:3857", extra=()):
    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=w:double&field=name:string", "grid", "memory")
    features = []
    k = 0
    for r in range(rows):
        for c in range(cols):
            feature = QgsFeature(layer.fields())
            feature.setGeometry(_square(c * 1000, r * 1000, 1000))
            feature.setAttributes([values[k] if values is not None else 1.0, f"u{k}"])
            features.append(feature)
            k += 1
    for geometry in extra:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttributes([1.0, f"u{k}"])
        features.append(feature)
        k += 1
    layer.dataProvider().addFeatures(features)
    return layer


def _square(x, y, size):
    return QgsGeometry.fromPolygonXY([[QgsPointXY(x, y), QgsPointXY(x + size, y), QgsPointXY(x + size, y + size),
                                       QgsPointXY(x, y + size), QgsPointXY(x, y)]])


def test_corner_contact_is_not_a_shared_boundary():
    units = _read(_grid_layer(3, 3))
    degree = np.asarray(units.adjacency.sum(axis=1)).ravel()
    # rook neighbours on a 3 × 3 grid: corners 2, edges 3, centre 4
    assert sorted(degree.tolist()) == [2, 2, 2, 2, 3, 3, 3, 3, 4]


def test_island_is_read_as_a_detached_unit():
    island = _square(10_000, 10_000, 500)
    units = _read(_grid_layer(2, 2, extra=[island]))
    count, _ = connected_components(units.adjacency)
    assert count == 2


def test_a_unit_far_larger_than_the_rest_borders_every_unit_along_its_side():
    # a 20 km square unit beside a 20 × 20 grid of 1 km cells (it spans 400 cells of the pairing grid)
    big = QgsGeometry.fromPolygonXY([[QgsPointXY(20_000, 0), QgsPointXY(40_000, 0), QgsPointXY(40_000, 20_000),
                                      QgsPointXY(20_000, 20_000), QgsPointXY(20_000, 0)]])
    units = _read(_grid_layer(20, 20, extra=[big]))
    coo = units.adjacency.tocoo()
    pairs = {(int(i), int(j)) for i, j in zip(coo.row, coo.col)}
    big_index = 400
    assert {j for i, j in pairs if i == big_index} == {r * 20 + 19 for r in range(20)}
    degree = np.asarray(units.adjacency.sum(axis=1)).ravel()
    assert degree[0] == 2 and degree[21] == 4 and degree[19] == 3 and degree[39] == 4


def test_points_use_delaunay_neighbours_without_absurd_edges():
    layer = QgsVectorLayer("Point?crs=EPSG:3857&field=w:double", "pts", "memory")
    rng = np.random.default_rng(3)
    xy = np.vstack([rng.random((60, 2)) * 1000, [[1_000_000.0, 1_000_000.0]]])
    features = []
    for x, y in xy:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        feature.setAttributes([1.0])
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    units = _read(layer, ["w"])
    degree = np.asarray(units.adjacency.sum(axis=1)).ravel()
    assert degree[:60].min() >= 2
    assert degree[60] == 0, "the far-away point must not be joined by a 1,000 km Delaunay edge"


@pytest.mark.parametrize("values, message", [
    ([1, None, 1, 1], "NULL"),
    ([1, -5, 1, 1], "negative"),
])
def test_bad_workloads_name_the_feature(values, message):
    layer = _grid_layer(2, 2, values=values)
    with pytest.raises(UnitDataError, match=message) as caught:
        _read(layer, ["w"])
    assert "Feature 2" in str(caught.value)


def test_non_numeric_balance_field_is_refused():
    with pytest.raises(UnitDataError, match="not numeric"):
        _read(_grid_layer(2, 2), ["name"])


def test_empty_layer_is_refused():
    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=w:double", "empty", "memory")
    with pytest.raises(UnitDataError, match="no features"):
        _read(layer, ["w"])


def test_invalid_geometry_is_repaired_and_reported():
    bowtie = QgsGeometry.fromWkt("POLYGON((3000 0, 4000 1000, 4000 0, 3000 1000, 3000 0))")
    assert not bowtie.isGeosValid()
    units = _read(_grid_layer(1, 3, extra=[bowtie]))
    assert units.repaired == [4]
    assert math.isfinite(units.positions[3][0])


def test_unique_points_are_numpys():
    """layers.units._unique_points (a sort of the two columns) equals np.unique(axis=0) with the
    inverse, duplicates, negative zeros and near-equal points included."""
    from territory_planner.layers.units import _unique_points

    rng = np.random.default_rng(2)
    for trial in range(100):
        n = int(rng.integers(1, 80))
        points = rng.integers(-3, 3, size=(n, 2)).astype(float)
        points[rng.random(n) < 0.3] *= -0.0
        points[rng.random(n) < 0.2] += 1e-12
        unique, inverse = np.unique(points, axis=0, return_inverse=True)
        got, got_inverse = _unique_points(points)
        assert np.array_equal(got, unique), trial
        assert np.array_equal(got_inverse, np.asarray(inverse).reshape(-1)), trial


def test_vertices_gathered_in_blocks_keep_each_geometrys_own(nc_layer):
    """polygon_adjacency gathers the vertices a block of geometries at a time (a worker thread
    then never holds the interpreter for one call over a million arrays): every vertex still
    belongs to its own geometry, across block boundaries and past geometries without vertices."""
    from territory_planner.layers.units import _all_vertices, _vertices

    geometries = [QgsGeometry(f.geometry()) for f in nc_layer.getFeatures()]
    geometries[10:10] = [QgsGeometry(), QgsGeometry()]  # no vertices, inside the second block of 7
    xy, owner = _all_vertices(geometries, block=7)
    for index, geometry in enumerate(geometries):
        assert np.array_equal(xy[owner == index], _vertices(geometry).reshape(-1, 2)), index
    assert len(xy) == len(owner) == sum(len(_vertices(g)) for g in geometries)
    assert np.array_equal(np.unique(owner), [i for i in range(len(geometries)) if i not in (10, 11)])
