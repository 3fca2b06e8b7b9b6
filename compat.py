"""The few QGIS and Qt calls that differ between QGIS 3.22, 3.40 and QGIS 4 (Qt6), in one place.

Everything else in the plugin is written once, with fully scoped enums that all three accept.
Nothing here may be imported by ``core/``.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsField, QgsMapLayerProxyModel, QgsWkbTypes

# QgsField takes a QMetaType.Type from QGIS 3.38 on (the QVariant.Type form is deprecated there and
# gone in Qt6); QGIS 3.22 only takes QVariant.Type.
_QMETATYPE_FIELDS = Qgis.QGIS_VERSION_INT >= 33800

if _QMETATYPE_FIELDS:
    from qgis.PyQt.QtCore import QMetaType

    _FIELD_TYPES = {
        "string": QMetaType.Type.QString,
        "int": QMetaType.Type.Int,
        "long": QMetaType.Type.LongLong,
        "double": QMetaType.Type.Double,
        "bool": QMetaType.Type.Bool,
    }
else:  # QGIS < 3.38 (always Qt5)
    from qgis.PyQt.QtCore import QVariant

    _FIELD_TYPES = {
        "string": QVariant.Type.String,  # qt6-ok: only reached on QGIS < 3.38
        "int": QVariant.Type.Int,  # qt6-ok
        "long": QVariant.Type.LongLong,  # qt6-ok
        "double": QVariant.Type.Double,  # qt6-ok
        "bool": QVariant.Type.Bool,  # qt6-ok
    }

STRING = "string"
INT = "int"
LONG = "long"
DOUBLE = "double"
BOOL = "bool"


def make_field(name: str, kind: str, length: int = 0, precision: int = 0) -> QgsField:
    """A new ``QgsField`` of ``kind`` (``STRING``, ``INT``, ``LONG``, ``DOUBLE`` or ``BOOL``)."""
    try:
        field_type = _FIELD_TYPES[kind]
    except KeyError:
        raise ValueError(f"unknown field kind {kind!r}; use one of {sorted(_FIELD_TYPES)}") from None
    return QgsField(name, field_type, len=length, prec=precision)


def _layer_filters(*names: str):
    if hasattr(Qgis, "LayerFilters"):  # QGIS >= 3.34: the flags type picks the non-deprecated overload
        flags = Qgis.LayerFilters()
        for name in names:
            flags |= getattr(Qgis.LayerFilter, name)
        return Qgis.LayerFilters(flags)
    flags = QgsMapLayerProxyModel.Filters()
    for name in names:
        flags |= getattr(QgsMapLayerProxyModel.Filter, name)
    return flags


def parameter_as_fields(algorithm, parameters: dict, name: str, context) -> list[str]:
    """The field names of a field parameter (``parameterAsStrings`` from QGIS 3.32 on; the older
    ``parameterAsFields`` is deprecated there)."""
    if hasattr(algorithm, "parameterAsStrings"):
        return list(algorithm.parameterAsStrings(parameters, name, context))
    return list(algorithm.parameterAsFields(parameters, name, context))


def polygon_and_point_layers():
    """The filter for a ``QgsMapLayerComboBox`` that offers polygon and point layers.

    QGIS 3.34 moved the flags to ``Qgis.LayerFilter``; the old ones are deprecated from then on.
    """
    return _layer_filters("PolygonLayer", "PointLayer")


def point_layers():
    """The filter for a ``QgsMapLayerComboBox`` that offers point layers (rep homes, accounts)."""
    return _layer_filters("PointLayer")


def line_layers():
    """The filter for a ``QgsMapLayerComboBox`` that offers line layers (road networks)."""
    return _layer_filters("LineLayer")


def vector_layers():
    """The filter for a ``QgsMapLayerComboBox`` that offers every vector layer (tables included)."""
    return _layer_filters("VectorLayer")


def set_label_text_format(label, text_format) -> None:
    """A layout label's text in ``text_format`` (points): ``setTextFormat`` from QGIS 3.24 on (``setFont``
    and ``setFontColor`` are deprecated there); before, the format's font, size and colour one by one."""
    if hasattr(label, "setTextFormat"):
        label.setTextFormat(text_format)
        return
    from qgis.PyQt.QtGui import QFont

    font = QFont(text_format.font())
    font.setPointSizeF(text_format.size())
    label.setFont(font)
    label.setFontColor(text_format.color())


def undo_command_class():
    """``QUndoCommand``: in QtWidgets under Qt5, in QtGui under Qt6."""
    try:
        from qgis.PyQt.QtGui import QUndoCommand
    except ImportError:
        from qgis.PyQt.QtWidgets import QUndoCommand
    return QUndoCommand


# Geometry types: Qgis.GeometryType from QGIS 3.30 on; QgsWkbTypes.GeometryType before.
if hasattr(Qgis, "GeometryType"):
    POINT_GEOMETRY = Qgis.GeometryType.Point
    LINE_GEOMETRY = Qgis.GeometryType.Line
    POLYGON_GEOMETRY = Qgis.GeometryType.Polygon
else:  # QGIS < 3.30
    POINT_GEOMETRY = QgsWkbTypes.GeometryType.PointGeometry
    LINE_GEOMETRY = QgsWkbTypes.GeometryType.LineGeometry
    POLYGON_GEOMETRY = QgsWkbTypes.GeometryType.PolygonGeometry
