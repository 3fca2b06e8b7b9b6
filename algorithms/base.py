"""The base of the provider's algorithms: group, icon, translation, parameter checks, output checks
and the removal of partial outputs after a failed run."""

from __future__ import annotations

import functools
import gc
import math
import os
import traceback

import numpy as np
from qgis.core import (
    QgsFeatureRequest,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)

from ..core.problem import ProblemError
from ..i18n import tr
from ..layers.unit_values import with_index as units_with_index
from ..layers.units import UnitDataError, Units, read_units
from ..resources import icon, icon_path
from .messages import listed
from .output_files import check_output_path, file_path_of_destination, files_of_output


class TerritoryAlgorithm(QgsProcessingAlgorithm):
    """Base for the provider's algorithms: group, icon, translation and error helpers.

    An algorithm names itself with ``algorithm_id`` (its id in the provider: a contract, never
    changed), ``display_name`` and ``help_text`` (English; the help in parts, each translated as a
    whole when shown).
    """

    algorithm_id = ""
    display_name = ""
    help_text: tuple[str, ...] = ()

    def tr(self, text: str) -> str:
        return tr(text)

    def name(self) -> str:
        return self.algorithm_id

    def displayName(self) -> str:
        return self.tr(self.display_name)

    def shortHelpString(self) -> str:
        return "".join(self.tr(part) for part in self.help_text)

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
            self._new_output_files += [f for f in files_of_output(path) if not os.path.exists(f)]

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
                                 .format(len(units.repaired), listed(units.repaired)))
        for a, name in enumerate(units.measure_names):
            if units.count and not np.any(units.workloads[:, a] > 0):
                feedback.pushWarning(self.tr(
                    "The balance field “{}” is 0 for every unit, so there is nothing to balance or measure "
                    "on it (its targets and deviations are 0). Check that it holds the workload (a failed "
                    "join leaves zeros), or leave it out.").format(name))
        return units

    def with_index(self, source, units: Units, weights, territory_count: int, feedback) -> Units:
        """``units`` with the workload index of ``weights`` as one more measure (``index``), scaled
        for ``territory_count`` territories; ``units`` unchanged when ``weights`` is None."""
        if weights is None:
            return units
        try:
            return units_with_index(units, source, weights, territory_count, feedback)
        except (UnitDataError, ProblemError) as error:
            raise QgsProcessingException(str(error)) from error


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
