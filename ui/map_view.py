"""What the panel shows on the map canvas: outlines of units (the units a proposal would move, the
stray pieces of territories), and the map zoomed to a territory or to selected units."""

from __future__ import annotations

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsRectangle,
)
from qgis.gui import QgsMapCanvas, QgsMapCanvasItem, QgsRubberBand
from qgis.PyQt.QtCore import QPointF, Qt
from qgis.PyQt.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from qgis.PyQt.QtWidgets import QApplication

from ..compat import POINT_GEOMETRY, POLYGON_GEOMETRY
from ..layers.signal_links import SignalLinks


def stop_map_drawing() -> None:
    """Stop every map canvas drawing now (returns once their drawing threads have ended)."""
    for widget in QApplication.allWidgets():
        if isinstance(widget, QgsMapCanvas):
            widget.stopRendering()


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


#: Pixels kept free around a territory label: a label closer than this to one already drawn is left out.
LABEL_GAP = 2.0


class TerritoryLabels(QgsMapCanvasItem):
    """Each territory's name and rep, written once per territory on the map over the panel's layer
    (the units layer has one feature per unit, so its own labels would repeat them), at the unit
    nearest the territory's centre."""

    def __init__(self, canvas):
        super().__init__(canvas)
        self._canvas = canvas
        self._labels: list[tuple[QgsPointXY, str]] = []  # in the canvas's CRS
        self.setZValue(50)

    def show(self, service) -> None:
        """The labels of ``service``'s plan as it is now (none without one)."""
        self._labels = []
        if service.is_bound and service.positions is not None and service.territory_names:
            self._labels = self._placed(service)
        if self._labels:
            extent = QgsRectangle()
            for point, _text in self._labels:
                extent.combineExtentWith(point.x(), point.y())
            extent.grow(max(extent.width(), extent.height(), 1.0))
            self.setRect(extent)
        self.setVisible(bool(self._labels))
        self.update()

    def _placed(self, service) -> list[tuple[QgsPointXY, str]]:
        labels = service.ledger.plan_labels()
        count = len(service.territory_names)
        assigned = labels >= 0
        if not assigned.any():
            return []
        counts = np.bincount(labels[assigned], minlength=count)
        centres = np.column_stack([np.bincount(labels[assigned], weights=service.positions[assigned, axis],
                                               minlength=count) for axis in (0, 1)]) / np.maximum(counts, 1)[:, None]
        anchors = {}
        for k in np.flatnonzero(counts):
            members = np.flatnonzero(labels == k)
            nearest = members[int(np.argmin(np.hypot(*(service.positions[members] - centres[k]).T)))]
            anchors[int(service.fids[nearest])] = int(k)
        layer = service.layer
        transform = QgsCoordinateTransform(layer.crs(), self._canvas.mapSettings().destinationCrs(),
                                           service.project.transformContext())
        placed = []
        request = QgsFeatureRequest().setFilterFids(list(anchors)).setNoAttributes()
        for feature in layer.getFeatures(request):
            if not feature.hasGeometry():
                continue
            code = service.territory_names[anchors[feature.id()]]
            row = service.table_rows.get(code)
            text = service.display_name(code) + (f"\n{row.rep}" if row is not None and row.rep else "")
            try:
                point = transform.transform(feature.geometry().pointOnSurface().asPoint())
            except QgsCsException:
                continue
            placed.append((point, text))
        return placed

    def paths(self) -> list:
        """The labels to draw, as text outlines in the item's coordinates: a label that would overlap
        one drawn before it is left out, as QGIS leaves out its own colliding labels (zooming in
        shows it)."""
        font = QFont("DejaVu Sans")
        font.setBold(True)
        font.setPointSizeF(8.5)
        metrics = QFontMetricsF(font)
        origin = self.pos()
        taken, paths = [], []
        for point, text in self._labels:
            centre = self.toCanvasCoordinates(point) - origin
            lines = text.split("\n")
            path = QPainterPath()
            for number, line in enumerate(lines):
                x = centre.x() - metrics.horizontalAdvance(line) / 2.0
                y = centre.y() + (number - (len(lines) - 1) / 2.0) * metrics.height() + metrics.ascent() / 2.0
                path.addText(QPointF(x, y), font, line)
            box = path.boundingRect().adjusted(-LABEL_GAP, -LABEL_GAP, LABEL_GAP, LABEL_GAP)
            if any(box.intersects(other) for other in taken):
                continue
            taken.append(box)
            paths.append(path)
        return paths

    def paint(self, painter, option=None, widget=None) -> None:
        if not self._labels:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for path in self.paths():
            painter.setPen(QPen(QColor(255, 255, 255, 230), 3.0))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(20, 20, 20))
            painter.drawPath(path)

    def close(self) -> None:
        self._labels = []
        scene = self._canvas.scene()
        if scene is not None and self.scene() is scene:
            scene.removeItem(self)
