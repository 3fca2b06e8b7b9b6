"""Names that look like markup, SQL or quoting reach every output unharmed and never run (issue 13).

Territory, unit, rep, field and layer names come from users' data. Through the HTML reports they
must be escaped text, never markup; in layers and the dock they must stay exactly as typed; and
the plugin builds no SQL or expression from them (units are selected by feature id).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsRectangle, QgsVectorLayer

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["<script>alert(1)</script>", "'; DROP TABLE x; --", '"quoted"', "<img src=x onerror=alert(2)>"]
FIELD = "terr<b>'\"x"  # a hostile balance field name as well


def hostile_layer() -> QgsVectorLayer:
    layer = QgsVectorLayer("Polygon?crs=EPSG:3857&field=territory:string(80)&field=after:string(80)"
                           "&field=accounts:double", "units <script>alert(3)</script>", "memory")
    from territory_planner.compat import DOUBLE, make_field

    assert layer.dataProvider().addAttributes([make_field(FIELD, DOUBLE)])
    layer.updateFields()
    features = []
    for row in range(2):
        for col in range(4):
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(col * 1000, row * 1000, (col + 1) * 1000,
                                                                  (row + 1) * 1000)))
            before = HOSTILE[col]
            after = HOSTILE[(col + row) % 4]
            feature.setAttributes([before, after, 1.0 + col, 2.0 + row])
            features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    return layer


def assert_escaped(html: str) -> None:
    assert "<script>" not in html and "<img src=x" not in html, "user text became markup"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#x27;; DROP TABLE x; --" in html
    assert "&quot;quoted&quot;" in html
    # every tag in the report is one the report itself writes
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "b", "div", "span",
                    "table", "tr", "th", "td", "ul", "li", "img", "svg", "rect", "line", "text", "g", "path",
                    "circle", "polyline", "polygon"}, tags


def test_statistics_report_escapes_names(run_algorithm, tmp_path):
    layer = hostile_layer()
    html = tmp_path / "report.html"
    results = run_algorithm("territory:territorystatistics", {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["accounts", FIELD],
        "TOLERANCE": 5.0, "OUTPUT": "memory:", "OUTPUT_HTML": str(html)})
    assert_escaped(html.read_text(encoding="utf-8"))
    assert "units &lt;script&gt;alert(3)&lt;/script&gt;" in html.read_text(encoding="utf-8")
    assert sorted(f["territory"] for f in results["OUTPUT"].getFeatures()) == sorted(HOSTILE)


def test_compare_report_escapes_names(run_algorithm, tmp_path):
    layer = hostile_layer()
    html = tmp_path / "compare.html"
    run_algorithm("territory:comparealignments", {
        "INPUT": layer, "FIELD_BEFORE": "territory", "FIELD_AFTER": "after", "BALANCE_FIELDS": ["accounts", FIELD],
        "OUTPUT": "memory:", "OUTPUT_SUMMARY": "memory:", "OUTPUT_HTML": str(html)})
    assert_escaped(html.read_text(encoding="utf-8"))


def test_build_and_rebalance_keep_hostile_names_exactly(run_algorithm, tmp_path):
    layer = hostile_layer()
    out = tmp_path / "rebalanced.gpkg"
    run_algorithm("territory:rebalanceterritories", {
        "INPUT": layer, "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["accounts"], "TOLERANCE": 50.0,
        "OUTPUT": str(out), "OUTPUT_TERRITORIES": "memory:"})
    written = QgsVectorLayer(str(out), "out", "ogr")
    assert set(f["territory"] for f in written.getFeatures()) <= set(HOSTILE)
    assert set(f["previous_territory"] for f in written.getFeatures()) == set(HOSTILE)


def test_no_sql_or_expression_is_built_from_strings():
    """Values never reach SQL or a QGIS expression by string pasting: the plugin has no such call
    at all (filters use feature ids; see STYLE.md). If one is added, it must quote its values. A
    scenario's segment filter is an expression the user typed whole; it is parsed, never assembled
    (those lines say so)."""
    pattern = re.compile(r"QgsExpression\(|setSubsetString\(|setFilterExpression\(|selectByExpression\(|"
                         r"\.execute\(|executeSql\(")
    offenders = []
    for folder in ("algorithms", "layers", "ui", "core"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                constant = re.search(r"\.execute\(\s*\"[^\"{}]*\"\s*\)", line)  # a fixed statement, no value in it
                if pattern.search(line) and "quotedValue" not in line and "quotedColumnRef" not in line \
                        and "user's own expression" not in line and not constant:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders


@pytest.mark.parametrize("secret", ["s3cr3t-pa55"])
def test_a_layer_password_is_not_written_to_the_project_or_the_log(qgis_new_project, tmp_path, secret):
    """The plan stored in the project names the layer by id only; a password in the layer's
    connection never reaches the project's plan entries or the plugin's log."""
    from qgis.core import QgsApplication
    from territory_planner.ui.settings import SCOPE, PlanSettings

    uri = (f"dbname='nowhere' host=127.0.0.1 port=1 user='analyst' password='{secret}' sslmode=disable "
           "key='fid' srid=3857 type=MultiPolygon table=\"public\".\"units\" (geom)")
    layer = QgsVectorLayer(uri, "units", "postgres")
    QgsProject.instance().addMapLayer(layer, False)
    logged: list[str] = []
    log = QgsApplication.messageLog()

    def record(message, tag, level):
        logged.append(message)

    # QGIS's message log lives as long as QGIS: the slot is taken off again whatever happens,
    # or every later test's messages would run it
    log.messageReceived.connect(record)
    try:
        plan = PlanSettings(layer_id=layer.id(), territory_field="territory", measures=["accounts"])
        plan.write(QgsProject.instance())
        path = tmp_path / "plan.qgs"
        assert QgsProject.instance().write(str(path))
    finally:
        log.messageReceived.disconnect(record)
        QgsProject.instance().removeMapLayer(layer.id())
    section = re.search(rf"<{SCOPE}>.*</{SCOPE}>", path.read_text(encoding="utf-8"), re.DOTALL)
    assert section is not None
    assert secret not in section.group(0)
    assert not [m for m in logged if secret in m]
