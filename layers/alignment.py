"""An alignment read from a layer: each unit's territory (by index into the territory codes, in
natural order), and unit names for messages and reports."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsFeatureRequest, QgsProcessingException

from ..i18n import tr
from .units import Units
from .values import natural_key, text_or_none


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
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    raw: dict[int, str] = {}
    values: dict[str, object] = {}
    for count, feature in enumerate(source.getFeatures(request)):
        if feedback is not None and count % 1000 == 0 and feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled."))
        value = feature.attribute(index)
        name = text_or_none(value)
        if name is None:
            continue
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
    names = [str(int(fid)) for fid in units.fids]
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry).setSubsetOfAttributes([index])
    for feature in source.getFeatures(request):
        i = units.index_of_fid.get(feature.id())
        name = text_or_none(feature.attribute(index))
        if i is not None and name is not None:
            names[i] = name
    return names
