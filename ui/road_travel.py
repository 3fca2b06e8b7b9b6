"""Travel times by road within the active territory, when the plan names a road network: from the
territory's centre unit (the member nearest its workload-weighted centre), the mean,
workload-weighted mean and longest drive, and how many units lie off the network."""

from __future__ import annotations

import numpy as np
from qgis.core import QgsProject, QgsVectorLayer

from ..core import travel
from ..core.metrics import combined_weight
from ..layers.network import NetworkDataError, NetworkSettings, read_network

#: what reading or snapping a road network raises; the message names the problem and the fix
NETWORK_ERRORS = (NetworkDataError, travel.NetworkError)


class RoadTravel:
    """The road network of a plan, read and snapped to the units once per network layer and read of
    the units (the panel asks again after every change of the active territory)."""

    def __init__(self, project: QgsProject):
        self.project = project
        self._cached: tuple | None = None  # ((layer id, units read), (network, snapped units))

    def figures(self, network_layer_id: str, units, positions: np.ndarray, members: np.ndarray,
                workloads: np.ndarray, fids: np.ndarray) -> dict | None:
        """Minutes by road within the territory of unit indexes ``members``: mean, weighted (by
        workload), max, off_network (units not reached) and centre (its feature id). None without a
        network or before the units' positions are known; raises one of :data:`NETWORK_ERRORS` when
        the network cannot be used."""
        roads = self._network(network_layer_id, units, positions)
        if roads is None or len(members) == 0:
            return None
        network, snapped = roads
        weights = combined_weight(workloads[members])
        centre = members[travel.centre_units(np.zeros(len(members), dtype=np.int64), positions[members], 1,
                                             weights)[0]]
        on = snapped.on_network[members]
        minutes = travel.travel_minutes(network, snapped.node[[centre]], snapped.node[members[on]])[0]
        finite = np.isfinite(minutes)
        off_network = int((~on).sum()) + int((~finite).sum())
        if not finite.any():
            return {"mean": float("nan"), "weighted": float("nan"), "max": float("nan"),
                    "off_network": off_network, "centre": int(fids[centre])}
        weight = weights[on][finite]
        return {"mean": float(minutes[finite].mean()), "max": float(minutes[finite].max()),
                "weighted": float((minutes[finite] * weight).sum() / weight.sum()) if weight.sum() > 0
                else float("nan"),
                "off_network": off_network, "centre": int(fids[centre])}

    def _network(self, layer_id: str, units, positions: np.ndarray | None):
        layer = self.project.mapLayer(layer_id) if layer_id else None
        if not isinstance(layer, QgsVectorLayer) or units is None or positions is None:
            return None
        key = (layer.id(), id(units))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        roads = read_network(layer, units, NetworkSettings(), self.project.transformContext(), keep_roads=False)
        snapped = travel.snap(roads.network, positions)
        self._cached = (key, (roads.network, snapped))
        return self._cached[1]

