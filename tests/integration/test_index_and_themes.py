"""The workload index as a measure of the units, and the themed renderers (over/under target,
untapped potential), on small layers whose figures are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer


def square_layer(rows: list[dict]) -> QgsVectorLayer:
    """A strip of 10 km squares in UTM 16N, one per row, with accounts, sales and potential."""
    layer = QgsVectorLayer("Polygon?crs=EPSG:26916&field=name:string&field=territory:string"
                           "&field=accounts:double&field=sales:double&field=potential:double", "units", "memory")
    features = []
    for k, row in enumerate(rows):
        feature = QgsFeature(layer.fields())
        x = 700_000.0 + 10_000.0 * k
        points = [QgsPointXY(x, 3_500_000), QgsPointXY(x + 10_000, 3_500_000), QgsPointXY(x + 10_000, 3_510_000),
                  QgsPointXY(x, 3_510_000)]
        feature.setGeometry(QgsGeometry.fromPolygonXY([points]))
        for name, value in row.items():
            feature[name] = value
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


ROWS = [
    {"name": "a", "territory": "T1", "accounts": 1.0, "sales": 10.0, "potential": 0.0},
    {"name": "b", "territory": "T1", "accounts": 1.0, "sales": 0.0, "potential": 30.0},
    {"name": "c", "territory": "T2", "accounts": 2.0, "sales": 30.0, "potential": 10.0},
]


def test_the_index_is_one_more_measure_scaled_to_1000(qgis_app):
    from qgis.core import QgsCoordinateTransformContext
    from territory_planner.core.plan.index import parse_index_weights
    from territory_planner.layers.unit_values import with_index
    from territory_planner.layers.units import read_units

    layer = square_layer(ROWS)
    units = read_units(layer, ["accounts"], QgsCoordinateTransformContext())
    indexed = with_index(units, layer, parse_index_weights("accounts:0.5,potential:0.5"), 2)
    assert indexed.measure_names == ["accounts", "index"]
    # by hand: 2,000 × (0.5 × accounts share + 0.5 × potential share)
    expected = 2000 * (0.5 * np.array([0.25, 0.25, 0.5]) + 0.5 * np.array([0.0, 0.75, 0.25]))
    by_fid = {int(fid): i for i, fid in enumerate(indexed.fids)}
    got = [indexed.workloads[by_fid[f.id()], 1] for f in layer.getFeatures()]
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(indexed.workloads[:, 0], units.workloads[:, 0])
    assert units.measure_names == ["accounts"], "the units read are left as they were"


@pytest.mark.parametrize("text, value, message", [
    ("visits:1", None, r"“visits”, which is not in"),
    ("name:1", None, r"“name” is not numeric"),
    ("potential:1", None, r"Feature \d+ has no value \(NULL\) in the index weight field “potential”"),
    ("potential:1", -4.0, r"negative or invalid value \(-4.0\) in the index weight field “potential”"),
])
def test_bad_index_inputs_name_the_field(qgis_app, text, value, message):
    from qgis.core import QgsCoordinateTransformContext
    from territory_planner.core.plan.index import IndexWeightsError, parse_index_weights
    from territory_planner.layers.unit_values import with_index
    from territory_planner.layers.units import UnitDataError, read_units

    rows = [dict(r) for r in ROWS]
    rows[1]["potential"] = value
    layer = square_layer(rows)
    units = read_units(layer, [], QgsCoordinateTransformContext())
    with pytest.raises((UnitDataError, IndexWeightsError), match=message):
        with_index(units, layer, parse_index_weights(text), 2)


def test_over_under_renderer_is_centred_on_the_target(qgis_app):
    from territory_planner.layers.thematic import DIVERGING, OverUnderScale, over_under_renderer

    layer = QgsVectorLayer("Polygon?field=index:double", "t", "memory")
    features = []
    for value in (700.0, 980.0, 1000.0, 1040.0, 1500.0):
        feature = QgsFeature(layer.fields())
        feature["index"] = value
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    scale = OverUnderScale.fit([700, 980, 1000, 1040, 1500], centre=1000, band=50)
    assert scale.reach == 500
    limits = scale.breaks()
    assert limits[3] == 950 and limits[4] == 1050 and limits[0] == 500 and limits[-1] == 1500
    assert sum(limits) / len(limits) == pytest.approx(1000), "symmetric about the target"
    renderer = over_under_renderer(layer, "index", scale)
    assert renderer.type() == "graduatedSymbol" and renderer.classAttribute() == "index"
    middle = renderer.ranges()[3]
    assert (middle.lowerValue(), middle.upperValue()) == (950, 1050)
    assert middle.symbol().color().name() == DIVERGING[3]
    assert scale.colour_of(1040).name() == DIVERGING[3]
    assert scale.colour_of(1500).name() == DIVERGING[6] and scale.colour_of(700).name() == DIVERGING[1]


def test_untapped_renderer_uses_quantiles(qgis_app):
    from territory_planner.layers.thematic import SEQUENTIAL, untapped_renderer

    layer = QgsVectorLayer("Point?field=untapped:double", "o", "memory")
    features = []
    for value in range(1, 101):
        feature = QgsFeature(layer.fields())
        feature["untapped"] = float(value)
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    renderer = untapped_renderer(layer, "untapped")
    ranges = renderer.ranges()
    assert len(ranges) == 5
    assert ranges[0].lowerValue() == 1 and ranges[-1].upperValue() == 100
    assert ranges[0].symbol().color().name() == SEQUENTIAL[0] and ranges[-1].symbol().color().name() == SEQUENTIAL[-1]
