"""Map tools for painting territories: click or drag a rectangle, draw a freehand lasso, pick a
territory with the eyedropper. They only find units; the dock decides what happens to them."""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor

DRAG_PIXELS = 4


class UnitTool(QgsMapTool):
    """Base: finds the units of one layer at a point, in a rectangle or inside a polygon
    (all given in map coordinates)."""

    #: feature ids of the units the user pointed at
    unitsPicked = pyqtSignal(list)  # noqa: N815 - Qt's naming

    def __init__(self, canvas):
        super().__init__(canvas)
        self.layer: QgsVectorLayer | None = None
        #: the outline drawn while the user drags (a rectangle, a lasso)
        self._band_item: QgsRubberBand | None = None
        self.setCursor(Qt.CursorShape.CrossCursor)

    def set_layer(self, layer: QgsVectorLayer | None) -> None:
        self.layer = layer

    def _to_layer(self) -> QgsCoordinateTransform:
        return QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), self.layer.crs(),
                                      QgsProject.instance().transformContext())

    def units_at(self, point: QgsPointXY) -> list[int]:
        """The unit under ``point``: the polygon containing it, or the nearest point within the
        search radius. Empty when there is none."""
        if self.layer is None:
            return []
        radius = QgsMapTool.searchRadiusMU(self.canvas())
        area = QgsRectangle(point.x() - radius, point.y() - radius, point.x() + radius, point.y() + radius)
        transform = self._to_layer()
        try:
            layer_point = transform.transform(point)
            layer_area = transform.transformBoundingBox(area)
        except Exception:  # noqa: BLE001 - a point outside the layer CRS's domain finds nothing
            return []
        request = QgsFeatureRequest().setFilterRect(layer_area).setNoAttributes()
        here = QgsGeometry.fromPointXY(layer_point)
        best, best_distance = None, None
        for feature in self.layer.getFeatures(request):
            geometry = feature.geometry()
            if geometry.isNull():
                continue
            if QgsWkbTypes.geometryType(geometry.wkbType()) == QgsWkbTypes.GeometryType.PolygonGeometry:
                if geometry.contains(here):
                    return [feature.id()]
                continue
            distance = geometry.distance(here)
            if best_distance is None or distance < best_distance:
                best, best_distance = feature.id(), distance
        return [best] if best is not None else []

    def units_in_rectangle(self, rectangle: QgsRectangle) -> list[int]:
        """Every unit touching ``rectangle``."""
        if self.layer is None or rectangle.isEmpty():
            return []
        try:
            layer_rect = self._to_layer().transformBoundingBox(rectangle)
        except Exception:  # noqa: BLE001
            return []
        request = (QgsFeatureRequest().setFilterRect(layer_rect).setNoAttributes()
                   .setFlags(QgsFeatureRequest.Flag.ExactIntersect))
        return [feature.id() for feature in self.layer.getFeatures(request)]

    def units_in_polygon(self, polygon: QgsGeometry) -> list[int]:
        """Every unit whose representative point (point on surface) lies inside ``polygon``."""
        if self.layer is None or polygon is None or polygon.isEmpty():
            return []
        shape = QgsGeometry(polygon)
        try:
            shape.transform(self._to_layer())
        except Exception:  # noqa: BLE001
            return []
        if not shape.isGeosValid():
            shape = shape.makeValid()
        engine = QgsGeometry.createGeometryEngine(shape.constGet())
        engine.prepareGeometry()
        request = QgsFeatureRequest().setFilterRect(shape.boundingBox()).setNoAttributes()
        found = []
        for feature in self.layer.getFeatures(request):
            geometry = feature.geometry()
            if geometry.isNull():
                continue
            polygon = geometry.type() == QgsWkbTypes.GeometryType.PolygonGeometry
            point = geometry.pointOnSurface() if polygon else geometry.centroid()
            if not point.isNull() and engine.contains(point.constGet()):
                found.append(feature.id())
        return found

    def _band(self, geometry_type) -> QgsRubberBand:
        band = QgsRubberBand(self.canvas(), geometry_type)
        band.setColor(QColor(255, 120, 0, 70))
        band.setStrokeColor(QColor(255, 120, 0, 220))
        band.setWidth(2)
        return band

    def _clear_band(self) -> None:
        if self._band_item is not None:
            self.canvas().scene().removeItem(self._band_item)
            self._band_item = None

    def _forget_gesture(self) -> None:
        """Drop a press or drag in progress (the tool is being put away)."""

    def deactivate(self):
        self._forget_gesture()
        self._clear_band()
        super().deactivate()


class PaintTool(UnitTool):
    """Click a unit, or drag a rectangle over several."""

    def __init__(self, canvas):
        super().__init__(canvas)
        self._start = None
        self._start_pixel = None
        self._dragging = False

    def canvasPressEvent(self, event):  # noqa: N802 - QGIS API name
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._start = event.mapPoint()
        self._start_pixel = event.pos()
        self._dragging = False

    def canvasMoveEvent(self, event):  # noqa: N802
        if self._start is None:
            return
        if not self._dragging and (event.pos() - self._start_pixel).manhattanLength() < DRAG_PIXELS:
            return
        self._dragging = True
        if self._band_item is None:
            self._band_item = self._band(QgsWkbTypes.GeometryType.PolygonGeometry)
        self._band_item.setToGeometry(QgsGeometry.fromRect(QgsRectangle(self._start, event.mapPoint())), None)

    def canvasReleaseEvent(self, event):  # noqa: N802
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return
        start, self._start = self._start, None
        dragged = self._dragging or (event.pos() - self._start_pixel).manhattanLength() >= DRAG_PIXELS
        self._dragging = False
        self._clear_band()
        if dragged:
            fids = self.units_in_rectangle(QgsRectangle(start, event.mapPoint()))
        else:
            fids = self.units_at(event.mapPoint())
        if fids:
            self.unitsPicked.emit(fids)

    def _forget_gesture(self) -> None:
        self._start = None


class LassoTool(UnitTool):
    """Draw a freehand outline while the button is held; the units inside it are picked."""

    def __init__(self, canvas):
        super().__init__(canvas)
        self._points: list[QgsPointXY] = []
        self._last_pixel = None

    def canvasPressEvent(self, event):  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._points = [QgsPointXY(event.mapPoint())]
        self._last_pixel = event.pos()
        self._band_item = self._band(QgsWkbTypes.GeometryType.PolygonGeometry)
        self._band_item.addPoint(QgsPointXY(event.mapPoint()))

    def canvasMoveEvent(self, event):  # noqa: N802
        if not self._points:
            return
        if (event.pos() - self._last_pixel).manhattanLength() < 2:
            return
        self._last_pixel = event.pos()
        self._points.append(QgsPointXY(event.mapPoint()))
        self._band_item.addPoint(QgsPointXY(event.mapPoint()))

    def canvasReleaseEvent(self, event):  # noqa: N802
        if not self._points or event.button() != Qt.MouseButton.LeftButton:
            return
        points, self._points = self._points + [QgsPointXY(event.mapPoint())], []
        self._clear_band()
        if len(points) < 3:
            return
        fids = self.units_in_polygon(QgsGeometry.fromPolygonXY([points + [points[0]]]))
        if fids:
            self.unitsPicked.emit(fids)

    def _forget_gesture(self) -> None:
        self._points = []


class EyedropperTool(UnitTool):
    """Click a unit to make its territory the active one."""

    def canvasReleaseEvent(self, event):  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        fids = self.units_at(event.mapPoint())
        if fids:
            self.unitsPicked.emit(fids)
