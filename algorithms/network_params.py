"""Travel time and barriers for Build and Rebalance: the parameters and the one helper they call.

The engine stays straight-line: in road-network mode it gets positions whose distances
approximate travel minutes (``core.travel``), and the figures written out are measured on the
real positions again. Everything here is optional; without a network or barriers nothing changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..compat import DOUBLE, make_field
from ..core import travel
from ..core.metrics import combined_weight, plan_figures
from ..core.progress import Cancelled
from ..i18n import tr
from ..layers.network import NetworkDataError, NetworkSettings, cut_by_barriers, read_barriers, read_network
from ..layers.values import is_null
from .engine_run import engine_progress

NETWORK = "NETWORK"
SPEED_FIELD = "SPEED_FIELD"
DEFAULT_SPEED = "DEFAULT_SPEED"
DIRECTION_FIELD = "DIRECTION_FIELD"
VALUE_FORWARD = "VALUE_FORWARD"
VALUE_BACKWARD = "VALUE_BACKWARD"
VALUE_BOTH = "VALUE_BOTH"
DEFAULT_DIRECTION = "DEFAULT_DIRECTION"
NETWORK_TOLERANCE = "NETWORK_TOLERANCE"
DISTANCE = "DISTANCE"
MAX_TRAVEL_TIME = "MAX_TRAVEL_TIME"
BARRIERS = "BARRIERS"
TRAVEL_FIELD = "travel_min"
NAME_FIELDS = ("name", "nom", "namelsad", "label", "title")




HELP = (
    "<b>Distance</b>: straight line (default), or road network: compactness and centres in travel "
    "minutes on the <b>road network</b>.\n"
    "<b>Road network</b>: any line layer; every vertex is a node and lines joined at shared vertices "
    "(within the <b>network tolerance</b>, in the units' CRS units) connect, as in QGIS's shortest "
    "path tools. <b>Speed field</b> in km/h (empty or 0: the <b>default speed</b>); <b>direction "
    "field</b> with the values meaning forward (digitising direction), backward and both ways, else "
    "the <b>default direction</b>. With a network the units get <b>travel_min</b>: minutes from their "
    "territory's centre unit (or seed) by road. Units farther than 1 km (or 10 times the median "
    "unit's distance) from the network are named in the log and get no travel time.\n"
    "<b>Maximum travel time</b> (minutes, needs a network): units farther from their centre are moved "
    "to a neighbouring territory whose centre is within the limit when balance allows; those that "
    "cannot be are named.\n"
    "<b>Barriers</b>: lines (rivers, ridges) or polygons (restricted areas). Units whose shared "
    "boundary lies along a barrier, or whose connecting line crosses one, are not neighbours, unless "
    "a road of the network crosses the barrier between them (a bridge)."
)


def add_travel_parameters(algorithm, input_name: str = "INPUT", network_only: bool = False) -> None:
    """Add the travel-time and barrier parameters to ``algorithm`` (``network_only``: just the road
    network and its settings, for Assign reps)."""
    t = algorithm.tr
    params = [
        QgsProcessingParameterEnum(
            DISTANCE, t("Distance"), options=[t("Straight line"), t("Road network (travel time)")], defaultValue=0),
        QgsProcessingParameterFeatureSource(
            NETWORK, t("Road network"), [QgsProcessing.SourceType.TypeVectorLine], optional=True),
        QgsProcessingParameterField(
            SPEED_FIELD, t("Speed field (km/h)"), parentLayerParameterName=NETWORK,
            type=QgsProcessingParameterField.DataType.Numeric, optional=True),
        QgsProcessingParameterNumber(
            DEFAULT_SPEED, t("Default speed (km/h)"), QgsProcessingParameterNumber.Type.Double, defaultValue=50.0,
            minValue=0.000001),
        QgsProcessingParameterField(
            DIRECTION_FIELD, t("Direction field"), parentLayerParameterName=NETWORK, optional=True),
        QgsProcessingParameterString(VALUE_FORWARD, t("Value for forward direction"), optional=True),
        QgsProcessingParameterString(VALUE_BACKWARD, t("Value for backward direction"), optional=True),
        QgsProcessingParameterString(VALUE_BOTH, t("Value for both directions"), optional=True),
        QgsProcessingParameterEnum(
            DEFAULT_DIRECTION, t("Default direction"),
            options=[t("Forward direction"), t("Backward direction"), t("Both directions")], defaultValue=2),
        QgsProcessingParameterDistance(
            NETWORK_TOLERANCE, t("Network topology tolerance"), defaultValue=0.0, parentParameterName=input_name,
            minValue=0.0),
        QgsProcessingParameterNumber(
            MAX_TRAVEL_TIME, t("Maximum travel time from the territory centre (minutes)"),
            QgsProcessingParameterNumber.Type.Double, optional=True, minValue=0.0),
        QgsProcessingParameterFeatureSource(
            BARRIERS, t("Barriers (rivers, ridges, restricted areas)"),
            [QgsProcessing.SourceType.TypeVectorLine, QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
    ]
    if network_only:
        params = [param for param in params if param.name() not in (DISTANCE, MAX_TRAVEL_TIME, BARRIERS)]
    advanced = {SPEED_FIELD, DEFAULT_SPEED, DIRECTION_FIELD, VALUE_FORWARD, VALUE_BACKWARD, VALUE_BOTH,
                DEFAULT_DIRECTION, NETWORK_TOLERANCE}
    for param in params:
        if param.name() in advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        algorithm.addParameter(param)


class TravelRun:
    """The travel side of one Build or Rebalance run.

    ``TravelRun.read(...)`` reads the network and barriers and cuts the units' adjacency;
    ``engine_problem`` swaps in travel-time positions (road mode); ``finish`` measures each unit's
    travel time, applies the maximum travel time and returns the labels and figures to write.
    """

    def __init__(self):
        self.road = None            # layers.network.RoadLayer
        self.road_mode = False
        self.max_minutes = None
        self.setup = None           # core.travel.TravelSetup (road mode)
        self.snapped = None         # core.travel.Snap of the units
        self.seed_snap = None
        self.travel_min = None
        self.names = {}

    @property
    def active(self) -> bool:
        return self.road is not None

    @classmethod
    def read(cls, algorithm, parameters, context, feedback, source, units) -> TravelRun:
        run = cls()
        network = algorithm.parameterAsSource(parameters, NETWORK, context)
        run.road_mode = algorithm.parameterAsEnum(parameters, DISTANCE, context) == 1
        raw_max = parameters.get(MAX_TRAVEL_TIME)
        if raw_max is not None and str(raw_max).strip() != "":
            value = algorithm.parameterAsDouble(parameters, MAX_TRAVEL_TIME, context)
            if value > 0:
                run.max_minutes = value
        if network is None and (run.road_mode or run.max_minutes is not None):
            what = tr("Road-network distance") if run.road_mode else tr("A maximum travel time")
            raise QgsProcessingException(tr(
                "{} needs a road network. Choose a line layer of roads as the road network, or use straight-line "
                "distance and leave the maximum travel time empty.").format(what))
        barriers = algorithm.parameterAsSource(parameters, BARRIERS, context)
        try:
            if network is not None:
                run.road = read_road_network(algorithm, parameters, context, feedback, network, units,
                                             keep_roads=barriers is not None)
            if barriers is not None:
                feedback.setProgressText(tr("Cutting neighbours across barriers…"))
                lines = read_barriers(barriers, units, context.transformContext())
                cut, removed = cut_by_barriers(units, units.adjacency, lines, run.road, feedback)
                if cut is None:
                    raise QgsProcessingException(tr("Cancelled."))
                units.adjacency = cut
                feedback.pushInfo(tr("Barriers: {} neighbour pairs cut.").format(removed))
        except NetworkDataError as error:
            raise QgsProcessingException(str(error)) from error
        run.names = _unit_names(source, units)
        return run

    def engine_problem(self, problem, feedback, random_seed: int = 0):
        """The Problem the engine solves: travel-time positions in road mode, else unchanged."""
        if not self.active:
            return problem
        if self.road_mode:
            feedback.setProgressText(tr("Measuring travel times from landmarks…"))
            try:
                self.setup = travel.prepare(self.road.network, problem.positions, problem.seeds,
                                            random_seed=random_seed, progress=engine_progress(feedback, 25, 30))
            except Cancelled as error:
                raise QgsProcessingException(tr("Cancelled.")) from error
            self.snapped, self.seed_snap = self.setup.units, self.setup.seeds
            feedback.pushInfo(tr("Travel-time embedding: {} landmarks, relative error {:.1%}.")
                              .format(len(self.setup.embedding.landmarks), self.setup.embedding.stress))
            engine = replace(problem, positions=self.setup.positions, seeds=self.setup.seed_positions)
        else:
            self.snapped = travel.snap(self.road.network, problem.positions)
            if problem.seeds is not None:
                self.seed_snap = travel.snap(self.road.network, problem.seeds, self.snapped.limit)
            engine = problem
        off = np.flatnonzero(~self.snapped.on_network)
        if len(off):
            feedback.pushWarning(tr(
                "{} units are more than {:.0f} m from the road network and get no travel time: {}. Extend the "
                "network to them, or check that both layers are in the right place.").format(
                len(off), self.snapped.limit, self.describe(off)))
        if self.seed_snap is not None and not self.seed_snap.on_network.all():
            far = np.flatnonzero(~self.seed_snap.on_network)
            feedback.pushWarning(tr("Seeds {} are more than {:.0f} m from the road network; their travel is "
                                    "measured from the nearest road.").format(
                ", ".join(str(k + 1) for k in far), self.snapped.limit))
        return engine

    def finish(self, labels, problem, engine_problem, figures, feedback, territory_names):
        """Travel times of the plan, the maximum-travel repair, and figures on real positions.

        ``problem`` has the real positions; ``engine_problem`` is what the engine solved.
        Returns (labels, figures)."""
        labels = np.asarray(labels, dtype=np.int64)
        if not self.active:
            return labels, figures
        if engine_problem is not problem:
            figures = self._figures(labels, problem, engine_problem)
        p = int(problem.territory_count)
        result = self._travel(labels, p, problem, engine_problem)
        if self.max_minutes is not None:
            over = np.flatnonzero(result.travel_min > self.max_minutes + 1e-9)
            if len(over):
                labels, moved = travel.repair_max_travel(labels, problem, result, self.max_minutes,
                                                         locked=problem.locked)
                if moved:
                    feedback.pushInfo(tr("{} units moved to a neighbouring territory whose centre is within {:g} "
                                         "minutes: {}.").format(len(moved), self.max_minutes,
                                                                self.describe(moved)))
                    figures = self._figures(labels, problem, engine_problem)
                    result = self._travel(labels, p, problem, engine_problem, result.centre_nodes)
                over = np.flatnonzero(result.travel_min > self.max_minutes + 1e-9)
                if len(over):
                    feedback.pushWarning(tr(
                        "{} units are more than {:g} minutes from their territory's centre and no neighbouring "
                        "territory can take them within the balance tolerance: {}. Raise the maximum travel "
                        "time, the tolerance or the number of territories.").format(
                        len(over), self.max_minutes, self.describe(over)))
        self.travel_min = result.travel_min
        mean, most = result.territory_mean_max(labels, p)
        if np.isfinite(most).any():
            worst = int(np.nanargmax(most))
            feedback.pushInfo(tr("Travel from territory centres: mean {:.1f} min; longest {:.1f} min ({}).")
                              .format(float(np.nanmean(result.travel_min)), float(most[worst]),
                                      territory_names[worst]))
        return labels, figures

    @staticmethod
    def _figures(labels, problem, engine_problem):
        """Sums and compactness on the real positions; pieces as the engine counted them (islands
        joined to their nearest unit in travel time in road mode)."""
        figures = plan_figures(labels, problem)
        if engine_problem is not problem:
            engine = plan_figures(labels, engine_problem)
            figures = replace(figures, parts=engine.parts, contiguous=engine.contiguous,
                              noncontiguous=engine.noncontiguous)
        return figures

    def _travel(self, labels, p, problem, engine_problem, centre_nodes=None):
        if centre_nodes is None:
            if self.seed_snap is not None:
                centre_nodes = self.seed_snap.node.copy()
            else:
                weights = combined_weight(problem.workloads)
                centres = travel.centre_units(labels, np.asarray(engine_problem.positions), p, weights)
                centre_nodes = np.where(centres >= 0, self.snapped.node[np.maximum(centres, 0)], -1)
        return travel.plan_travel(self.road.network, self.snapped.node, self.snapped.on_network, labels,
                                  centre_nodes, np.asarray(engine_problem.positions), self.max_minutes)

    # -- output ----------------------------------------------------------------------------
    def fields(self) -> list:
        return [make_field(TRAVEL_FIELD, DOUBLE)] if self.active else []

    def values(self, i: int) -> list:
        if not self.active:
            return []
        value = self.travel_min[i]
        return [round(float(value), 3) if np.isfinite(value) else None]

    def describe(self, indices) -> str:
        """Units by name (and feature id) for messages."""
        indices = list(indices)
        text = ", ".join(self.names.get(int(i), "") for i in indices[:20])
        return text + (f", … ({len(indices)} in all)" if len(indices) > 20 else "")


def read_road_network(algorithm, parameters, context, feedback, network, units, keep_roads: bool = False):
    """The NETWORK parameter's layer as a RoadLayer in the units' metric CRS (``keep_roads``: with
    the road geometries, for barriers)."""
    feedback.setProgressText(tr("Reading the road network…"))
    settings = NetworkSettings(
        speed_field=algorithm.parameterAsString(parameters, SPEED_FIELD, context),
        default_speed=algorithm.parameterAsDouble(parameters, DEFAULT_SPEED, context),
        direction_field=algorithm.parameterAsString(parameters, DIRECTION_FIELD, context),
        value_forward=algorithm.parameterAsString(parameters, VALUE_FORWARD, context),
        value_backward=algorithm.parameterAsString(parameters, VALUE_BACKWARD, context),
        value_both=algorithm.parameterAsString(parameters, VALUE_BOTH, context),
        default_direction=algorithm.parameterAsEnum(parameters, DEFAULT_DIRECTION, context),
        tolerance=algorithm.parameterAsDouble(parameters, NETWORK_TOLERANCE, context))
    try:
        road = read_network(network, units, settings, context.transformContext(), feedback, keep_roads)
    except NetworkDataError as error:
        raise QgsProcessingException(str(error)) from error
    if road is None:
        raise QgsProcessingException(tr("Cancelled."))
    net = road.network
    feedback.pushInfo(tr("Road network: {} nodes, {} one-way links; {} nodes off its main piece.")
                      .format(net.node_count, net.link_count, int((~net.main).sum())))
    return road


def rep_travel_minutes(algorithm, parameters, context, feedback, units, homes):
    """(reps, units) minutes by road from each rep's home to each unit, or None without a network.
    Units off the network or unreachable are ``inf``; they are named in the log."""
    network = algorithm.parameterAsSource(parameters, NETWORK, context)
    if network is None:
        return None
    road = read_road_network(algorithm, parameters, context, feedback, network, units)
    snapped = travel.snap(road.network, units.positions)
    homes_snapped = travel.snap(road.network, homes, snapped.limit)
    minutes = travel.travel_minutes(road.network, homes_snapped.node, snapped.node)
    minutes[:, ~snapped.on_network] = np.inf
    off = np.flatnonzero(~snapped.on_network)
    if len(off):
        feedback.pushWarning(tr("{} units are more than {:.0f} m from the road network and count at the longest "
                                "travel time of the layer: feature ids {}.").format(
            len(off), snapped.limit, ", ".join(str(int(units.fids[i])) for i in off[:20])))
    return minutes


def territory_travel_costs(minutes, weights, labels, territory_count: int) -> np.ndarray:
    """(territories, reps) cost: the workload-weighted sum of minutes from each rep's home to the
    territory's units; unreachable units count at the longest finite time (twice)."""
    finite = minutes[np.isfinite(minutes)]
    penalty = 2.0 * float(finite.max()) if finite.size else 1.0
    filled = np.where(np.isfinite(minutes), minutes, penalty)
    costs = np.zeros((territory_count, minutes.shape[0]))
    labels = np.asarray(labels)
    for k in range(territory_count):
        members = np.flatnonzero(labels == k)
        if len(members):
            costs[k] = filled[:, members] @ np.asarray(weights, dtype=float)[members]
    return costs


def _unit_names(source, units) -> dict[int, str]:
    fields = source.fields()
    name_index = -1
    for f in fields:
        if f.name().lower() in NAME_FIELDS:
            name_index = fields.lookupField(f.name())
            break
    out = {}
    if name_index >= 0:
        from qgis.core import QgsFeatureRequest

        request = QgsFeatureRequest().setNoAttributes().setSubsetOfAttributes([name_index])
        request.setFlags(QgsFeatureRequest.Flag.NoGeometry)
        for feature in source.getFeatures(request):
            i = units.index_of_fid.get(feature.id())
            if i is not None:
                value = feature.attribute(name_index)
                label = "" if is_null(value) else str(value)
                out[i] = f"“{label}” (feature {feature.id()})" if label else f"feature {feature.id()}"
    for i, fid in enumerate(units.fids):
        out.setdefault(i, f"feature {int(fid)}")
    return out
