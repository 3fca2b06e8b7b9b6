"""territory:buildterritories on 100,000 account points inside real QGIS (issue 14).

Balance is recomputed here from the output features; contiguity is judged on the points'
neighbour graph as the plugin defines it (Delaunay without the long edges, islands joined to
their nearest unit: ``layers.units.point_adjacency`` and ``core.metrics.plan_figures``). Speed
and memory targets live in bench/scale.py, not here.
"""

from __future__ import annotations

import numpy as np
import pytest
from qgis.core import QgsFeature, QgsFeatureRequest, QgsFields, QgsGeometry, QgsPointXY, QgsVectorLayer
from territory_planner.compat import DOUBLE, INT, make_field

ALG = "territory:buildterritories"
UNITS = 100_000
TERRITORIES = 100


def _accounts(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Accounts clustered like a customer base: 60 towns of Zipf-like sizes over a rural background
    (15 %), in a 1,000 × 600 km area; lognormal visits."""
    towns = 60
    size = 1.0 / rng.permutation(np.arange(1, towns + 1))
    size /= size.sum()
    rural = int(0.15 * UNITS)
    counts = rng.multinomial(UNITS - rural, size)
    centres = rng.uniform((50_000, 50_000), (950_000, 550_000), (towns, 2))
    owner = np.repeat(np.arange(towns), counts)
    spread = (3_000 + 25_000 * np.sqrt(size / size.max()))[owner] * rng.lognormal(0.0, 0.5, owner.size)
    town = centres[owner] + rng.normal(0.0, 1.0, (owner.size, 2)) * spread[:, None]
    xy = np.concatenate([rng.uniform((0, 0), (1_000_000, 600_000), (rural, 2)), town])
    xy = np.round(xy, 2)
    visits = np.round(np.exp(rng.normal(0.0, 0.6, UNITS)) * 12.0, 1)
    return xy, visits


def _layer(xy: np.ndarray, visits: np.ndarray) -> QgsVectorLayer:
    layer = QgsVectorLayer("Point?crs=EPSG:32616", "accounts", "memory")
    fields = QgsFields()
    fields.append(make_field("account", INT))
    fields.append(make_field("visits", DOUBLE))
    layer.dataProvider().addAttributes(fields)
    layer.updateFields()
    features = []
    for i, ((x, y), v) in enumerate(zip(xy.tolist(), visits.tolist())):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        feature.setAttributes([i, v])
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    return layer


@pytest.mark.slow(27)
def test_100000_account_points_balanced_and_contiguous(run_algorithm):
    from territory_planner.core.metrics import plan_figures
    from territory_planner.layers.units import point_adjacency

    xy, visits = _accounts(np.random.default_rng(14))
    layer = _layer(xy, visits)
    result = run_algorithm(ALG, {
        "INPUT": layer, "TERRITORY_COUNT": TERRITORIES, "BALANCE_FIELDS": ["visits"], "TOLERANCE": 5,
        "CONTIGUOUS": True, "RANDOM_SEED": 0, "TERRITORY_FIELD": "territory", "OUTPUT": "memory:units",
        "OUTPUT_TERRITORIES": "memory:territories"})

    out = result["OUTPUT"]
    assert out.featureCount() == UNITS
    names: dict[str, int] = {}
    labels = np.full(UNITS, -1, dtype=np.int64)
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
    for feature in out.getFeatures(request):
        labels[int(feature["account"])] = names.setdefault(str(feature["territory"]), len(names))
    assert np.all(labels >= 0)
    assert len(names) == TERRITORIES

    sums = np.bincount(labels, visits, minlength=TERRITORIES)
    target = visits.sum() / TERRITORIES
    assert np.max(np.abs(sums / target - 1.0)) <= 0.05 + 1e-9

    figures = plan_figures(labels, visits, adjacency=point_adjacency(xy), positions=xy,
                           territory_count=TERRITORIES, tolerance=0.05)
    assert int(figures.noncontiguous) == 0
    assert result["NONCONTIGUOUS"] == 0
    assert result["MAX_DEVIATION"] <= 5.0
