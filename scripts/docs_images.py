"""Make the README's pictures from real runs: the labelled plan map and a rep packet page.

Builds 12 territories on the bundled Georgia counties (population and elderly, ±10 %), names them
and places a rep in each in the territory table, moves three counties to make a previous
alignment, then writes the packets with ``territory:territorypackets`` and renders with QGIS and
poppler's ``pdftoppm``:

    docs/plan_map.png     the plan as Build loads it: table colours, bold outlines, name and rep labels
    docs/packet.png       page 1 of the packet of the territory that gained and lost counties
    docs/overview.png     the manager's overview.pdf

Then the analytics of issue 24 on the same plan, with an illustrative sales potential and last
year's sales per county (made up from the population, see :func:`_add_sales`): goals from the
potential (``territory:setgoals``), and Territory statistics with the workload index, sales and
potential:

    docs/over_under.png   the statistics' territories as they load: over/under the index's 1,000
    docs/performance.png  the start of the report's performance section, drawn by headless Chromium

Run: ``.venv/bin/python scripts/docs_images.py`` (QT_QPA_PLATFORM=offscreen on a server);
``… docs_images.py analytics`` makes the analytics pictures only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from plugin_path import make_importable  # noqa: E402

make_importable()
sys.path.append("/usr/share/qgis/python/plugins")

REPS = ["A. Jones", "B. Smith", "C. Brown", "D. Lee", "E. Garcia", "F. Miller", "G. Davis", "H. Wilson",
        "I. Moore", "J. Taylor", "K. Thomas", "L. White"]


def main() -> int:
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsFeature,
        QgsGeometry,
        QgsProcessingFeedback,
        QgsVectorLayer,
    )
    from territory_planner.compat import STRING, make_field

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from territory_planner.algorithms.provider import TerritoryProvider

    provider = TerritoryProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    docs = ROOT / "docs"
    work = Path(tempfile.mkdtemp(prefix="tp-docs-"))
    source = QgsVectorLayer(f"{ROOT / 'resources/data/georgia_counties.gpkg'}|layername=georgia_counties",
                            "georgia", "ogr")
    feedback = QgsProcessingFeedback()
    built = processing.run("territory:buildterritories", {
        "INPUT": source, "TERRITORY_COUNT": 12, "BALANCE_FIELDS": ["population", "elderly"], "TOLERANCE": 10,
        "RANDOM_SEED": 4, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"},
        feedback=feedback)
    units, table = built["OUTPUT"], built["OUTPUT_TERRITORIES"]

    # the manager names the territories; the heaviest county of each is its rep's home
    members: dict[str, list] = {}
    for feature in units.getFeatures():
        members.setdefault(feature["territory"], []).append(feature)
    by_size = sorted(members, key=lambda code: -max(f["population"] for f in members[code]))
    # Fulton's territory is "Atlanta Metro"; the others are regions lettered from north to south
    north_first = sorted(by_size[1:], key=lambda code: -max(f.geometry().centroid().asPoint().y()
                                                            for f in members[code]))
    name_of = {by_size[0]: "Atlanta Metro"}
    name_of.update({code: f"Region {chr(66 + n)}" for n, code in enumerate(north_first)})
    rep_of = {code: REPS[n] for n, code in enumerate(by_size)}
    name, rep = table.fields().lookupField("name"), table.fields().lookupField("rep")
    table.dataProvider().changeAttributeValues(
        {f.id(): {name: name_of[f["territory"]], rep: rep_of[f["territory"]]} for f in table.getFeatures()})
    reps = QgsVectorLayer("Point", "reps", "memory")
    reps.setCrs(QgsCoordinateReferenceSystem(units.crs()))
    reps.dataProvider().addAttributes([make_field("name", STRING), make_field("territory", STRING)])
    reps.updateFields()
    homes = []
    for code, features in members.items():
        home = max(features, key=lambda f: f["population"])
        point = QgsFeature(reps.fields())
        point.setGeometry(QgsGeometry.fromPointXY(home.geometry().pointOnSurface().asPoint()))
        point.setAttributes([rep_of[code], code])
        homes.append(point)
    reps.dataProvider().addFeatures(homes)

    # a previous alignment: the showcase territory gained two counties and lost one
    showcase = max((code for code in members if len(members[code]) <= 22), key=lambda code: len(members[code]))
    units.dataProvider().addAttributes([make_field("before", STRING)])
    units.updateFields()
    before = units.fields().lookupField("before")
    values = {f.id(): {before: f["territory"]} for f in units.getFeatures()}
    everything = list(units.getFeatures())
    gained = lost = 0
    for feature in everything:
        neighbour = next((f for f in everything if f["territory"] != feature["territory"]
                          and f.geometry().touches(feature.geometry())), None)
        if neighbour is None:
            continue
        if feature["territory"] == showcase and gained < 2:
            values[feature.id()] = {before: neighbour["territory"]}
            gained += 1
        elif neighbour["territory"] == showcase and feature["territory"] != showcase and lost < 1:
            values[feature.id()] = {before: showcase}
            lost += 1
    units.dataProvider().changeAttributeValues(values)

    analytics_only = sys.argv[1:] == ["analytics"]
    if analytics_only:
        _analytics_images(units, table, docs, work, feedback)
        shutil.rmtree(work, ignore_errors=True)
        return 0

    folder = work / "packets"
    processing.run("territory:territorypackets", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table,
        "BALANCE_FIELDS": ["population", "elderly"], "UNIT_NAME_FIELD": "fips", "FIELD_BEFORE": "before",
        "REPS": reps, "REP_NAME_FIELD": "name", "OUTPUT_FOLDER": str(folder)}, feedback=feedback)
    packet = next(folder.glob(f"territory_{showcase.replace(' ', '_')}.pdf"))
    _render(packet, docs / "packet.png", 80)
    _render(folder / "overview.pdf", docs / "overview.png", 70)
    _plan_map(units, table, reps, docs / "plan_map.png")
    _analytics_images(units, table, docs, work, feedback)
    shutil.rmtree(work, ignore_errors=True)
    print("wrote", ", ".join(str(p.relative_to(ROOT)) for p in sorted(docs.glob("*.png"))))
    return 0


def _render(pdf: Path, png: Path, dpi: int) -> None:
    stem = png.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-f", "1", "-l", "1", str(pdf), str(stem)],
                   check=True)


def _plan_map(units, table, reps, path: Path) -> None:
    """The plan drawn as Build's outputs load: units and territory outlines in the table colours,
    bold outlines, name and rep labels, rep homes as stars."""
    from qgis.core import QgsSimpleMarkerSymbolLayerBase, QgsSymbol
    from qgis.PyQt.QtGui import QColor
    from territory_planner.algorithms import report
    from territory_planner.layers.style import apply_territory_style, label_territories

    colours = {f["territory"]: f["colour"] for f in table.getFeatures()}
    codes = sorted(colours)
    apply_territory_style(units, "territory", codes, colours)
    apply_territory_style(table, "territory", codes, colours, outline=True)
    renderer = table.renderer()
    for index, category in enumerate(renderer.categories()):  # outlines over the counties
        symbol = category.symbol().clone()
        symbol.symbolLayer(0).setBrushStyle(_no_brush())
        renderer.updateCategorySymbol(index, symbol)
    label_territories(table, "name", "rep", "territory")
    star = QgsSymbol.defaultSymbol(reps.geometryType())
    star.setColor(QColor(20, 20, 20))
    star.setSize(3.6)
    star.symbolLayer(0).setShape(QgsSimpleMarkerSymbolLayerBase.Shape.Star)
    reps.renderer().setSymbol(star)
    image = report.render_map([reps, table, units], units.crs(), units.extent(), width=900, height=900)
    image.save(str(path), "PNG")


def _add_sales(units) -> None:
    """An illustrative sales potential and last year's sales per county: the potential is the
    population times a spend per head that varies from county to county, and sales reach 6 % to
    24 % of it, more in the north than in the south (a fixed random seed: the same every run)."""
    import numpy as np
    from territory_planner.compat import DOUBLE, make_field

    units.dataProvider().addAttributes([make_field("potential", DOUBLE), make_field("sales", DOUBLE)])
    units.updateFields()
    features = sorted(units.getFeatures(), key=lambda f: f.id())
    rng = np.random.default_rng(24)
    north = np.array([f.geometry().centroid().asPoint().y() for f in features])
    north = (north - north.min()) / (north.max() - north.min())
    spend = rng.uniform(60.0, 140.0, len(features))
    rate = np.clip(0.06 + 0.12 * north + rng.normal(0.0, 0.03, len(features)), 0.02, 0.4)
    potential, sales = units.fields().lookupField("potential"), units.fields().lookupField("sales")
    values = {}
    for feature, per_head, share in zip(features, spend, rate):
        amount = round(float(feature["population"]) * float(per_head), -2)
        values[feature.id()] = {potential: amount, sales: round(amount * float(share), -2)}
    units.dataProvider().changeAttributeValues(values)


def _analytics_images(units, table, docs: Path, work: Path, feedback) -> None:
    """Goals from the potential, then statistics on the index with sales and potential: the
    over/under map as the output loads, and the report's performance section."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProject

    _add_sales(units)
    goals = processing.run("territory:setgoals", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table, "TOTAL_GOAL": 90_000_000,
        "BASIS": "potential", "HISTORY_FIELD": "sales", "HISTORY_WEIGHT": 0.3, "FLOOR": 80, "CAP": 125,
        "ROUND_TO": 10_000, "OUTPUT": "TEMPORARY_OUTPUT"}, feedback=feedback)["OUTPUT"]
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    html = work / "statistics.html"
    result = processing.runAndLoadResults("territory:territorystatistics", {
        "INPUT": units, "TERRITORY_FIELD": "territory", "INDEX_WEIGHTS": "population:0.6,sales:0.1,potential:0.3",
        "TOLERANCE": 10, "TERRITORIES": goals, "SALES_FIELD": "sales", "POTENTIAL_FIELD": "potential",
        "UNIT_NAME_FIELD": "fips", "OPPORTUNITY_COUNT": 10, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_HTML": str(html), "OUTPUT_OPPORTUNITIES": "TEMPORARY_OUTPUT"}, context=context, feedback=feedback)
    from territory_planner.algorithms import report
    from territory_planner.algorithms.report_maps import with_legend

    territories = project.mapLayer(result["OUTPUT"])
    image = report.render_map([territories], territories.crs(), territories.extent(), width=900, height=900)
    with_legend(image, territories.renderer()).save(str(docs / "over_under.png"), "PNG")
    text = html.read_text(encoding="utf-8")
    section = text.split("<h2>Performance</h2>", 1)[1].split("<h3>Territories below the threshold</h3>", 1)[0]
    page = work / "performance.html"
    page.write_text(report.document("Territory report", "<h2>Performance</h2>" + section), encoding="utf-8")
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={docs / 'performance.png'}", "--window-size=1000,1500", page.as_uri()],
                   check=True, capture_output=True)


def _no_brush():
    from qgis.PyQt.QtCore import Qt

    return Qt.BrushStyle.NoBrush


if __name__ == "__main__":
    sys.exit(main())
