"""Render docs/travel.png: a travel-time plan on the bundled Helsinki road network, drawn by QGIS.

Builds 6 territories of the 952 OpenStreetMap accounts of central Helsinki with road-network
distance (speeds from ``speed_kmh``, one-way streets from ``oneway``) and the railways as a
barrier, through ``processing.run``, then renders roads, railways and the accounts coloured by
territory with QGIS's own map renderer. Run: ``.venv/bin/python scripts/travel_screenshot.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "resources" / "data" / "helsinki_roads.gpkg"
OUTPUT = ROOT / "docs" / "travel.png"


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT / "scripts"))
    from plugin_path import make_importable

    make_importable()
    sys.path.append("/usr/share/qgis/python/plugins")
    from qgis.core import (
        QgsApplication,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsVectorLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    import processing
    from territory_planner.algorithms.provider import TerritoryProvider
    from territory_planner.layers.style import apply_territory_style

    provider = TerritoryProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    layers = {name: QgsVectorLayer(f"{DATA}|layername={name}", name, "ogr")
              for name in ("roads", "railways", "accounts")}
    result = processing.run("territory:buildterritories", {
        "INPUT": layers["accounts"], "TERRITORY_COUNT": 6, "BALANCE_FIELDS": [], "TOLERANCE": 5, "CONTIGUOUS": True,
        "RANDOM_SEED": 0, "TERRITORY_FIELD": "territory", "DISTANCE": 1, "NETWORK": layers["roads"],
        "SPEED_FIELD": "speed_kmh", "DEFAULT_SPEED": 30, "DIRECTION_FIELD": "oneway", "VALUE_FORWARD": "yes",
        "VALUE_BACKWARD": "-1", "VALUE_BOTH": "no", "DEFAULT_DIRECTION": 2, "NETWORK_TOLERANCE": 0.5,
        "BARRIERS": layers["railways"], "OUTPUT": "memory:units", "OUTPUT_TERRITORIES": "memory:territories"})
    units = result["OUTPUT"]
    names = sorted({f["territory"] for f in units.getFeatures()})
    apply_territory_style(units, "territory", names)
    for category in units.renderer().categories():
        category.symbol().setSize(2.6)
    roads = layers["roads"]
    roads.renderer().symbol().setColor(QColor(150, 150, 150))
    roads.renderer().symbol().setWidth(0.35)
    rails = layers["railways"]
    rails.renderer().symbol().setColor(QColor(40, 40, 40))
    rails.renderer().symbol().setWidth(0.4)

    settings = QgsMapSettings()
    settings.setLayers([units, rails, roads])
    settings.setDestinationCrs(units.crs())
    extent = units.extent()
    extent.scale(1.08)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(900, 1200))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    OUTPUT.parent.mkdir(exist_ok=True)
    job.renderedImage().save(str(OUTPUT), "PNG")
    travel = [f["travel_min"] for f in units.getFeatures() if f["travel_min"] is not None]
    print(f"wrote {OUTPUT}: {len(names)} territories, max deviation {result['MAX_DEVIATION']} %, "
          f"travel_min max {max(travel):.1f} min")
    layers.clear()
    del units, roads, rails, result
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()


if __name__ == "__main__":
    main()
