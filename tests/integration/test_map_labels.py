"""The panel's territory labels on the map: one per territory, and never written over each other
(a label that would overlap one already drawn is left out until the user zooms in)."""

from __future__ import annotations

from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsRectangle
from qgis.gui import QgsMapCanvas
from qgis.PyQt.QtWidgets import QApplication
from territory_planner.ui.map_view import TerritoryLabels


def canvas_showing(extent: QgsRectangle) -> QgsMapCanvas:
    canvas = QgsMapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    canvas.resize(800, 600)
    canvas.show()
    QApplication.processEvents()
    canvas.setExtent(extent)
    canvas.refresh()
    QApplication.processEvents()
    return canvas


def test_labels_that_would_overlap_are_left_out_until_zoomed_in(qgis_app):
    # two small territories 2 km apart (an Atlanta-like metro) and one far away, on a 400 km wide map
    labels = [(QgsPointXY(0, 0), "Territory 01"), (QgsPointXY(2000, 0), "Territory 09\nAnna Rep"),
              (QgsPointXY(150000, 100000), "Territory 05")]
    canvas = canvas_showing(QgsRectangle(-200000, -150000, 200000, 150000))
    item = TerritoryLabels(canvas)
    item._labels = labels
    item.setRect(QgsRectangle(-200000, -150000, 200000, 150000))
    drawn = item.paths()
    assert len(drawn) == 2, "the second metro label would be written over the first"
    boxes = [path.boundingRect() for path in drawn]
    assert not boxes[0].intersects(boxes[1])

    canvas.setExtent(QgsRectangle(-3000, -2250, 5000, 3750))
    canvas.refresh()
    QApplication.processEvents()
    item.setRect(canvas.extent())
    assert len(item.paths()) == 3, "zoomed in, both metro labels fit (the far one is drawn off-screen)"
    canvas.scene().removeItem(item)
    canvas.deleteLater()
