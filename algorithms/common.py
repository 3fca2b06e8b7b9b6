"""What the Territory Planner algorithms share: reading units, reporting engine diagnostics,
writing the per-territory layer and styling outputs."""

from __future__ import annotations

import functools
import gc
import math
import os
import traceback

import numpy as np
from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingUtils,
    QgsWkbTypes,
)

from ..compat import DOUBLE, INT, STRING, make_field
from ..core.progress import Cancelled, Progress
from ..i18n import tr
from ..layers.style import apply_territory_style, label_territories, order_territories_above_units
from ..layers.territory_table import TerritoryRow
from ..layers.units import UnitDataError, Units, read_units
from ..layers.values import is_empty_value, natural_key  # noqa: F401 - shared with the algorithms
from ..resources import icon, icon_path
from .report import is_dbf_destination, short_field_names


class TerritoryAlgorithm(QgsProcessingAlgorithm):
    """Base for the provider's algorithms: group, icon, translation and error helpers."""

    def tr(self, text: str) -> str:
        return tr(text)

    def createInstance(self):
        return type(self)()

    def group(self) -> str:
        return self.tr("Territory design")

    def groupId(self) -> str:
        return "territorydesign"

    def icon(self):
        return icon("territory.svg")

    def svgIconPath(self) -> str:
        return icon_path("territory.svg")

    def parameterAsSource(self, parameters, name, context):
        """The feature source, read without QGIS's invalid-geometry check.

        The plugin repairs invalid polygons itself (and says which); QGIS's check would instead
        drop them silently ("skip") or, with "stop", raise from inside the feature iterator, which
        takes the whole QGIS process down on 3.22. The check is captured when the source is made,
        so the context's own setting is restored at once.
        """
        previous = context.invalidGeometryCheck()
        context.setInvalidGeometryCheck(QgsFeatureRequest.InvalidGeometryCheck.GeometryNoCheck)
        try:
            return super().parameterAsSource(parameters, name, context)
        finally:
            context.setInvalidGeometryCheck(previous)

    def checkParameterValues(self, parameters, context):
        """QGIS's own check, with a message that gives the allowed range of a number out of bounds."""
        for definition in self.parameterDefinitions():
            if isinstance(definition, QgsProcessingParameterFeatureSource):
                problem = self._source_problem(parameters, definition, context)
                if problem:
                    return False, problem
            if not isinstance(definition, QgsProcessingParameterNumber):
                continue
            value = parameters.get(definition.name())
            if value is None or str(value).strip() == "":
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            low, high = definition.minimum(), definition.maximum()
            if not math.isfinite(number) or number < low or number > high:
                if high >= 1e300:
                    allowed = self.tr("at least {:g}").format(low)
                else:
                    allowed = self.tr("from {:g} to {:g}").format(low, high)
                return False, self.tr("“{}” ({}) is {}; it must be {}. Enter a value in that range.").format(
                    definition.description(), definition.name(), value, allowed)
        return super().checkParameterValues(parameters, context)

    def _source_problem(self, parameters, definition, context) -> str | None:
        """Why a layer parameter cannot be used (missing file, wrong geometry type), or None."""
        value = parameters.get(definition.name())
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        layer = self.parameterAsVectorLayer(parameters, definition.name(), context)
        if layer is None:
            if isinstance(value, str):
                return self.tr("“{}” ({}): the layer “{}” could not be opened (the file is missing or is not a "
                               "vector layer). Check the path, or choose a layer of the project.").format(
                    definition.description(), definition.name(), value)
            return None
        wanted = {QgsProcessing.SourceType.TypeVectorPolygon: QgsWkbTypes.GeometryType.PolygonGeometry,
                  QgsProcessing.SourceType.TypeVectorPoint: QgsWkbTypes.GeometryType.PointGeometry}
        kinds = [wanted[t] for t in definition.dataTypes() if t in wanted]
        if kinds and len(kinds) == len(definition.dataTypes()) and layer.geometryType() not in kinds:
            allowed = self.tr("a polygon or point layer") if len(kinds) == 2 else (
                self.tr("a polygon layer") if kinds[0] == QgsWkbTypes.GeometryType.PolygonGeometry
                else self.tr("a point layer"))
            return self.tr("“{}” ({}) must be {}; “{}” has {} geometries. Choose {}.").format(
                definition.description(), definition.name(), allowed, layer.name(),
                QgsWkbTypes.geometryDisplayString(layer.geometryType()), allowed)
        return None

    def check_outputs(self, parameters, context) -> None:
        """Check every output destination before anything is read or written, and note the files
        this run will create (to remove them if it fails)."""
        self._new_output_files = []
        for definition in self.destinationParameterDefinitions():
            path = self._destination_path(parameters, definition, context)
            if path is None:
                continue
            check_output_path(path, definition.description())
            self._new_output_files += [f for f in _files_of_output(path) if not os.path.exists(f)]

    def _destination_path(self, parameters, definition, context) -> str | None:
        """The file an output parameter will write, or None (memory layers, databases, not set)."""
        name = definition.name()
        value = parameters.get(name)
        if value is None or (definition.flags() & definition.FlagOptional and str(value).strip() == ""):
            return None
        raw = value.sink.staticValue() if hasattr(value, "sink") else value
        if str(raw).strip() == QgsProcessing.TEMPORARY_OUTPUT:
            return None  # Processing's own temporary folder or a memory layer
        if isinstance(definition, QgsProcessingParameterFileDestination):
            path = self.parameterAsFileOutput(parameters, name, context)
        elif isinstance(definition, QgsProcessingParameterFeatureSink):
            path = self.parameterAsOutputLayer(parameters, name, context)
        else:
            return None
        return file_path_of_destination(path)

    def remove_new_outputs(self, feedback=None) -> None:
        """Delete the output files this run created (after a failure): no partial results stay."""
        for path in getattr(self, "_new_output_files", []):
            if os.path.isfile(path):
                try:
                    os.remove(path)
                except OSError as error:
                    if feedback is not None:
                        feedback.pushWarning(self.tr("Could not remove the partial output “{}”: {}.")
                                             .format(path, error.strerror or error))

    def read_units(self, source, balance_fields, context, feedback, with_adjacency=True) -> Units:
        if source is None:
            raise QgsProcessingException(self.tr("The input layer could not be read."))
        try:
            units = read_units(source, balance_fields, context.transformContext(), feedback, with_adjacency)
        except UnitDataError as error:
            raise QgsProcessingException(str(error)) from error
        if units is None:
            raise QgsProcessingException(self.tr("Cancelled."))
        if units.repaired:
            feedback.pushWarning(self.tr("Repaired {} invalid geometries (feature ids {}).")
                                 .format(len(units.repaired), _ids(units.repaired)))
        for a, name in enumerate(units.measure_names):
            if units.count and not np.any(units.workloads[:, a] > 0):
                feedback.pushWarning(self.tr(
                    "The balance field “{}” is 0 for every unit, so there is nothing to balance or measure "
                    "on it (its targets and deviations are 0). Check that it holds the workload (a failed "
                    "join leaves zeros), or leave it out.").format(name))
        return units


def removes_partial_outputs(process):
    """Decorator for ``processAlgorithm``: every output path is checked before the run starts, and
    when the run fails the output files it created are deleted, so a failed run never leaves a
    half-written layer or report behind."""

    @functools.wraps(process)
    def run(self, parameters, context, feedback):
        self.check_outputs(parameters, context)
        try:
            return process(self, parameters, context, feedback)
        except BaseException as error:
            # The failed frames still hold the sinks (open file writers): release them first.
            traceback.clear_frames(error.__traceback__)
            gc.collect()
            self.remove_new_outputs(feedback)
            raise

    run.removes_partial_outputs = True
    return run


def file_path_of_destination(destination: str) -> str | None:
    """The local file an output destination names; None for memory layers and database URIs."""
    text = (destination or "").strip()
    if not text or text.startswith("memory:") or "://" in text.split("|")[0] or text.startswith(
            ("postgres:", "postgis:", "ogr:", "spatialite:", "dbname=")):
        return None
    path = text.split("|")[0]
    if path.startswith("file:"):
        return None
    return path


def check_output_path(path: str, label: str) -> None:
    """Raise a QgsProcessingException naming the problem and the fix when ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise QgsProcessingException(tr(
            "The folder “{}” for the output “{}” does not exist. Create the folder, or choose a file in "
            "an existing folder.").format(folder, label))
    if os.path.isdir(path):
        raise QgsProcessingException(tr(
            "The output “{}” names a folder (“{}”), not a file. Add a file name, e.g. “{}”.").format(
            label, path, os.path.join(path, "output.gpkg")))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise QgsProcessingException(tr(
            "The file “{}” for the output “{}” cannot be overwritten (it is read-only). Choose another file, "
            "or make it writable.").format(path, label))
    if not os.path.exists(path) and not os.access(folder, os.W_OK | os.X_OK):
        raise QgsProcessingException(tr(
            "Cannot write in the folder “{}” for the output “{}” (no permission, or a read-only disk). "
            "Choose a folder you can write to.").format(folder, label))


_SIDECARS = {
    ".shp": (".shx", ".dbf", ".prj", ".cpg", ".qix", ".qpj", ".qmd"),
    ".gpkg": ("-wal", "-shm", "-journal"),
    ".sqlite": ("-wal", "-shm", "-journal"),
}


def _files_of_output(path: str) -> list[str]:
    """The file an output writes and the files its format writes beside it."""
    stem, extension = os.path.splitext(path)
    sidecars = _SIDECARS.get(extension.lower(), ())
    if extension.lower() == ".shp":
        return [path] + [stem + suffix for suffix in sidecars]
    return [path] + [path + suffix for suffix in sidecars]


def engine_progress(feedback, start: float = 0.0, end: float = 100.0) -> Progress:
    """A core Progress that reports to a QgsProcessingFeedback between ``start`` and ``end``."""

    def report(fraction: float, message: str) -> None:
        feedback.setProgress(start + (end - start) * max(0.0, min(1.0, fraction)))
        if message:
            feedback.setProgressText(message)

    return Progress(report=report, is_cancelled=feedback.isCanceled)


def run_engine(function, *args, **kwargs):
    """Call an engine function, turning its errors into messages for the user."""
    from ..core.problem import ProblemError

    try:
        return function(*args, **kwargs)
    except ProblemError as error:
        raise QgsProcessingException(str(error)) from error
    except Cancelled as error:
        raise QgsProcessingException(tr("Cancelled.")) from error


def read_unit_names(source, field_name: str | None, units: Units) -> list[str] | None:
    """Each unit's display name from ``field_name`` (engine order), the feature id where it is
    empty; None when no field is given. Raises when the field is missing."""
    if not field_name:
        return None
    index = source.fields().lookupField(field_name)
    if index < 0:
        raise QgsProcessingException(tr(
            "The unit name field “{}” is not in the layer. Pick the field that names each unit (county, ZIP, "
            "account), or leave it empty.").format(field_name))
    from qgis.core import QgsFeatureRequest

    names = [str(int(fid)) for fid in units.fids]
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    for feature in source.getFeatures(request):
        i = units.index_of_fid.get(feature.id())
        value = feature.attribute(index)
        if i is not None and not is_empty_value(value):
            names[i] = str(value).strip()
    return names


def unit_list(indices, units: Units, unit_names: list[str] | None, limit: int = 20) -> str:
    """Units for a message: by name when names are known ("Fulton, DeKalb"), else
    "feature ids 60, 44"."""
    indices = [int(i) for i in indices]
    if unit_names is not None:
        return _ids([unit_names[i] for i in indices], limit)
    return tr("feature ids {}").format(
        _ids([int(units.fids[i]) for i in indices], limit))


def push_diagnostics(plan, units: Units, names: list[str], feedback, unit_names: list[str] | None = None) -> None:
    """Show every engine diagnostic, naming the units (by ``unit_names`` when given, else by
    feature id) and territories it concerns."""
    for diagnostic in plan.diagnostics:
        text = diagnostic.message
        if diagnostic.units:
            if unit_names is not None:
                text += " " + tr("Units: {}.").format(
                    unit_list(diagnostic.units, units, unit_names))
            else:
                fids = [int(units.fids[i]) for i in diagnostic.units]
                text += " " + tr("Feature ids: {}.").format(_ids(fids))
        if diagnostic.territories:
            text += " " + tr("Territories: {}.").format(
                ", ".join(names[k] for k in diagnostic.territories[:20]))
        if diagnostic.severity == "info":
            feedback.pushInfo(text)
        else:
            feedback.pushWarning(text)


def parse_tolerances(text: str, balance_fields: list, tr):
    """TOLERANCES ("5,10": percent, one per balance field) as fractions; None when empty."""
    text = (text or "").strip()
    if not text:
        return None
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError as error:
        raise QgsProcessingException(tr(
            "The tolerances “{}” are not numbers. Give one percentage per balance field, separated by commas "
            "(e.g. 5,10).").format(text)) from error
    expected = max(len(balance_fields), 1)
    if len(values) != expected:
        raise QgsProcessingException(tr(
            "{} tolerance(s) were given for {} balance field(s). Give one percentage per balance field, in the "
            "same order (e.g. 5,10), or leave Tolerances empty to use the single tolerance.").format(
            len(values), expected))
    if any(not (0.0 <= v < 100.0) for v in values):
        raise QgsProcessingException(tr(
            "Each tolerance is a percentage of the target from 0 up to (not including) 100; got “{}”.").format(text))
    return [v / 100.0 for v in values]


def report_lower_bound(plan, max_deviation: float, feedback, tr) -> float:
    """LOWER_BOUND (percent): the engine's proven lower bound on the worst deviation, logged."""
    bounds = getattr(plan, "lower_bounds", None)
    value = round(100.0 * float(max(bounds)) if bounds is not None and len(bounds) else 0.0, 3)
    if value > 0:
        gap = max(max_deviation - value, 0.0)
        feedback.pushInfo(tr("Proven lower bound on the worst deviation: {:.2f} % (no plan can do better); this "
                             "plan is {:.2f} points above it.").format(value, gap))
    else:
        feedback.pushInfo(tr("No lower bound on the worst deviation could be proven (LOWER_BOUND = 0)."))
    return value


def _ids(values, limit: int = 20) -> str:
    values = list(values)
    text = ", ".join(str(v) for v in values[:limit])
    return text + (f", … ({len(values)} in all)" if len(values) > limit else "")


def measure_columns(units: Units) -> list[str]:
    """Names of the workload measures as the figures see them (the unit count when none)."""
    return list(units.measure_names) if units.measure_names else ["units"]


def territory_fields(territory_field: str, measures: list[str], is_polygon: bool,
                     destination: str = "") -> QgsFields:
    """The one per-territory schema: the code (named like the units' territory field), the
    territory table's columns (name, rep, colour, locked), then the figures. Per measure ``m``:
    ``m`` (sum), ``m_tgt`` (target), ``m_dev`` (deviation, % of target, 3 decimals)."""
    fields = QgsFields()
    fields.append(make_field(territory_field, STRING, 80))
    fields.append(make_field("name", STRING, 120))
    fields.append(make_field("rep", STRING, 120))
    fields.append(make_field("colour", STRING, 7))
    fields.append(make_field("locked", INT))
    fields.append(make_field("units", INT))
    for name in measures:
        if name != "units":
            fields.append(make_field(name, DOUBLE))
        fields.append(make_field(f"{name}_tgt", DOUBLE))
        fields.append(make_field(f"{name}_dev", DOUBLE))
    fields.append(make_field("parts", INT))
    fields.append(make_field("contiguous", INT))
    fields.append(make_field("inertia_km2", DOUBLE))
    if is_polygon:
        fields.append(make_field("area_km2", DOUBLE))
        fields.append(make_field("polsby", DOUBLE))
    if is_dbf_destination(destination):  # shapefile/dBase: names of at most 10 characters, kept apart
        for index, name in enumerate(short_field_names(fields.names())):
            fields.rename(index, name)
    return fields


def deviation_percent(value: float) -> float:
    """The one rounding rule for deviations in outputs: percent of target, 3 decimals."""
    return round(100.0 * float(value), 3)


def territory_wkb_type(source_wkb: int, is_polygon: bool) -> int:
    return QgsWkbTypes.Type.MultiPolygon if is_polygon else QgsWkbTypes.Type.MultiPoint


def write_territories(sink, fields: QgsFields, names: list[str], labels: np.ndarray, figures,
                      units: Units, source_geometries: dict[int, QgsGeometry], source_crs, context,
                      feedback, start: float = 90.0, end: float = 100.0,
                      extra_values: list[list] | None = None, rows: list[TerritoryRow] | None = None) -> None:
    """One feature per territory: dissolved geometry, its territory-table row and its figures.
    ``names[k]`` is territory k's code, ``rows[k]`` its table row (name = code when None).
    ``extra_values[k]`` (optional) are appended to territory k's attributes, for fields the caller
    appended to ``fields``."""
    to_metric = QgsCoordinateTransform(source_crs, units.metric_crs, context.transformContext())
    measures = figures.sums.shape[1]
    p = len(names)
    labels = np.asarray(labels, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(p + 1))
    unit_fids = units.fids[order].tolist()
    members = [unit_fids[bounds[k]:bounds[k + 1]] for k in range(p)]
    for k, name in enumerate(names):
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled."))
        feedback.setProgress(start + (end - start) * k / max(p, 1))
        parts = [source_geometries[fid] for fid in members[k]]
        geometry = QgsGeometry.unaryUnion(parts) if parts else QgsGeometry()
        if not geometry.isNull():
            geometry.convertToMultiType()
        feature = QgsFeature(fields)
        feature.setGeometry(geometry)
        row = rows[k] if rows is not None else TerritoryRow(code=name, name=name)
        values = [name, row.name, row.rep, row.colour, 1 if row.locked else 0, int(figures.unit_count[k])]
        for a in range(measures):
            if units.measure_names:
                values.append(float(figures.sums[k, a]))
            values.append(float(figures.targets[k, a]))
            values.append(deviation_percent(figures.deviation[k, a]))
        values.append(int(figures.parts[k]))
        values.append(1 if bool(figures.contiguous[k]) else 0)
        values.append(float(figures.inertia[k]) / 1e6)
        if units.is_polygon:
            area, perimeter = _metric_area_perimeter(geometry, to_metric, units.unit_factor)
            values.append(area / 1e6)
            values.append(4 * math.pi * area / perimeter ** 2 if perimeter > 0 else None)
        if extra_values is not None:
            values.extend(extra_values[k])
        feature.setAttributes(values)
        add_feature(sink, feature)


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


def _metric_area_perimeter(geometry: QgsGeometry, transform, factor: float) -> tuple[float, float]:
    if geometry.isNull() or geometry.isEmpty():
        return 0.0, 0.0
    metric = QgsGeometry(geometry)
    metric.transform(transform)
    return metric.area() * factor * factor, metric.length() * factor


def write_units(algorithm: QgsProcessingAlgorithm, parameters, key: str, context, feedback, source, units: Units,
                new_fields: list[QgsField], values_of, progress: tuple[float, float] = (85.0, 90.0),
                keep_geometries: bool = True) -> tuple[str, dict[int, QgsGeometry]]:
    """Copy every unit of ``source`` to the sink ``key`` with all its attributes, plus ``new_fields``.

    ``values_of(i)`` gives the new fields' values for engine unit ``i``. A new field named like an
    input field takes its place (and column); the input itself is never changed. Returns the
    sink's id and each unit's geometry by feature id, for dissolving territories afterwards (empty
    when ``keep_geometries`` is False: a million accounts need no dissolve).
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
    geometries: dict[int, QgsGeometry] = {}
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
            if feedback.isCanceled():
                raise QgsProcessingException(tr("Cancelled."))
            feedback.setProgress(start + (end - start) * count / total)
        fid = feature.id()
        values = values_of(index_of_fid[fid])
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
            geometries[fid] = feature.geometry()
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
        if not dest_id or not context.willLoadLayerOnCompletion(dest_id):
            return
        styler = cls(field, values, rows, outline)
        styler.dest_id, styler.peer = dest_id, peer
        cls._alive.append(styler)
        del cls._alive[:-1000]
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)


def destination_of(parameters: dict, key: str) -> str:
    """Where a sink parameter will write (path or URI), read without side effects.

    ``parameterAsOutputLayer`` registers its destination for loading on completion, so calling it
    before ``parameterAsSink`` makes QGIS try to load a second, non-existent layer and print
    "The following layers were not correctly generated"."""
    from qgis.core import QgsProcessingOutputLayerDefinition

    value = parameters.get(key)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    return "" if value is None else str(value)


def layer_from_output(dest_id: str, context):
    return QgsProcessingUtils.mapLayerFromString(dest_id, context)


class Alignment:
    """An existing assignment of units to territories, read from a field.

    ``labels[i]`` is unit i's territory index in ``names`` (−1: no territory yet); ``values[k]``
    is the attribute value first seen for territory k, so it can be written back in the field's
    own type; ``field`` is the field itself.
    """

    def __init__(self, labels: np.ndarray, names: list[str], values: list, field):
        self.labels, self.names, self.values, self.field = labels, names, values, field

    @property
    def unassigned(self) -> int:
        return int((self.labels < 0).sum())


def read_alignment(source, field_name: str, units: Units, feedback=None) -> Alignment:
    """Read each unit's territory from ``field_name``; territories are ordered naturally by name."""
    fields = source.fields()
    index = fields.lookupField(field_name)
    if index < 0:
        raise QgsProcessingException(tr(
            "The territory field “{}” is not in the layer. Pick the field that holds each unit's territory.")
            .format(field_name))
    from qgis.core import QgsFeatureRequest

    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    raw: dict[int, str] = {}
    values: dict[str, object] = {}
    for count, feature in enumerate(source.getFeatures(request)):
        if feedback is not None and count % 1000 == 0 and feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled."))
        value = feature.attribute(index)
        if is_empty_value(value):
            continue
        name = str(value).strip()
        raw[feature.id()] = name
        values.setdefault(name, value)
    names = sorted(values, key=natural_key)
    position = {name: k for k, name in enumerate(names)}
    labels = np.full(units.count, -1, dtype=np.int64)
    for fid, name in raw.items():
        i = units.index_of_fid.get(fid)
        if i is not None:
            labels[i] = position[name]
    return Alignment(labels, names, [values[name] for name in names], fields.at(index))


def keep_codes_by_overlap(source, territory_field: str, units: Units, labels: np.ndarray, codes: list[str],
                          feedback) -> list[str]:
    """Codes for a new plan on a layer that already holds one in ``territory_field``: each new
    territory takes the code of the old territory it overlaps most (one optimal matching, by unit
    count); the others keep their new codes, renamed where they collide with an old one."""
    if source.fields().lookupField(territory_field) < 0:
        return codes
    from ..core.plan.identity import match_by_overlap

    old = read_alignment(source, territory_field, units, feedback)
    if not old.names:
        return codes
    match = match_by_overlap(old.labels, labels, len(old.names), len(codes))
    out = [old.names[int(o)] if o >= 0 else None for o in match]
    taken = {c for c in out if c is not None} | set(old.names)
    for k, code in enumerate(out):
        if code is None:
            candidate, number = codes[k], 2
            while candidate in taken:
                candidate = f"{codes[k]} ({number})"
                number += 1
            out[k] = candidate
            taken.add(candidate)
    kept = sum(1 for o in match if o >= 0)
    feedback.pushInfo(tr("{} territories keep the code of the existing territory they overlap most.").format(kept))
    return out
