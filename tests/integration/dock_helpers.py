"""Helpers for the dock tests: a small grid layer, a dock wired to the test iface, mouse events
on the map canvas at map coordinates, and the table as a user reads it."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsProject, QgsRectangle, QgsVectorLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from territory_planner.ui.territory_list_model import SORT_ROLE


def grid_layer(columns: int = 6, rows: int = 4, territories: dict | None = None, name: str = "grid",
               crs: str = "EPSG:3857", size: float = 1000.0) -> QgsVectorLayer:
    """A memory layer of ``columns`` × ``rows`` square units (``size`` m), ids 1.., with fields
    territory (text), accounts (integer, 1 + column), potential (10 × (row + 1)), rep (text)
    and locked (0/1). ``territories`` maps (column, row) to a territory name."""
    layer = QgsVectorLayer(f"Polygon?crs={crs}&field=territory:string(40)&field=accounts:integer"
                           f"&field=potential:double&field=rep:string(20)&field=locked:integer", name, "memory")
    features = []
    for r in range(rows):
        for c in range(columns):
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromRect(QgsRectangle(c * size, r * size, (c + 1) * size, (r + 1) * size)))
            territory = (territories or {}).get((c, r))
            feature.setAttributes([territory, 1 + c, 10.0 * (r + 1), f"rep{c // 3}", 0])
            features.append(feature)
    assert layer.dataProvider().addFeatures(features)
    layer.updateExtents()
    return layer


def cell_fid(layer: QgsVectorLayer, column: int, row: int, size: float = 1000.0) -> int:
    """Feature id of the grid unit at (column, row)."""
    centre = QgsGeometry.fromPointXY(QgsPointXY((column + 0.5) * size, (row + 0.5) * size))
    for feature in layer.getFeatures():
        if feature.geometry().contains(centre):
            return feature.id()
    raise KeyError((column, row))


def run_synchronously(task) -> None:
    """Run a QgsTask on this thread, as the task manager would: run(), then finished()."""
    result = task.run()
    task.finished(result)


def show_layer(canvas, layer: QgsVectorLayer) -> None:
    canvas.setDestinationCrs(layer.crs())
    canvas.setLayers([layer])
    extent = layer.extent()
    extent.scale(1.05)
    canvas.setExtent(extent)
    canvas.refresh()


def pixel(canvas, x: float, y: float) -> QPoint:
    """The canvas pixel showing map coordinates (x, y)."""
    point = canvas.getCoordinateTransform().transform(QgsPointXY(x, y))
    return QPoint(int(round(point.x())), int(round(point.y())))


def mouse(canvas, kind, x: float, y: float) -> QgsMapMouseEvent:
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
    return QgsMapMouseEvent(canvas, kind, pixel(canvas, x, y), Qt.MouseButton.LeftButton, buttons,
                            Qt.KeyboardModifier.NoModifier)


def click(tool, canvas, x: float, y: float) -> None:
    tool.canvasPressEvent(mouse(canvas, QEvent.Type.MouseButtonPress, x, y))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.Type.MouseButtonRelease, x, y))


def drag(tool, canvas, points: list[tuple[float, float]]) -> None:
    """Press at the first point, move through the others, release at the last."""
    tool.canvasPressEvent(mouse(canvas, QEvent.Type.MouseButtonPress, *points[0]))
    for x, y in points[1:]:
        tool.canvasMoveEvent(mouse(canvas, QEvent.Type.MouseMove, x, y))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.Type.MouseButtonRelease, *points[-1]))


def table(dock) -> dict:
    """The territory table as shown: {territory name: {column header: shown text}}."""
    proxy = dock.proxy
    headers = [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(proxy.columnCount())]
    rows = {}
    for r in range(proxy.rowCount()):
        name = proxy.index(r, 0).data()
        rows[name] = {headers[c]: proxy.index(r, c).data() for c in range(1, proxy.columnCount())}
    return rows


def table_numbers(dock) -> dict:
    """Like :func:`table` but the sort values (numbers) of each cell."""
    proxy = dock.proxy
    headers = [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(proxy.columnCount())]
    rows = {}
    for r in range(proxy.rowCount()):
        name = proxy.index(r, 0).data()
        rows[name] = {headers[c]: proxy.index(r, c).data(SORT_ROLE) for c in range(1, proxy.columnCount())}
    return rows


def select_row(dock, name: str) -> None:
    """Click the table row of territory ``name``."""
    proxy = dock.proxy
    for r in range(proxy.rowCount()):
        if proxy.index(r, 0).data() == name:
            dock.table.selectionModel().setCurrentIndex(
                proxy.index(r, 0), dock.table.selectionModel().SelectionFlag.ClearAndSelect
                | dock.table.selectionModel().SelectionFlag.Rows)
            return
    raise KeyError(name)


def provider_territories(layer: QgsVectorLayer, field: str = "territory") -> dict:
    """Territory of each feature as stored in the data source (ignoring unsaved edits)."""
    index = layer.fields().lookupField(field)
    return {f.id(): f.attribute(index) for f in layer.dataProvider().getFeatures()}


def expected_sums(layer: QgsVectorLayer, measure: str, field: str = "territory") -> dict:
    """Sum of ``measure`` per territory as the layer (with its edit buffer) holds it now."""
    sums: dict = {}
    for feature in layer.getFeatures():
        value = feature[field]
        key = None if value is None or (hasattr(value, "isNull") and value.isNull()) or value == "" else value
        sums[key] = sums.get(key, 0.0) + float(feature[measure])
    return sums


def set_up_dock(dock, layer: QgsVectorLayer, field: str = "territory", measures=("accounts",),
                tolerance: float = 5.0, rep: str = "", lock: str = "") -> None:
    """Pick layer, field, measures, tolerance, rep and lock fields in the dock's widgets."""
    if QgsProject.instance().mapLayer(layer.id()) is None:
        QgsProject.instance().addMapLayer(layer)
    dock.setup_form.layer_combo.setLayer(layer)
    dock.setup_form.tolerance_spin.setValue(tolerance)
    dock.setup_form.measures_combo.deselectAllOptions()  # setCheckedItems only adds to what the panel ticked itself
    dock.setup_form.measures_combo.setCheckedItems(list(measures))
    dock.setup_form.rep_combo.setField(rep)
    dock.setup_form.lock_field_combo.setField(lock)
    dock.setup_form.field_combo.setField(field)


def labels_array(service) -> np.ndarray:
    return service.ledger.plan_labels().copy()


class TaskRecorder:
    """Stands in for QGIS's task manager: neighbours are read at once, engine tasks wait for the test."""

    def __init__(self):
        self.tasks = []

    def __call__(self, task):
        from territory_planner.ui.tasks import UnitsTask

        if isinstance(task, UnitsTask):
            run_synchronously(task)
        else:
            self.tasks.append(task)
