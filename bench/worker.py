"""One benchmark job in its own process, so its time and peak memory are its own.

    python worker.py JOB INSTANCE.npz OUT_PREFIX [GPKG]

Jobs: ``engine`` (build_territories on the arrays; no QGIS loaded), ``lp`` (the LP lower bound),
``rebalance`` (10 % workload shift, then rebalance and rebuild), ``e2e`` (processing.run of
territory:buildterritories on the GeoPackage inside a real QGIS), ``kmeans``
(native:kmeansclustering on the same layer), ``gpkg`` (write the instance's polygons as a
GeoPackage) and ``real`` (read a bundled dataset with layers.units.read_units into an .npz).

Each job writes OUT_PREFIX.json (seconds, peak RSS of this process, …) and, when it makes a plan,
OUT_PREFIX.npy (the territory of every unit, in the instance's unit order). Peak RSS is
the process's VmHWM: the whole process (interpreter, numpy/scipy, QGIS for the
QGIS jobs, the instance data), the memory a user's machine must have for the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, make_importable, problem_for  # noqa: E402
from instances import REAL, Instance  # noqa: E402
from nat import LAYER as NAT_LAYER  # noqa: E402
from nat import NAT_CASES, fetch  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM). Not ru_maxrss: Linux carries the parent's
    RSS at fork into a child's ru_maxrss across exec, which would charge run.py's memory here."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def write(out_prefix: str, record: dict, labels: np.ndarray | None = None) -> None:
    record.setdefault("peak_rss_mb", peak_rss_mb())
    if labels is not None:
        np.save(out_prefix + ".npy", np.asarray(labels, dtype=np.int64))
    tmp = out_prefix + ".json.tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle)
    os.replace(tmp, out_prefix + ".json")


# --- jobs without QGIS ------------------------------------------------------------------------

def job_engine(instance: Instance, out_prefix: str) -> None:
    make_importable()
    from territory_planner.core.engine import build_territories

    problem = problem_for(instance)
    before = peak_rss_mb()
    start = time.perf_counter()
    plan = build_territories(problem)
    seconds = time.perf_counter() - start
    lower = plan.lower_bounds
    write(out_prefix, {
        "seconds": seconds, "rss_before_mb": before,
        "lower_bounds_pct": None if lower is None else [float(100 * v) for v in np.ravel(lower)],
        "diagnostics": [d.code for d in plan.diagnostics],
    }, plan.labels)


def job_lp(instance: Instance, out_prefix: str) -> None:
    make_importable()
    from territory_planner.core.solve.bounds import lp_lower_bound

    problem = problem_for(instance)
    limit = float(os.environ.get("BENCH_LP_TIME_LIMIT", "600"))
    start = time.perf_counter()
    bound = lp_lower_bound(problem, time_limit=limit)
    seconds = time.perf_counter() - start
    write(out_prefix, {"seconds": seconds, "bound": _bound_value(bound), "detail": _plain(bound)})


def _bound_value(bound) -> float:
    if isinstance(bound, (int, float, np.floating)):
        return float(bound)
    for name in ("value", "bound", "lower_bound", "objective"):
        if hasattr(bound, name):
            return float(getattr(bound, name))
    raise TypeError(f"cannot read a number from the lower bound {bound!r}")


def _plain(value):
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__
                if not isinstance(getattr(value, k), np.ndarray) or getattr(value, k).size <= 16}
    if isinstance(value, np.ndarray) and value.size <= 16:
        return value.tolist()
    return repr(value)[:200]


def shifted_workloads(instance: Instance, shift: float = 0.10) -> np.ndarray:
    """The instance's workloads after a 10 % random shift: every unit's workloads scaled by
    (1 + shift·t)(1 + shift·u), t its position along a random direction scaled to [−1, 1] (one side
    of the map grows, the other shrinks) and u uniform in [−1, 1] per unit and measure."""
    rng = np.random.default_rng(20240 + instance.seed + 7 * instance.size)
    angle = rng.uniform(0.0, 2 * np.pi)
    along = instance.positions @ np.array([np.cos(angle), np.sin(angle)])
    trend = 2.0 * (along - along.min()) / max(np.ptp(along), 1e-9) - 1.0
    noise = rng.uniform(-1.0, 1.0, instance.workloads.shape)
    return instance.workloads * (1.0 + shift * trend)[:, None] * (1.0 + shift * noise)


def job_rebalance(instance: Instance, out_prefix: str) -> None:
    make_importable()
    from common import figures_record
    from territory_planner.core.engine import build_territories, rebalance_territories

    before_plan = build_territories(problem_for(instance))
    shifted = shifted_workloads(instance)
    shifted_problem = problem_for(instance, workloads=shifted, initial=np.asarray(before_plan.labels))
    stale = figures_record(before_plan.labels, shifted_problem)

    start = time.perf_counter()
    rebalanced = rebalance_territories(shifted_problem)
    rebalance_seconds = time.perf_counter() - start
    start = time.perf_counter()
    rebuilt = build_territories(problem_for(instance, workloads=shifted))
    rebuild_seconds = time.perf_counter() - start
    old = np.asarray(before_plan.labels)
    record = {
        "stale": stale,
        "rebalance": {
            "seconds": rebalance_seconds,
            "changed_units": changed_units(old, np.asarray(rebalanced.labels), instance.territories),
            "engine_changed_units": int(rebalanced.changed_units),
            "figures": figures_record(rebalanced.labels, shifted_problem),
        },
        "rebuild": {
            "seconds": rebuild_seconds,
            "changed_units": changed_units(old, np.asarray(rebuilt.labels), instance.territories),
            "figures": figures_record(rebuilt.labels, shifted_problem),
        },
    }
    write(out_prefix, record)


def changed_units(old: np.ndarray, new: np.ndarray, territories: int) -> int:
    """Units whose territory changed, after matching the new territories to the old ones so as to
    keep the most units (a rebuilt plan numbers its territories afresh)."""
    from scipy.optimize import linear_sum_assignment

    overlap = np.zeros((territories, territories))
    np.add.at(overlap, (old, new), 1)
    rows, cols = linear_sum_assignment(-overlap)
    kept = overlap[rows, cols].sum()
    return int(len(old) - kept)


# --- jobs inside QGIS -------------------------------------------------------------------------

def start_qgis():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    runtime = os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    from qgis.core import QgsApplication

    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    return app


def add_territory_provider() -> None:
    make_importable()
    from qgis.core import QgsApplication
    from territory_planner.algorithms.provider import TerritoryProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("territory") is None:
        provider = TerritoryProvider()
        registry.addProvider(provider)
        add_territory_provider.keep = provider


def open_layer(gpkg: str, layer_name: str):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(f"{gpkg}|layername={layer_name}", layer_name, "ogr")
    if not layer.isValid():
        raise RuntimeError(f"cannot open {gpkg}")
    return layer


def labels_from(layer, key_field: str, keys: np.ndarray, label_field: str) -> np.ndarray:
    """The label of every unit, in instance order, from an output layer holding ``key_field``."""
    from qgis.core import QgsFeatureRequest

    index = {int(k): i for i, k in enumerate(keys)}
    labels = np.full(len(keys), -1, dtype=np.int64)
    names: dict[str, int] = {}
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
    for feature in layer.getFeatures(request):
        value = feature[label_field]
        if value is None or (hasattr(value, "isNull") and value.isNull()):
            continue
        name = str(value)
        if name not in names:
            names[name] = len(names)
        labels[index[int(feature[key_field])]] = names[name]
    return labels


def key_field_and_keys(instance: Instance) -> tuple[str, np.ndarray]:
    if instance.kind == "real":
        return "fips", np.asarray(instance.keys)
    return "unit_id", np.arange(instance.size)


def job_e2e(instance: Instance, out_prefix: str, gpkg: str) -> None:
    app = start_qgis()  # noqa: F841 - keep the application alive
    add_territory_provider()
    import processing

    layer = open_layer(gpkg, instance.layer_name or "units")
    params = {
        "INPUT": layer, "TERRITORY_COUNT": int(instance.territories),
        "BALANCE_FIELDS": list(instance.measures), "TOLERANCE": 100.0 * instance.tolerance,
        "CONTIGUOUS": True, "RANDOM_SEED": 0, "TERRITORY_FIELD": "territory",
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT",
    }
    before = peak_rss_mb()
    start = time.perf_counter()
    result = processing.run("territory:buildterritories", params)
    seconds = time.perf_counter() - start
    key_field, keys = key_field_and_keys(instance)
    labels = labels_from(result["OUTPUT"], key_field, keys, "territory")
    write(out_prefix, {"seconds": seconds, "rss_before_mb": before,
                       "max_deviation_reported": result.get("MAX_DEVIATION"),
                       "noncontiguous_reported": result.get("NONCONTIGUOUS")}, labels)


def job_kmeans(instance: Instance, out_prefix: str, gpkg: str) -> None:
    app = start_qgis()  # noqa: F841
    import processing

    layer = open_layer(gpkg, instance.layer_name or "units")
    params = {"INPUT": layer, "CLUSTERS": int(instance.territories), "FIELD_NAME": "CLUSTER_ID",
              "OUTPUT": "TEMPORARY_OUTPUT"}
    before = peak_rss_mb()
    start = time.perf_counter()
    result = processing.run("native:kmeansclustering", params)
    seconds = time.perf_counter() - start
    key_field, keys = key_field_and_keys(instance)
    labels = labels_from(result["OUTPUT"], key_field, keys, "CLUSTER_ID")
    write(out_prefix, {"seconds": seconds, "rss_before_mb": before}, labels)


def job_gpkg(instance: Instance, out_prefix: str, gpkg: str) -> None:
    """Write the instance's Voronoi polygons with their activities as a GeoPackage."""
    app = start_qgis()  # noqa: F841
    make_importable()
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransformContext,
        QgsFeature,
        QgsFields,
        QgsGeometry,
        QgsLineString,
        QgsPolygon,
        QgsVectorFileWriter,
        QgsWkbTypes,
    )
    from territory_planner.compat import DOUBLE, INT, make_field

    fields = QgsFields()
    fields.append(make_field("unit_id", INT))
    for name in instance.measures:
        fields.append(make_field(name, INT if name == "customers" else DOUBLE))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = "units"
    tmp = gpkg + ".tmp.gpkg"
    if os.path.exists(tmp):
        os.remove(tmp)
    writer = QgsVectorFileWriter.create(tmp, fields, QgsWkbTypes.Type.Polygon,
                                        QgsCoordinateReferenceSystem(instance.crs),
                                        QgsCoordinateTransformContext(), options)
    if writer.hasError():
        raise RuntimeError(writer.errorMessage())
    for i in range(instance.size):
        ring = instance.polygon(i)
        xs = np.append(ring[:, 0], ring[0, 0]).tolist()
        ys = np.append(ring[:, 1], ring[0, 1]).tolist()
        feature = QgsFeature(fields)
        feature.setGeometry(QgsGeometry(QgsPolygon(QgsLineString(xs, ys))))
        row = [int(i)] + [int(v) if name == "customers" else float(v)
                          for name, v in zip(instance.measures, instance.workloads[i])]
        feature.setAttributes(row)
        writer.addFeature(feature)
    del writer
    os.replace(tmp, gpkg)
    write(out_prefix, {"features": instance.size, **compare_with_layer(instance, gpkg)})


def compare_with_layer(instance: Instance, gpkg: str) -> dict:
    """How the plugin's reading of the layer (layers.units.read_units) differs from the instance:
    neighbour pairs it misses or adds, and the largest offset of a unit's point."""
    make_importable()
    from qgis.core import QgsCoordinateTransformContext
    from territory_planner.layers.units import read_units

    start = time.perf_counter()
    units = read_units(open_layer(gpkg, "units"), list(instance.measures), QgsCoordinateTransformContext())
    seconds = time.perf_counter() - start
    order = np.asarray([int(fid) for fid in units.fids])
    ids = np.asarray([int(f["unit_id"]) for f in open_layer(gpkg, "units").getFeatures()])
    fid_to_unit = dict(zip([int(f.id()) for f in open_layer(gpkg, "units").getFeatures()], ids))
    unit_of_row = np.asarray([fid_to_unit[fid] for fid in order])
    coo = units.adjacency.tocoo()
    read = {(int(min(a, b)), int(max(a, b))) for a, b in zip(unit_of_row[coo.row], unit_of_row[coo.col]) if a != b}
    own = {(int(a), int(b)) for a, b in instance.edges}
    offset = np.hypot(*(units.positions - instance.positions[unit_of_row]).T)
    missing = sorted(own - read)
    return {"read_seconds": seconds, "edges_missing": len(missing), "edges_extra": len(read - own),
            "longest_missing_m": max((shared_length(instance, a, b) for a, b in missing), default=0.0),
            "max_position_offset_m": float(offset.max())}


def shared_length(instance: Instance, a: int, b: int) -> float:
    """Length of the boundary two cells share (their common vertices are bit-identical)."""
    ring_a, ring_b = instance.polygon(a), instance.polygon(b)
    common = np.asarray([v for v in ring_a if np.any(np.all(ring_b == v, axis=1))])
    if len(common) < 2:
        return 0.0
    return float(np.hypot(*(common.max(axis=0) - common.min(axis=0))))


def job_real(name: str, out_npz: str, gpkg: str) -> None:
    """Read a bundled dataset, or a fetched one (bench/nat.py), copied to ``gpkg``, with the plugin's
    own reader into an .npz."""
    import shutil

    app = start_qgis()  # noqa: F841
    make_importable()
    from qgis.core import QgsCoordinateTransformContext
    from territory_planner.layers.units import read_units

    if name in NAT_CASES:
        fields, territories = NAT_CASES[name]
        source, layer_name = fetch(), NAT_LAYER
    else:
        file_name, layer_name, fields, territories = REAL[name]
        source = ROOT / "resources" / "data" / file_name
    shutil.copy(source, gpkg)
    layer = open_layer(gpkg, layer_name)
    units = read_units(layer, fields, QgsCoordinateTransformContext())
    upper = units.adjacency.tocoo()
    keep = upper.row < upper.col
    edges = np.column_stack([upper.row[keep], upper.col[keep]]).astype(np.int64)
    keys = np.asarray([int(layer.getFeature(int(fid))["fips"]) for fid in units.fids], dtype=np.int64)
    instance = Instance(name=name, kind="real", seed=0, territories=territories, positions=units.positions,
                        edges=edges, workloads=units.workloads, measures=list(fields),
                        crs=units.metric_crs.authid() or units.metric_crs.toProj(), layer_path=gpkg,
                        layer_name=layer_name, keys=keys)
    instance.save(Path(out_npz))


JOBS = {"engine": job_engine, "lp": job_lp, "rebalance": job_rebalance, "e2e": job_e2e,
        "kmeans": job_kmeans, "gpkg": job_gpkg}


def main(argv: list[str]) -> int:
    job = argv[0]
    if job == "real":
        job_real(*argv[1:4])
        return 0
    instance = Instance.load(Path(argv[1]))
    JOBS[job](instance, *argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
