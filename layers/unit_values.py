"""Numbers per unit beyond the balance fields: the ingredients of the workload index, sales and
potential. Read in the engine's unit order, with errors that name the field, its role and the fix;
and the index appended to the units as one more measure, so everything that balances or measures
workloads (the engine, the figures, the outputs) treats it like any balance field."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from qgis.core import QgsFeatureRequest

from ..core.plan.index import INDEX_NAME, IndexWeights, check_index_fields, unit_index
from ..i18n import tr
from .units import UnitDataError, Units
from .values import is_null


def read_unit_values(source, field_names: list[str], units: Units, role: str, feedback=None) -> np.ndarray:
    """(n, f) values of ``field_names`` per unit, in ``units`` order. ``role`` says what the field
    is for in messages ("sales", "potential", "index weight"). Raises :class:`UnitDataError` when
    a field is missing or not numeric, or a value is NULL, negative or not finite."""
    fields = source.fields()
    indexes = []
    for name in field_names:
        index = fields.lookupField(name)
        if index < 0:
            raise UnitDataError(tr("The {} field “{}” is not in the units layer. Pick one of its numeric fields.")
                                .format(role, name))
        if not fields.at(index).isNumeric():
            raise UnitDataError(tr("The {} field “{}” is not numeric ({}). Choose a numeric field, or convert it with "
                                   "the Field Calculator.").format(role, name, fields.at(index).typeName()))
        indexes.append(index)
    values = np.zeros((units.count, len(field_names)))
    if not field_names:
        return values
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(indexes)
    for count, feature in enumerate(source.getFeatures(request)):
        if feedback is not None and count % 1000 == 0 and feedback.isCanceled():
            raise UnitDataError(tr("Cancelled."))
        i = units.index_of_fid.get(feature.id())
        if i is None:
            continue
        for column, (name, index) in enumerate(zip(field_names, indexes)):
            values[i, column] = _value(feature, index, name, role)
    return values


def read_values_by_fid(layer, field_names: list[str], fids, role: str, request: QgsFeatureRequest | None = None
                       ) -> np.ndarray:
    """(n, f) values of ``field_names`` for the features ``fids`` (in that order), read without
    geometry; the same errors as :func:`read_unit_values`. Features not in ``fids`` are skipped."""
    fields = layer.fields()
    indexes = [fields.lookupField(name) for name in field_names]
    for name, index in zip(field_names, indexes):
        if index < 0:
            raise UnitDataError(tr("The {} field “{}” is not in the layer. Pick one of its numeric fields.")
                                .format(role, name))
    position = {int(fid): i for i, fid in enumerate(fids)}
    values = np.zeros((len(position), len(field_names)))
    wanted = QgsFeatureRequest(request) if request is not None else QgsFeatureRequest()
    wanted.setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes(indexes)
    for feature in layer.getFeatures(wanted):
        i = position.get(int(feature.id()))
        if i is not None:
            for column, (name, index) in enumerate(zip(field_names, indexes)):
                values[i, column] = _value(feature, index, name, role)
    return values


def _value(feature, index: int, name: str, role: str) -> float:
    value = feature.attribute(index)
    if is_null(value):
        raise UnitDataError(tr(
            "Feature {} has no value (NULL) in the {} field “{}”. Fill it in (0 where there is none) or filter the "
            "feature out.").format(feature.id(), role, name))
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise UnitDataError(tr(
            "Feature {} has a negative or invalid value ({}) in the {} field “{}”. Values must be zero or more; "
            "correct it.").format(feature.id(), value, role, name))
    return number


def check_index_weights(source, weights: IndexWeights) -> None:
    """Raise when a weighted field is not a numeric field of ``source`` (naming it and the fix)."""
    fields = source.fields()
    check_index_fields(weights, fields.names(), [f.name() for f in fields if f.isNumeric()])


def with_index(units: Units, source, weights: IndexWeights, territory_count: int, feedback=None) -> Units:
    """``units`` with the workload index as one more measure (last column, named ``index``),
    scaled so the average of ``territory_count`` territories scores 1,000. Raises
    :class:`UnitDataError` or the core's ``IndexWeightsError`` naming the field and the fix."""
    if INDEX_NAME in units.measure_names:
        raise UnitDataError(tr(
            "A balance field is named “{}”, like the workload index. Leave it out of the balance fields (the index "
            "is balanced on its own), or rename the field.").format(INDEX_NAME))
    check_index_weights(source, weights)
    values = read_unit_values(source, list(weights.fields), units, tr("index weight"), feedback)
    index = unit_index(values, weights, territory_count)
    return dataclasses.replace(units, workloads=np.column_stack([units.workloads, index]),
                               measure_names=[*units.measure_names, INDEX_NAME])
