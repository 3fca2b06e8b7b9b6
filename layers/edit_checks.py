"""Can the panel edit this layer and these fields? Each check returns None when it can, else a
message that names the problem and how to fix it (shown in the message bar as it is)."""

from __future__ import annotations

from qgis.core import QgsExpression, QgsField, QgsVectorDataProvider, QgsVectorLayer, QgsWkbTypes
from qgis.PyQt.QtCore import QMetaType

from ..compat import STRING, make_field
from ..i18n import tr


def _metatypes(*names: str) -> set[int]:
    scope = getattr(QMetaType, "Type", QMetaType)
    return {int(getattr(scope, name)) for name in names if hasattr(scope, name)}


STRING_TYPES = _metatypes("QString")
INTEGER_TYPES = _metatypes("Int", "UInt", "LongLong", "ULongLong")


def is_integer_field(layer: QgsVectorLayer, index: int) -> bool:
    """Whether field ``index`` holds whole numbers (territory names are then numbers too)."""
    return index >= 0 and int(layer.fields().at(index).type()) in INTEGER_TYPES


def geometry_problem(layer: QgsVectorLayer) -> str | None:
    geometry_type = QgsWkbTypes.geometryType(layer.wkbType())
    if geometry_type not in (QgsWkbTypes.GeometryType.PolygonGeometry, QgsWkbTypes.GeometryType.PointGeometry):
        return tr("Territories are painted on polygon or point layers; “{}” has {} geometries.").format(
            layer.name(), QgsWkbTypes.geometryDisplayString(geometry_type))
    return None


def editing_problem(layer: QgsVectorLayer, add_field: bool = False) -> str | None:
    """Why the panel cannot edit ``layer`` (or add a field to it, with ``add_field``)."""
    if layer is None or not layer.isValid():
        return tr("The layer is not valid.")
    if layer.readOnly():
        return tr("The layer “{}” is read-only. Make it editable (Project ▸ Properties ▸ Data Sources) or "
                  "save a copy, e.g. as a GeoPackage, and plan on the copy.").format(layer.name())
    capabilities = layer.dataProvider().capabilities()
    if not capabilities & QgsVectorDataProvider.Capability.ChangeAttributeValues:
        return tr("The data source of “{}” does not allow changing attribute values. Save a copy of the "
                  "layer (e.g. as a GeoPackage) and plan on the copy.").format(layer.name())
    if add_field and not capabilities & QgsVectorDataProvider.Capability.AddAttributes:
        return tr("The data source of “{}” does not allow adding fields. Add the territory field with the "
                  "layer's own tools, or save a copy as a GeoPackage.").format(layer.name())
    return None


def start_editing(layer: QgsVectorLayer) -> str | None:
    """Put ``layer`` in editing mode for the panel's edits (see :func:`editing_problem`); why it could
    not, or None."""
    problem = editing_problem(layer)
    if problem is None and not layer.isEditable() and not layer.startEditing():
        problem = tr("QGIS could not start editing “{}”. Check that its data source is writable.").format(layer.name())
    return problem


def territory_field_problem(layer: QgsVectorLayer, name: str) -> str | None:
    """Why ``name`` cannot hold territories on ``layer``."""
    index = layer.fields().lookupField(name)
    if index < 0:
        return tr("The layer has no field “{}”. Pick one of its fields or create a new territory field.").format(name)
    kind = int(layer.fields().at(index).type())
    if kind not in STRING_TYPES | INTEGER_TYPES:
        return tr("The field “{}” is a {} field; territory names need a text or whole-number field. "
                  "Pick another field or create a new territory field.").format(
            name, layer.fields().at(index).typeName())
    if layer.fields().fieldOrigin(index) not in (layer.fields().OriginProvider, layer.fields().OriginEdit):
        return tr("The field “{}” is computed (virtual or joined) and cannot be edited. Pick a field of the "
                  "layer itself.").format(name)
    return None


def plan_fields_problem(layer: QgsVectorLayer, territory_field: str, measures: list[str], rep_field: str,
                        lock_field: str) -> str | None:
    """Why the balance, rep or lock fields of a plan cannot be used on ``layer``."""
    fields = layer.fields()
    for name in measures:
        index = fields.lookupField(name)
        if index < 0:
            return tr("The balance field “{}” is not in the layer. Pick one of its fields.").format(name)
        if not fields.at(index).isNumeric():
            return tr("The balance field “{}” is not numeric. Choose a numeric field.").format(name)
        if name == territory_field:
            return tr("The territory field cannot also be a balance field.")
    for label, name in ((tr("rep"), rep_field), (tr("lock"), lock_field)):
        if name and fields.lookupField(name) < 0:
            return tr("The {} field “{}” is not in the layer.").format(label, name)
    return None


def filter_problem(expression: str, scenario: str) -> str | None:
    """Why a scenario's segment filter (the user's own expression) cannot be used."""
    if not expression:
        return None
    parsed = QgsExpression(expression)  # the user's own expression, parsed whole, never assembled
    if parsed.hasParserError():
        return tr("The filter of scenario “{}” is not a valid expression ({}). Fix or clear it.").format(
            scenario, parsed.parserErrorString())
    return None


def plan_problem(layer: QgsVectorLayer, territory_field: str, measures: list[str], rep_field: str, lock_field: str,
                 filter_expression: str) -> str | None:
    """Why the panel cannot bind to ``layer`` with these fields and segment filter (the first problem)."""
    return (geometry_problem(layer) or editing_problem(layer) or territory_field_problem(layer, territory_field)
            or plan_fields_problem(layer, territory_field, measures, rep_field, lock_field)
            or filter_problem(filter_expression, territory_field))


def new_field_problem(layer: QgsVectorLayer, name: str) -> str | None:
    """Why a new territory field ``name`` (already stripped) cannot be added to ``layer``."""
    problem = geometry_problem(layer) or editing_problem(layer, add_field=True)
    if not name:
        return tr("Give the new territory field a name.")
    if layer.fields().lookupField(name) >= 0:
        return tr("The layer already has a field “{}”; pick it, or choose another name.").format(name)
    return problem


def text_field(layer: QgsVectorLayer, name: str) -> QgsField:
    """A text field ``name`` in one of the provider's own types (PostGIS needs the type's name)."""
    field = make_field(name, STRING, 80)
    texts = [t for t in layer.dataProvider().nativeTypes() if int(t.mType) in STRING_TYPES]

    def rank(native) -> int:
        # variable-length text first: a fixed "char(n)" would pad every name with spaces
        type_name = native.mTypeName.lower()
        for k, wanted in enumerate(("varchar", "character varying", "string", "text")):
            if type_name == wanted:
                return k
        return 10 if "char" in type_name and "var" not in type_name else 5

    if texts:
        native = min(texts, key=rank)
        field.setTypeName(native.mTypeName)
        if 0 < native.mMaxLen < 80:
            field.setLength(native.mMaxLen)
    return field
