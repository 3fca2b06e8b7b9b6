"""Make the README's accounts picture from a real run: accounts over the bundled Georgia counties.

2,400 accounts are placed in the counties in proportion to their population (a fixed random seed),
with a lognormal number of visits each; 3 % of them are overridden to a territory bordering their
county's. ``territory:buildterritories`` builds 8 territories balanced on the accounts' visits
(overrides counted for their territory), then ``territory:assignaccounts`` writes the account list;
the picture shows the counties in their territory's colour, the accounts in theirs, overrides ringed:

    docs/accounts.png

Run: ``.venv/bin/python scripts/accounts_image.py`` (QT_QPA_PLATFORM=offscreen on a server).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from plugin_path import make_importable  # noqa: E402

make_importable()
sys.path.append("/usr/share/qgis/python/plugins")

ACCOUNTS, OVERRIDDEN, TERRITORIES, SEED = 2400, 0.03, 8, 7


def main() -> int:
    from qgis.core import QgsApplication, QgsProcessingFeedback, QgsVectorLayer

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from territory_planner.algorithms.provider import TerritoryProvider

    provider = TerritoryProvider()  # kept alive while the algorithms run
    QgsApplication.processingRegistry().addProvider(provider)
    counties = QgsVectorLayer(f"{ROOT / 'resources/data/georgia_counties.gpkg'}|layername=georgia_counties",
                              "counties", "ogr")
    feedback = QgsProcessingFeedback()
    # a first plan to override accounts against (the accounts' own plan is built below)
    first = processing.run("territory:buildterritories", {
        "INPUT": counties, "TERRITORY_COUNT": TERRITORIES, "BALANCE_FIELDS": ["population"], "TOLERANCE": 10,
        "RANDOM_SEED": 1, "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"},
        feedback=feedback)["OUTPUT"]
    folder = Path(tempfile.mkdtemp(prefix="tp-accounts-"))
    accounts_path = _write_accounts(first, folder / "accounts.gpkg")
    accounts = QgsVectorLayer(f"{accounts_path}|layername=accounts", "accounts", "ogr")
    built = processing.run("territory:buildterritories", {
        "INPUT": first, "TERRITORY_COUNT": TERRITORIES, "BALANCE_FIELDS": ["visits"], "TOLERANCE": 5,
        "TERRITORY_FIELD": "territory", "ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "account_id",
        "OVERRIDE_FIELD": "override", "RANDOM_SEED": 2, "TIME_LIMIT": 30, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"}, feedback=feedback)
    listed = processing.run("territory:assignaccounts", {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "TERRITORIES": built["OUTPUT_TERRITORIES"],
        "ACCOUNTS": accounts, "ACCOUNT_ID_FIELD": "account_id", "ACCOUNT_NAME_FIELD": "name",
        "OVERRIDE_FIELD": "override", "BALANCE_FIELDS": ["visits"], "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_SUMMARY": "TEMPORARY_OUTPUT"}, feedback=feedback)
    print(f"worst deviation {built['MAX_DEVIATION']:.2f} % counting the overrides")
    _picture(built["OUTPUT"], built["OUTPUT_TERRITORIES"], listed["OUTPUT"], ROOT / "docs" / "accounts.png")
    return 0


def _write_accounts(units, path: Path) -> Path:
    """Accounts in the counties in proportion to population; 3 % overridden to a bordering territory."""
    from qgis.core import QgsFields, QgsGeometry, QgsPointXY, QgsWkbTypes

    sys.path.insert(0, str(ROOT / "bench"))
    from common import write_gpkg
    from territory_planner.compat import DOUBLE, STRING, make_field

    rng = np.random.default_rng(SEED)
    features = list(units.getFeatures())
    weight = np.array([f["population"] for f in features], dtype=float)
    county = rng.choice(len(features), ACCOUNTS, p=weight / weight.sum())
    territory = [f["territory"] for f in features]
    bordering: dict[str, set] = {}
    for a in features:
        for b in features:
            if a["territory"] != b["territory"] and a.geometry().touches(b.geometry()):
                bordering.setdefault(a["territory"], set()).add(b["territory"])
    rows = []
    for n, k in enumerate(county.tolist()):
        geometry = features[k].geometry()
        box = geometry.boundingBox()
        while True:
            point = QgsGeometry.fromPointXY(QgsPointXY(rng.uniform(box.xMinimum(), box.xMaximum()),
                                                       rng.uniform(box.yMinimum(), box.yMaximum())))
            if geometry.contains(point):
                break
        override = None
        if rng.random() < OVERRIDDEN:
            choices = sorted(bordering.get(territory[k], ()))
            override = choices[int(rng.integers(len(choices)))] if choices else None
        rows.append((point, [f"A{n:04d}", f"Account {n}", round(float(rng.lognormal(2.3, 0.6)), 1), override]))
    fields = QgsFields()
    for field in (make_field("account_id", STRING, 8), make_field("name", STRING, 40), make_field("visits", DOUBLE),
                  make_field("override", STRING, 40)):
        fields.append(field)
    write_gpkg(path, "accounts", fields, QgsWkbTypes.Type.Point, units.crs().authid(), rows)
    return path


def _picture(units, table, accounts, path: Path) -> None:
    """Counties faded in their territory's colour, territory outlines bold, accounts in their
    territory's colour with overrides ringed (the account list's own style)."""
    from qgis.PyQt.QtCore import Qt
    from territory_planner.algorithms import report
    from territory_planner.layers.account_style import apply_account_style
    from territory_planner.layers.style import apply_territory_style

    colours = {f["territory"]: f["colour"] for f in table.getFeatures()}
    codes = sorted(colours)
    apply_territory_style(units, "territory", codes, colours)
    units.setOpacity(0.45)
    apply_territory_style(table, "territory", codes, colours, outline=True)
    renderer = table.renderer()
    for index, category in enumerate(renderer.categories()):
        symbol = category.symbol().clone()
        symbol.symbolLayer(0).setBrushStyle(Qt.BrushStyle.NoBrush)
        renderer.updateCategorySymbol(index, symbol)
    apply_account_style(accounts, "territory", "\"source\" = 'override'", codes, colours)
    image = report.render_map([accounts, table, units], units.crs(), units.extent(), width=900, height=900)
    image.save(str(path), "PNG")


if __name__ == "__main__":
    sys.exit(main())
