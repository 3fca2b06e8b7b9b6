"""Reps read from a point layer: who they are, which territory their layer gives them, where they live.

The one reader of a reps layer, for Statistics, Territory packets and Assign reps, with one rule
for a rep without a location (a NULL or empty geometry): the rep is still read, named and given
their territory, but has no home, so everything measured from a home (distances, drives, the
map's star, "lives outside their territory") leaves them out, and the algorithm says so with
:func:`no_home_warning`. An algorithm that cannot work without a home (Assign reps matches reps to
territories by the distance from home) refuses such a rep with :func:`refuse_reps_without_home`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qgis.core import QgsCoordinateTransform, QgsGeometry, QgsPointXY, QgsProcessingException

from ..i18n import tr
from .units import Units, points_to_metric
from .values import text_or_none


@dataclass
class Rep:
    """One rep of the layer.

    ``name``: the name field's text, "Rep <feature id>" when empty (``named`` says which);
    ``territory``: the territory field's text (a territory code or name), None when empty;
    ``point``: the home in the reps layer's CRS and ``position`` in the units' metric CRS
    (metres), both None for a rep without a location.
    """

    fid: int
    name: str
    named: bool
    territory: str | None
    point: QgsPointXY | None
    position: np.ndarray | None

    @property
    def has_home(self) -> bool:
        return self.position is not None


@dataclass
class RepLayer:
    reps: list[Rep]
    crs: object  # QgsCoordinateReferenceSystem of the reps layer

    def with_home(self) -> list[Rep]:
        return [rep for rep in self.reps if rep.has_home]

    def without_home(self) -> list[Rep]:
        return [rep for rep in self.reps if not rep.has_home]

    def home_in(self, rep: Rep, crs, transform_context) -> QgsPointXY:
        """A rep's home in another CRS (e.g. the units' own)."""
        point = QgsGeometry.fromPointXY(rep.point)
        point.transform(QgsCoordinateTransform(self.crs, crs, transform_context))
        return point.asPoint()


def read_reps(source, name_field: str | None, territory_field: str | None, units: Units,
              transform_context) -> RepLayer:
    """Every feature of ``source`` as a :class:`Rep` (feature order).

    ``name_field`` names the reps and ``territory_field`` gives each rep's territory; either may
    be empty (not read). Raises ``QgsProcessingException`` when a named field is not in the layer
    or a home cannot be placed in the units' metric CRS (a wrong CRS).
    """
    fields = source.fields()
    for label, field_name in ((tr("rep name"), name_field), (tr("rep territory"), territory_field)):
        if field_name and fields.lookupField(field_name) < 0:
            raise QgsProcessingException(tr(
                "The {} field “{}” is not in the reps layer. Pick one of its fields.").format(label, field_name))
    name_index = fields.lookupField(name_field) if name_field else -1
    territory_index = fields.lookupField(territory_field) if territory_field else -1
    reps: list[Rep] = []
    for feature in source.getFeatures():
        name = text_or_none(feature.attribute(name_index)) if name_index >= 0 else None
        territory = text_or_none(feature.attribute(territory_index)) if territory_index >= 0 else None
        geometry = feature.geometry()
        point = None
        if geometry is not None and not geometry.isNull() and not geometry.isEmpty():
            point = geometry.centroid().asPoint()
        reps.append(Rep(fid=feature.id(), name=name if name is not None else tr("Rep {}").format(feature.id()),
                        named=name is not None, territory=territory, point=point, position=None))
    placed = [rep for rep in reps if rep.point is not None]
    if placed:
        positions = points_to_metric([rep.point for rep in placed], source.sourceCrs(), units, transform_context)
        if not np.all(np.isfinite(positions)):
            raise QgsProcessingException(tr(
                "Some reps could not be placed in the units' coordinate system; check the reps layer's CRS."))
        for rep, position in zip(placed, positions):
            rep.position = np.asarray(position, dtype=float)
    return RepLayer(reps, source.sourceCrs())


def no_home_warning(rep: Rep) -> str:
    """The one message for a rep without a location, where the algorithm goes on without the home."""
    return tr("Rep “{}” (feature {}) has no location, so nothing is measured from their home. Give the rep a "
              "point at their home to measure it.").format(rep.name, rep.fid)


def refuse_reps_without_home(layer: RepLayer, why: str) -> None:
    """Raise, naming the first rep without a location, where the algorithm needs every home (``why``)."""
    missing = layer.without_home()
    if missing:
        rep = missing[0]
        raise QgsProcessingException(tr(
            "Rep “{}” (feature {}) has no location. {} Place the rep at their home or remove the feature.")
            .format(rep.name, rep.fid, why))


#: how many units nearest a home (by their centres) are looked at to place it
_NEAREST = 16


def home_outside_km(position, k: int, labels: np.ndarray, positions: np.ndarray, is_polygon: bool,
                    geometry_of) -> float | None:
    """How far (km) the home at ``position`` (metres, the units' metric CRS) lies outside territory
    ``k``: None when it lies inside (in one of its units; for point units, nearest to one of its units).

    ``geometry_of(i)`` gives unit i's geometry in the same metres (polygons only). The distance is to
    the nearest unit of the territory: its outline for polygons, its point otherwise. Only the units
    nearest the home are looked at, so a layer of a million units is not read for one rep."""
    position = np.asarray(position, dtype=float).reshape(2)
    members = np.flatnonzero(labels == k)
    if len(members) == 0 or len(positions) == 0:
        return None
    point = QgsGeometry.fromPointXY(QgsPointXY(float(position[0]), float(position[1])))
    near = np.argsort(np.hypot(*(positions - position).T))[:_NEAREST]
    if is_polygon:
        home_unit = next((int(i) for i in near if geometry_of(int(i)).intersects(point)), -1)
    else:
        home_unit = int(near[0])
    if home_unit >= 0 and labels[home_unit] == k:
        return None
    nearest_members = members[np.argsort(np.hypot(*(positions[members] - position).T))[:_NEAREST]]
    if is_polygon:
        metres = min(geometry_of(int(i)).distance(point) for i in nearest_members)
    else:
        metres = float(np.hypot(*(positions[nearest_members[0]] - position)))
    return metres / 1000.0


def outside_note(km: float) -> str:
    """The one wording for a rep whose home lies outside their territory (panel, packets, Statistics)."""
    return tr("lives outside the territory ({:.1f} km away)").format(km)
