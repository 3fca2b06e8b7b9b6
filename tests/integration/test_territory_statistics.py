"""Territory statistics and report, on the real Georgia and North Carolina counties.

The alignments are built in the tests from the counties' own positions (strips from west to
east), never by the engine, so these tests check the figures and not the engine's quality.
"""

from __future__ import annotations

import base64
import math
import re

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QImage
from territory_planner.compat import STRING, make_field

ALG = "territory:territorystatistics"
TERRITORY = "territory"


# --- helpers ----------------------------------------------------------------------------------


def snapshot(layer: QgsVectorLayer) -> list:
    return sorted(
        (
            f.id(),
            [None if v is None or (hasattr(v, "isNull") and v.isNull()) else v for v in f.attributes()],
            f.geometry().asWkb().data(),
        )
        for f in layer.getFeatures()
    )


def set_territories(layer: QgsVectorLayer, territory_of: dict[int, str | None], field: str = TERRITORY) -> None:
    """Write a territory per feature id into ``field`` (created if missing), straight to the file."""
    if layer.fields().lookupField(field) < 0:
        assert layer.dataProvider().addAttributes([make_field(field, STRING)])
        layer.updateFields()
    index = layer.fields().lookupField(field)
    assert layer.dataProvider().changeAttributeValues({fid: {index: value} for fid, value in territory_of.items()})
    layer.reload()


def strips(layer: QgsVectorLayer, count: int) -> dict[int, str]:
    """Counties cut into ``count`` strips from west to east by their centroids."""
    order = sorted(layer.getFeatures(), key=lambda f: f.geometry().centroid().asPoint().x())
    size = math.ceil(len(order) / count)
    return {f.id(): f"Strip {1 + r // size}" for r, f in enumerate(order)}


def features_by_territory(layer: QgsVectorLayer, field: str = TERRITORY) -> dict[str, list[QgsFeature]]:
    out: dict[str, list[QgsFeature]] = {}
    for feature in layer.getFeatures():
        value = feature[field]
        if value is None or (hasattr(value, "isNull") and value.isNull()) or str(value).strip() == "":
            continue
        out.setdefault(str(value), []).append(feature)
    return out


def output_rows(layer) -> dict[str, QgsFeature]:
    return {f[TERRITORY]: f for f in layer.getFeatures()}


def run_statistics(run_algorithm, layer, tmp_path, **extra):
    parameters = {
        "INPUT": layer,
        "TERRITORY_FIELD": TERRITORY,
        "BALANCE_FIELDS": ["population", "elderly"],
        "TOLERANCE": 5.0,
        "OUTPUT": "memory:",
        "OUTPUT_HTML": str(tmp_path / "report.html"),
    }
    parameters.update(extra)
    return run_algorithm(ALG, parameters)


def representative_point(geometry: QgsGeometry) -> QgsPointXY:
    """The documented centre of a unit: its centroid, or a point inside when the centroid is outside."""
    centroid = geometry.centroid()
    if geometry.contains(centroid):
        return centroid.asPoint()
    return geometry.pointOnSurface().asPoint()


def neighbours(layer: QgsVectorLayer, fid: int) -> set[int]:
    geometry = layer.getFeature(fid).geometry().buffer(1.0, 2)
    return {f.id() for f in layer.getFeatures() if f.id() != fid and f.geometry().intersects(geometry)}


def outline_distance(layer: QgsVectorLayer) -> dict[int, float]:
    """Distance of each county to the state's outer boundary."""
    union = QgsGeometry.unaryUnion([f.geometry() for f in layer.getFeatures()]).buffer(10.0, 2)
    largest = max(union.asGeometryCollection(), key=lambda g: g.area())
    ring = QgsGeometry(largest.constGet().exteriorRing().clone())
    return {f.id(): f.geometry().distance(ring) for f in layer.getFeatures()}


# --- figures ----------------------------------------------------------------------------------


def test_sums_add_up_and_deviations_match_a_hand_computation(run_algorithm, georgia_layer, tmp_path):
    alignment = strips(georgia_layer, 5)
    set_territories(georgia_layer, alignment)
    before = snapshot(georgia_layer)

    result = run_statistics(run_algorithm, georgia_layer, tmp_path)

    rows = output_rows(result["OUTPUT"])
    groups = features_by_territory(georgia_layer)
    assert set(rows) == set(groups) == {f"Strip {k}" for k in range(1, 6)}
    totals = {m: sum(f[m] for f in georgia_layer.getFeatures()) for m in ("population", "elderly")}
    deviations = []
    for measure, total in totals.items():
        assert sum(rows[name][measure] for name in rows) == pytest.approx(total)
        target = total / 5
        for name, members in groups.items():
            hand_sum = sum(f[measure] for f in members)
            hand_deviation = 100.0 * (hand_sum - target) / target
            assert rows[name][measure] == pytest.approx(hand_sum)
            assert rows[name][f"{measure}_tgt"] == pytest.approx(target)
            assert rows[name][f"{measure}_dev"] == pytest.approx(hand_deviation, abs=1e-3)
            deviations.append(hand_deviation)
        sums = np.array([sum(f[measure] for f in members) for members in groups.values()], dtype=float)
        assert result["COEFFICIENT_OF_VARIATION"][measure] == pytest.approx(100 * sums.std() / sums.mean(), abs=1e-3)
    for name, members in groups.items():
        assert rows[name]["units"] == len(members)
    assert result["MAX_DEVIATION"] == pytest.approx(max(abs(d) for d in deviations), abs=1e-3)
    within = sum(all(abs(rows[n][f"{m}_dev"]) <= 5.0 for m in totals) for n in rows)
    assert result["WITHIN_TOLERANCE"] == within
    assert result["UNASSIGNED"] == 0
    assert result["TERRITORY_COUNT"] == 5
    for name, feature in rows.items():
        area = sum(f.geometry().area() for f in groups[name]) / 1e6
        assert feature["area_km2"] == pytest.approx(area, rel=1e-3)
        pp = feature["polsby"]
        assert 0 < pp <= 1
        assert pp == pytest.approx(4 * math.pi * feature["area_km2"] / feature["perim_km"] ** 2, rel=1e-6)
    assert snapshot(georgia_layer) == before


def test_unassigned_units_are_counted_and_left_out_of_every_territory(run_algorithm, georgia_layer, tmp_path):
    alignment = strips(georgia_layer, 4)
    fids = sorted(alignment)
    for fid, value in zip(fids[:3], (None, "", "   ")):
        alignment[fid] = value
    set_territories(georgia_layer, alignment)

    result = run_statistics(run_algorithm, georgia_layer, tmp_path, BALANCE_FIELDS=["population"])

    assert result["UNASSIGNED"] == 3
    rows = output_rows(result["OUTPUT"])
    assert set(rows) == {f"Strip {k}" for k in range(1, 5)}
    unassigned_population = sum(georgia_layer.getFeature(fid)["population"] for fid in fids[:3])
    total = sum(f["population"] for f in georgia_layer.getFeatures())
    assert sum(r["population"] for r in rows.values()) == pytest.approx(total - unassigned_population)
    assert sum(r["units"] for r in rows.values()) == georgia_layer.featureCount() - 3
    # Targets share the whole layer's workload: the unassigned units still need a territory.
    for feature in rows.values():
        assert feature["population_tgt"] == pytest.approx(total / 4)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "3 units have no territory" in html


def test_a_split_territory_and_an_enclave_are_flagged(run_algorithm, georgia_layer, tmp_path):
    alignment = strips(georgia_layer, 5)
    edge = outline_distance(georgia_layer)
    centres = {f.id(): f.geometry().centroid().asPoint() for f in georgia_layer.getFeatures()}
    middle = np.mean([[p.x(), p.y()] for p in centres.values()], axis=0)
    # The enclave: the interior county nearest the middle of the state, its whole ring of neighbours
    # made one territory.
    interior = [fid for fid, d in edge.items() if d > 20000]
    enclave = min(interior, key=lambda fid: math.hypot(centres[fid].x() - middle[0], centres[fid].y() - middle[1]))
    ring = neighbours(georgia_layer, enclave)
    alignment[enclave] = "Enclave"
    for fid in ring:
        alignment[fid] = "Surround"
    # A county on the state border with all its neighbours in one territory is not surrounded.
    corner = min((fid for fid, d in edge.items() if d < 20.0), key=lambda fid: centres[fid].y())
    corner_ring = neighbours(georgia_layer, corner)
    assert not corner_ring & (ring | {enclave})
    alignment[corner] = "Border"
    for fid in corner_ring:
        alignment[fid] = "Around"
    # Two counties far apart in one territory: not contiguous.
    taken = ring | corner_ring | {enclave, corner}
    west = min((fid for fid in centres if fid not in taken), key=lambda fid: centres[fid].x())
    east = max((fid for fid in centres if fid not in taken), key=lambda fid: centres[fid].x())
    alignment[west] = alignment[east] = "Split"
    set_territories(georgia_layer, alignment)

    result = run_statistics(run_algorithm, georgia_layer, tmp_path)

    rows = output_rows(result["OUTPUT"])
    assert rows["Enclave"]["enclave_of"] == "Surround"
    assert rows["Enclave"]["contiguous"] == 1
    assert not rows["Border"]["enclave_of"]
    assert rows["Split"]["contiguous"] == 0
    assert rows["Split"]["parts"] == 2
    assert rows["Split"]["units"] == 2
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Territory “Enclave” is an enclave: it is entirely surrounded by territory “Surround”." in html
    assert "Territory “Split” is not contiguous: it is in 2 parts." in html
    assert "“Border” is an enclave" not in html


# --- reps -------------------------------------------------------------------------------------


def make_reps(rows: list[tuple[str, str | None, QgsPointXY]], crs: str = "EPSG:4326") -> QgsVectorLayer:
    layer = QgsVectorLayer(f"Point?crs={crs}&field=rep:string&field=area:string", "reps", "memory")
    features = []
    for name, territory, point in rows:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(point))
        feature.setAttributes([name, territory])
        features.append(feature)
    assert layer.dataProvider().addFeatures(features)[0]
    return layer


def to_wgs84(layer, point: QgsPointXY) -> QgsPointXY:
    transform = QgsCoordinateTransform(layer.crs(), QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    return transform.transform(point)


def test_rep_distances_match_a_direct_computation(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 3))
    groups = features_by_territory(georgia_layer)
    # Each rep lives in the first county of the next strip, so one of them lives outside their
    # territory; Strip 3's rep sits in Strip 1. A rep for a territory that matches no code is
    # reported, never made a territory of its own.
    homes = {
        name: representative_point(groups[other][0].geometry())
        for name, other in (("Strip 1", "Strip 1"), ("Strip 2", "Strip 2"), ("Strip 3", "Strip 1"))
    }
    rows = [(f"Rep {name}", name, to_wgs84(georgia_layer, point)) for name, point in homes.items()]
    rows.append(("Vacant", "Strip 4", to_wgs84(georgia_layer, homes["Strip 2"])))
    reps = make_reps(rows)
    reps_before = snapshot(reps)

    result = run_statistics(
        run_algorithm, georgia_layer, tmp_path, REPS=reps, REP_NAME_FIELD="rep", REP_TERRITORY_FIELD="area"
    )

    out = output_rows(result["OUTPUT"])
    for name, members in groups.items():
        home = homes[name]
        distances = [
            math.hypot(p.x() - home.x(), p.y() - home.y()) / 1000.0
            for p in (representative_point(f.geometry()) for f in members)
        ]
        assert out[name]["rep"] == f"Rep {name}"
        assert out[name]["rep_avg_km"] == pytest.approx(np.mean(distances), rel=1e-4)
        assert out[name]["rep_max_km"] == pytest.approx(max(distances), rel=1e-4)
    assert "Strip 4" not in out
    assert result["TERRITORY_COUNT"] == 3
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Rep “Rep Strip 3” lives outside their territory “Strip 3” (in Strip 1)." in html
    assert "Rep “Rep Strip 1” lives outside" not in html
    assert "Rep “Vacant” (feature 4) is given the territory “Strip 4”, which matches no territory code." in html
    assert snapshot(reps) == reps_before


def test_reps_belong_to_the_territory_named_like_them_without_a_territory_field(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 2))
    groups = features_by_territory(georgia_layer)
    home = representative_point(groups["Strip 2"][5].geometry())
    reps = make_reps([("Strip 2", None, to_wgs84(georgia_layer, home))])

    result = run_statistics(run_algorithm, georgia_layer, tmp_path, REPS=reps, REP_NAME_FIELD="rep")

    out = output_rows(result["OUTPUT"])
    assert out["Strip 2"]["rep"] == "Strip 2"
    farthest = max(
        math.hypot(p.x() - home.x(), p.y() - home.y())
        for p in (representative_point(f.geometry()) for f in groups["Strip 2"])
    )
    assert out["Strip 2"]["rep_max_km"] == pytest.approx(farthest / 1000.0, rel=1e-4)
    assert not out["Strip 1"]["rep"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Territory “Strip 1” has no rep." in html


def test_a_rep_without_a_location_is_named_and_left_out_of_the_distances(run_algorithm, georgia_layer, tmp_path):
    """The one rep rule (layers/reps.py): a rep without a location keeps their name and territory,
    nothing is measured from their home, and the report and the log say so, naming the rep."""
    set_territories(georgia_layer, strips(georgia_layer, 2))
    groups = features_by_territory(georgia_layer)
    home = representative_point(groups["Strip 1"][0].geometry())
    reps = make_reps([("Ann", "Strip 1", to_wgs84(georgia_layer, home)), ("Bob", "Strip 2", QgsPointXY(0, 0))])
    reps.dataProvider().changeGeometryValues({2: QgsGeometry()})  # Bob's point is lost
    feedback = QgsProcessingFeedback()

    result = run_algorithm(ALG, {
        "INPUT": georgia_layer, "TERRITORY_FIELD": TERRITORY, "BALANCE_FIELDS": ["population"], "REPS": reps,
        "REP_NAME_FIELD": "rep", "REP_TERRITORY_FIELD": "area", "OUTPUT": "memory:",
        "OUTPUT_HTML": str(tmp_path / "report.html")}, feedback=feedback)

    out = output_rows(result["OUTPUT"])
    assert out["Strip 2"]["rep"] == "Bob"
    assert _same(out["Strip 2"]["rep_avg_km"], None) and _same(out["Strip 2"]["rep_max_km"], None)
    assert out["Strip 1"]["rep"] == "Ann" and out["Strip 1"]["rep_avg_km"] > 0
    warning = "Rep “Bob” (feature 2) has no location, so nothing is measured from their home."
    assert warning in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert warning in feedback.textLog()


# --- the report -------------------------------------------------------------------------------


def test_the_report_is_self_contained_with_map_charts_and_every_territory(run_algorithm, georgia_layer, tmp_path):
    alignment = strips(georgia_layer, 6)
    alignment[next(iter(alignment))] = "O'Brien & <Sons>"
    set_territories(georgia_layer, alignment)

    result = run_statistics(run_algorithm, georgia_layer, tmp_path)

    path = tmp_path / "report.html"
    assert result["OUTPUT_HTML"] == str(path)
    html = path.read_text(encoding="utf-8")
    for name in [f"Strip {k}" for k in range(1, 7)]:
        assert name in html
    assert "O&#x27;Brien &amp; &lt;Sons&gt;" in html
    assert "<Sons>" not in html
    # Nothing is fetched from elsewhere: every src is a data URI, no link leaves the page.
    sources = re.findall(r'\ssrc\s*=\s*["\']([^"\']*)', html, flags=re.IGNORECASE)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'\shref\s*=\s*["\']?(https?:|file:|//)', html, flags=re.IGNORECASE)
    assert not re.search(r"<(script|link|iframe)\b", html, flags=re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", html, flags=re.IGNORECASE)
    # The map is a real picture of the territories: a decodable PNG with many colours.
    image = QImage()
    assert image.loadFromData(base64.b64decode(sources[0].split(",", 1)[1]), "PNG")
    assert image.width() >= 400 and image.height() >= 300
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 8
    # One bar chart per measure, with its target line and tolerance band.
    assert html.count("<svg") == 2
    assert "tolerance ±5 %" in html
    assert "Validation" in html


# --- outputs ----------------------------------------------------------------------------------


def test_territories_written_to_geopackage_and_shapefile_carry_the_figures(run_algorithm, nc_layer, tmp_path):
    set_territories(nc_layer, strips(nc_layer, 4))
    common = {
        "INPUT": nc_layer,
        "TERRITORY_FIELD": TERRITORY,
        "BALANCE_FIELDS": ["births_1974", "births_1979"],
        "TOLERANCE": 10.0,
    }
    memory = run_algorithm(ALG, dict(common, OUTPUT="memory:", OUTPUT_HTML=str(tmp_path / "a.html")))["OUTPUT"]
    gpkg = run_algorithm(ALG, dict(common, OUTPUT=str(tmp_path / "t.gpkg"), OUTPUT_HTML=str(tmp_path / "b.html")))
    shp = run_algorithm(ALG, dict(common, OUTPUT=str(tmp_path / "t.shp"), OUTPUT_HTML=str(tmp_path / "c.html")))

    expected = {f[TERRITORY]: f.attributes() for f in memory.getFeatures()}
    names = [f.name() for f in memory.fields()]
    assert "births_1979_tgt" in names
    gpkg_layer = QgsVectorLayer(gpkg["OUTPUT"], "gpkg", "ogr")
    assert gpkg_layer.featureCount() == 4
    for feature in gpkg_layer.getFeatures():
        for name, value in zip(names, expected[feature[TERRITORY]]):
            assert _same(feature[name], value), name
    shp_layer = QgsVectorLayer(shp["OUTPUT"], "shp", "ogr")
    shp_names = [f.name() for f in shp_layer.fields()]
    assert all(len(n) <= 10 for n in shp_names)
    assert len(set(shp_names)) == len(shp_names) == len(names)
    assert "births_tgt" in shp_names or "birth_1974" in shp_names
    for feature in shp_layer.getFeatures():
        values = expected[feature[TERRITORY]]
        for k, name in enumerate(names):
            assert _same(feature.attributes()[k], values[k]), name
        assert feature.geometry().area() > 0


def _same(a, b) -> bool:
    null_a = a is None or (hasattr(a, "isNull") and a.isNull())
    null_b = b is None or (hasattr(b, "isNull") and b.isNull())
    if null_a or null_b:
        return null_a and null_b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
    return str(a) == str(b)


def test_without_balance_fields_the_unit_count_is_balanced(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 7))
    groups = features_by_territory(georgia_layer)

    result = run_statistics(run_algorithm, georgia_layer, tmp_path, BALANCE_FIELDS=[])

    target = georgia_layer.featureCount() / 7
    for name, feature in output_rows(result["OUTPUT"]).items():
        assert feature["units"] == len(groups[name])
        assert feature["units_tgt"] == pytest.approx(target)
        assert feature["units_dev"] == pytest.approx(100 * (len(groups[name]) - target) / target, abs=1e-3)
    assert list(result["COEFFICIENT_OF_VARIATION"]) == ["units"]


# --- bad input --------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_message(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 3))
    reps = make_reps([("Strip 1", None, QgsPointXY(-84.0, 33.0))])
    cases = [
        (dict(TERRITORY_FIELD="nowhere"), "not in the units layer"),
        (dict(BALANCE_FIELDS=["population", TERRITORY]), "both as the territory field and as a balance field"),
        (dict(REPS=reps), "without a rep name field"),
    ]
    for extra, message in cases:
        with pytest.raises(QgsProcessingException, match=message):
            run_statistics(run_algorithm, georgia_layer, tmp_path, **extra)
    set_territories(georgia_layer, {f.id(): None for f in georgia_layer.getFeatures()})
    with pytest.raises(QgsProcessingException, match="No unit has a territory"):
        run_statistics(run_algorithm, georgia_layer, tmp_path)
    set_territories(georgia_layer, strips(georgia_layer, 3))
    index = georgia_layer.fields().lookupField("population")
    georgia_layer.dataProvider().changeAttributeValues({next(georgia_layer.getFeatures()).id(): {index: None}})
    with pytest.raises(QgsProcessingException, match="NULL"):
        run_statistics(run_algorithm, georgia_layer, tmp_path)


def test_a_cancelled_run_stops_with_an_error(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 3))
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException):
        run_algorithm(
            ALG,
            {
                "INPUT": georgia_layer,
                "TERRITORY_FIELD": TERRITORY,
                "OUTPUT": "memory:",
                "OUTPUT_HTML": str(tmp_path / "r.html"),
            },
            feedback=feedback,
        )
    assert not (tmp_path / "r.html").exists()


def test_names_that_differ_only_in_case_or_spaces_and_twin_reps_are_listed(run_algorithm, georgia_layer, tmp_path):
    alignment = strips(georgia_layer, 3)
    fids = sorted(alignment)
    alignment[fids[0]] = "strip  2"
    alignment[fids[1]] = "  Strip 3 "
    set_territories(georgia_layer, alignment)
    groups = features_by_territory(georgia_layer)
    home = representative_point(groups["Strip 1"][0].geometry())
    reps = make_reps(
        [("Ann", "Strip 1", to_wgs84(georgia_layer, home)), ("Ann", "Strip 2", to_wgs84(georgia_layer, home))]
    )

    result = run_statistics(
        run_algorithm, georgia_layer, tmp_path, REPS=reps, REP_NAME_FIELD="rep", REP_TERRITORY_FIELD="area"
    )

    rows = output_rows(result["OUTPUT"])
    # Surrounding spaces are not part of a name; case is, and is reported.
    assert set(rows) == {"Strip 1", "Strip 2", "Strip 3", "strip  2"}
    assert rows["Strip 3"]["units"] == len(groups["Strip 3"]) + len(groups["  Strip 3 "])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Territory names differ only in case or spaces: “Strip 2”, “strip  2”." in html
    assert "2 reps are named “Ann”." in html
    assert "Rep “Ann” lives outside their territory “Strip 2” (in Strip 1)." in html


def test_point_units_are_measured_too(run_algorithm, nc_layer, tmp_path):
    points = QgsVectorLayer(
        "Point?crs=EPSG:4267&field=name:string&field=births:double&field=territory:string", "nc points", "memory"
    )
    alignment = strips(nc_layer, 4)
    features = []
    for county in nc_layer.getFeatures():
        feature = QgsFeature(points.fields())
        feature.setGeometry(county.geometry().pointOnSurface())
        feature.setAttributes([county["name"], float(county["births_1974"]), alignment[county.id()]])
        features.append(feature)
    assert points.dataProvider().addFeatures(features)[0]

    result = run_statistics(run_algorithm, points, tmp_path, BALANCE_FIELDS=["births"])

    rows = output_rows(result["OUTPUT"])
    total = sum(f["births"] for f in points.getFeatures())
    assert sum(r["births"] for r in rows.values()) == pytest.approx(total)
    for row in rows.values():
        assert _same(row["area_km2"], None) and _same(row["polsby"], None)
        assert row.geometry().wkbType() == QgsWkbTypes.Type.MultiPoint
    assert (tmp_path / "report.html").stat().st_size > 10000


def test_progress_is_reported_to_the_end(run_algorithm, georgia_layer, tmp_path):
    set_territories(georgia_layer, strips(georgia_layer, 3))
    feedback = QgsProcessingFeedback()
    progress = []
    feedback.progressChanged.connect(progress.append)

    run_algorithm(
        ALG,
        {
            "INPUT": georgia_layer,
            "TERRITORY_FIELD": TERRITORY,
            "OUTPUT": "memory:",
            "OUTPUT_HTML": str(tmp_path / "r.html"),
        },
        feedback=feedback,
    )

    assert len(progress) > 5
    assert max(progress) == pytest.approx(100)
    assert progress[-1] == pytest.approx(100)


def test_the_territory_layer_is_loaded_coloured_by_territory(
    territory_provider, qgis_new_project, georgia_layer, tmp_path
):
    import processing

    set_territories(georgia_layer, strips(georgia_layer, 4))
    result = processing.runAndLoadResults(
        ALG,
        {
            "INPUT": georgia_layer,
            "TERRITORY_FIELD": TERRITORY,
            "OUTPUT": "memory:",
            "OUTPUT_HTML": str(tmp_path / "r.html"),
        },
    )

    layer = QgsProject.instance().mapLayer(result["OUTPUT"])
    # issue 24: the layer loads over/under target; its territory colours are the named style kept beside it
    assert layer.renderer().type() == "graduatedSymbol"
    assert layer.renderer().classAttribute() == "units_dev"
    assert "territory colours" in layer.styleManager().styles()
    assert layer.styleManager().setCurrentStyle("territory colours")
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol"
    assert renderer.classAttribute() == TERRITORY
    values = {c.value() for c in renderer.categories()}
    assert {f"Strip {k}" for k in range(1, 5)} <= values
