"""What the panel shows on the map canvas: outlines of units (the units a proposal would move, the
stray pieces of territories), and the map zoomed to a territory or to selected units."""

from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsFeatureRequest, QgsGeometry, QgsRectangle
from qgis.gui import QgsRubberBand
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor

from ..compat import POINT_GEOMETRY, POLYGON_GEOMETRY
from ..layers.signal_links import SignalLinks


def zoom_to_units(canvas, layer, fids: list[int], transform_context) -> None:
    """Zoom ``canvas`` to the units ``fids`` of ``layer`` (with a margin); nothing without units."""
    extent = QgsRectangle()
    if fids:
        for feature in layer.getFeatures(QgsFeatureRequest().setFilterFids(list(fids)).setNoAttributes()):
            if feature.hasGeometry():
                extent.combineExtentWith(feature.geometry().boundingBox())
    if extent.isEmpty() and extent.width() == 0 and extent.height() == 0 and extent.isNull():
        return
    transform = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), transform_context)
    extent = transform.transformBoundingBox(extent)
    extent.scale(1.1)
    canvas.setExtent(extent)
    canvas.refresh()


def select_units(canvas, layer, fids: list[int], zoom: bool = True) -> int:
    """Select units on ``layer`` (QGIS's own selection) and zoom ``canvas`` to them; how many."""
    if layer is None or not fids:
        return 0
    layer.selectByIds([int(f) for f in fids])
    if zoom:
        canvas.zoomToSelected(layer)
        canvas.refresh()
    return len(fids)


class UnitsOutline:
    """Outlines of a set of units drawn over the map: the units a preview would move (magenta), or
    the stray pieces of territories that are not contiguous (red, dashed)."""

    def __init__(self, canvas, colour: QColor | None = None, dashed: bool = False):
        self.canvas = canvas
        self.colour = colour or QColor(255, 0, 255)
        self.dashed = dashed
        self.band: QgsRubberBand | None = None
        self.fids: list[int] = []
        self._layer = None
        # the band holds map coordinates: draw it again when the map's CRS changes
        self._links = SignalLinks([(canvas.destinationCrsChanged, self._redraw)])

    def _redraw(self) -> None:
        if self.band is not None and self._layer is not None:
            layer, fids = self._layer, list(self.fids)
            self.clear()
            self.show(layer, fids)

    def show(self, layer, fids: list[int]) -> None:
        if self.band is not None and layer is self._layer and sorted(int(f) for f in fids) == self.fids:
            return  # already drawn (the pieces are marked again after every change)
        self.clear()
        if layer is None or not fids:
            return
        self._layer = layer
        polygons = layer.geometryType() == POLYGON_GEOMETRY
        band = QgsRubberBand(self.canvas, POLYGON_GEOMETRY if polygons else POINT_GEOMETRY)
        stroke, fill = QColor(self.colour), QColor(self.colour)
        stroke.setAlpha(220)
        fill.setAlpha(50)
        band.setColor(stroke)
        band.setFillColor(fill)
        band.setWidth(3)
        if self.dashed:
            band.setLineStyle(Qt.PenStyle.DashLine)
        request = QgsFeatureRequest().setFilterFids(list(fids)).setNoAttributes()
        geometries = [QgsGeometry(f.geometry()) for f in layer.getFeatures(request) if f.hasGeometry()]
        for geometry in geometries:
            # the band measures itself once at the end: after every geometry, outlining thousands of
            # units (a Rebalance on a national layer) took seconds on the main thread
            band.addGeometry(geometry, layer, False)
        band.updatePosition()
        band.update()
        band.show()
        self.band = band
        self.fids = sorted(int(f) for f in fids)

    def close(self) -> None:
        self.clear()
        self._links.cut()

    def clear(self) -> None:
        if self.band is not None:
            self.band.reset()
            self.canvas.scene().removeItem(self.band)
            self.band = None
        self.fids = []
        self._layer = None
