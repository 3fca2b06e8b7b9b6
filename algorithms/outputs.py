"""Writing outputs: features that must reach the sink, the units copied with their new fields, the
territory style applied when a layer is loaded, and output field names (unique, and cut to 10
characters for shapefiles)."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputLayerDefinition,
)

from ..i18n import tr
from ..layers.style import apply_territory_style, label_territories, order_territories_above_units
from ..layers.territory_table import TerritoryRow
from ..layers.units import Units
from .engine_run import check_cancelled


def add_feature(sink, feature: QgsFeature) -> None:
    """Add a feature to an output, raising a QgsProcessingException when it cannot be written
    (full disk, lost connection): QGIS itself only logs the failure and the run would "succeed"
    with a broken output."""
    if sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert):
        return
    reason = sink.lastError() if hasattr(sink, "lastError") else ""
    raise QgsProcessingException(tr(
        "A feature could not be written to the output ({}). Check that the disk has free space and the "
        "output can be written, then run again.").format(reason or "no reason given"))


def write_units(algorithm: QgsProcessingAlgorithm, parameters, key: str, context, feedback, source, units: Units,
                new_fields: list[QgsField], values_of, progress: tuple[float, float] = (85.0, 90.0),
                keep_geometries: bool = True) -> tuple[str, list[QgsGeometry]]:
    """Copy every unit of ``source`` to the sink ``key`` with all its attributes, plus ``new_fields``.

    ``values_of(i)`` gives the new fields' values for engine unit ``i``. A new field named like an
    input field takes its place (and column); the input itself is never changed. Returns the
    sink's id and each unit's geometry as written (engine order), for dissolving territories (empty
    geometries when ``keep_geometries`` is False: a million accounts need no dissolve).
    """
    fields = QgsFields()
    replaced = {f.name(): f for f in new_fields}
    kept_columns = []
    for index, field in enumerate(source.fields()):
        if field.name() in replaced:
            feedback.pushInfo(tr("The input's field “{}” is replaced in the output.").format(field.name()))
            fields.append(replaced.pop(field.name()))
            kept_columns.append(None)
        else:
            fields.append(field)
            kept_columns.append(index)
    for field in new_fields:
        if field.name() in replaced:
            fields.append(field)
    position = {f.name(): fields.lookupField(f.name()) for f in new_fields}
    sink, dest_id = algorithm.parameterAsSink(parameters, key, context, fields, source.wkbType(), source.sourceCrs())
    if sink is None:
        raise QgsProcessingException(algorithm.invalidSinkError(parameters, key))
    geometries: list[QgsGeometry] = [QgsGeometry()] * units.count
    start, end = progress
    total = max(units.count, 1)
    # Per feature only what differs: the source feature itself is sent on (its geometry is not
    # copied) with its attribute list rebuilt. One feature at a time: a batch costs more (the list
    # is converted feature by feature, and a million features are held in Python meanwhile).
    identity = kept_columns == list(range(len(kept_columns)))
    width = fields.count()
    slots = [position[field.name()] for field in new_fields]
    appended = slots == list(range(len(kept_columns), width))
    index_of_fid = units.index_of_fid
    for count, feature in enumerate(source.getFeatures()):
        if count % 1000 == 0:
            check_cancelled(feedback)
            feedback.setProgress(start + (end - start) * count / total)
        i = index_of_fid[feature.id()]
        values = values_of(i)
        old = feature.attributes()
        if identity and appended:
            attributes = old + values
        else:
            attributes = [old[c] if c is not None else None for c in kept_columns]
            attributes += [None] * (width - len(attributes))
            for slot, value in zip(slots, values):
                attributes[slot] = value
        feature.setFields(fields, False)  # a remapping sink (appending to a layer) looks fields up by name
        feature.setAttributes(attributes)
        add_feature(sink, feature)
        if keep_geometries:
            geometries[i] = feature.geometry()
    return dest_id, geometries


class TerritoryStyler(QgsProcessingLayerPostProcessorInterface):
    """Colours an output layer by territory once Processing has loaded it, with the territory
    table's colours. A territory layer (``outline``) gets bold outlines and name/rep labels and is
    moved above the units."""

    # Processing keeps only a reference; Python must keep the object alive.
    _alive: list[TerritoryStyler] = []

    def __init__(self, field: str, values: list[str], rows: list[TerritoryRow] | None = None,
                 outline: bool = False):
        super().__init__()
        self.field = field
        self.values = values
        self.rows = rows or []
        self.outline = outline
        self.dest_id: str | None = None
        self.peer: str | None = None  # the other layer (units for a territory layer and back), for layer order

    def postProcessLayer(self, layer, context, feedback):
        colours = {row.code: row.colour for row in self.rows if row.colour}
        titles = {row.code: row.label for row in self.rows}
        apply_territory_style(layer, self.field, self.values, colours, self.outline, titles)
        if self.outline:
            label_territories(layer, "name", "rep", self.field)
        project = context.project()
        if self.peer:
            pair = (self.dest_id, self.peer) if self.outline else (self.peer, self.dest_id)
            order_territories_above_units(project, *pair)

    @classmethod
    def attach(cls, dest_id: str, field: str, values: list[str], context,
               rows: list[TerritoryRow] | None = None, outline: bool = False,
               peer: str | None = None) -> None:
        """Style ``dest_id`` when loaded; ``peer``: for a territory layer (``outline``) its units
        layer, for units their territory layer: the territories end up drawn above the units."""
        styler = cls(field, values, rows, outline)
        styler.peer = peer
        cls.run_on_load(styler, dest_id, context)

    @classmethod
    def run_on_load(cls, styler: TerritoryStyler, dest_id: str | None, context) -> None:
        """Have ``styler`` style ``dest_id`` once Processing has loaded it (nothing when it is not loaded)."""
        if not dest_id or not context.willLoadLayerOnCompletion(dest_id):
            return
        styler.dest_id = dest_id
        cls._alive.append(styler)
        del cls._alive[:-1000]
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)


def destination_of(parameters: dict, key: str) -> str:
    """Where a sink parameter will write (path or URI), read without side effects.

    ``parameterAsOutputLayer`` registers its destination for loading on completion, so calling it
    before ``parameterAsSink`` makes QGIS try to load a second, non-existent layer and print
    "The following layers were not correctly generated"."""
    value = parameters.get(key)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    return "" if value is None else str(value)


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with later repeats (ignoring case) numbered: "rep", "rep_2"."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, number = name, 2
        while candidate.lower() in seen:
            candidate = f"{name}_{number}"
            number += 1
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def output_field_names(names: Sequence[str], destination: str) -> list[str]:
    """The one naming rule for new output fields: unique (ignoring case), and cut to 10 characters
    when ``destination`` is a shapefile or dBase table."""
    names = unique_names(names)
    return short_field_names(names) if is_dbf_destination(destination) else names


def short_field_names(names: Sequence[str], limit: int = 10) -> list[str]:
    """Field names cut to ``limit`` characters and kept unique, for shapefile and dBase outputs.

    A short ending after the last underscore (``_tgt``, ``_before``, ``_1974``) is kept and the
    start is cut (``population_tgt`` → ``popula_tgt``); names that still collide get a number.
    """
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        base, suffix = name, ""
        cut = name.rfind("_")
        if len(name) > limit and 0 < cut and len(name) - cut <= 7:
            base, suffix = name[:cut], name[cut:]
        candidate = (base[: limit - len(suffix)] + suffix) if len(name) > limit else name
        number = 2
        while candidate.lower() in taken:
            tag = str(number)
            candidate = base[: limit - len(suffix) - len(tag)] + tag + suffix
            number += 1
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def is_dbf_destination(destination: str) -> bool:
    """True when an output path will be written as a shapefile or dBase table."""
    path = (destination or "").split("|")[0].strip().lower()
    return path.endswith(".shp") or path.endswith(".dbf")
