"""Benchmark of travel-time territories: straight-line vs road-network Build on 10,000 units.

``python bench/travel.py`` (or ``make bench-travel``) runs, for each instance, the engine in both
modes in a fresh process each (so peak memory is per mode) and writes the section "Travel time"
of bench/RESULTS.md (between the markers ``<!-- travel -->`` and ``<!-- /travel -->``).

Instance: the synthetic 10,000-unit instances of bench/instances.py (100 km square, Voronoi units,
three activities, 5 %), 100 territories, and a synthetic road network of about 100,000 segments
over the same square: a 430 m street grid (40 km/h, 8 % of the blocks' segments missing, 5 %
one-way), arterials every 10th line (70 km/h), two motorways (110 km/h), and a river at
x = 62.3 km that only a bridge every 19.8 km and the motorway cross.

Timed: straight line = ``build_territories``; road network = building the graph from the
segments + snapping + landmark embedding + ``build_territories`` on the embedded positions +
``travel_min`` of every unit. Both plans are then measured the same way: each territory's travel
time by road from its centre unit (nearest its workload-weighted centre) to its units.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import make_importable  # noqa: E402
from instances import ORIGIN, SIDE, instance_name, synthetic_instance  # noqa: E402

SIZE, TERRITORIES = 10_000, 100
SPACING = 430.0
RIVER_X = 62_300.0


def road_segments(seed: int = 0):
    """(starts, ends, speed km/h, direction) of the synthetic network, in the instance's CRS."""
    make_importable()
    from territory_planner.core import travel

    rng = np.random.default_rng(1000 + seed)
    count = int(SIDE // SPACING) + 1
    line = np.arange(count) * SPACING
    gx, gy = np.meshgrid(line, line, indexing="ij")
    starts, ends, speeds, directions = [], [], [], []
    for horizontal in (True, False):
        if horizontal:
            a = np.stack([gx[:-1, :].ravel(), gy[:-1, :].ravel()], axis=1)
            b = np.stack([gx[1:, :].ravel(), gy[1:, :].ravel()], axis=1)
            along = (a[:, 1] / SPACING).round().astype(int)  # which horizontal line
        else:
            a = np.stack([gx[:, :-1].ravel(), gy[:, :-1].ravel()], axis=1)
            b = np.stack([gx[:, 1:].ravel(), gy[:, 1:].ravel()], axis=1)
            along = (a[:, 0] / SPACING).round().astype(int)
        arterial = along % 10 == 0
        motorway = along == (int(70_000 / SPACING) if horizontal else int(30_000 / SPACING))
        speed = np.where(motorway, 110.0, np.where(arterial, 70.0, 40.0))
        keep = arterial | motorway | (rng.random(len(a)) > 0.08)
        if horizontal:  # the river: only arterials every 20 km and the motorway cross it
            crosses = (np.minimum(a[:, 0], b[:, 0]) < RIVER_X) & (np.maximum(a[:, 0], b[:, 0]) > RIVER_X)
            bridge = motorway | (along % 46 == 0)
            keep &= ~crosses | bridge
        oneway = ~arterial & ~motorway & (rng.random(len(a)) < 0.05)
        direction = np.where(oneway, np.where(rng.random(len(a)) < 0.5, travel.FORWARD, travel.BACKWARD),
                             travel.BOTH)
        starts.append(a[keep])
        ends.append(b[keep])
        speeds.append(speed[keep])
        directions.append(direction[keep])
    origin = np.asarray(ORIGIN)
    return (np.concatenate(starts) + origin, np.concatenate(ends) + origin, np.concatenate(speeds),
            np.concatenate(directions))


def network_from(segments):
    from territory_planner.core import travel

    a, b, speed, direction = segments
    minutes = travel.link_minutes(np.hypot(*(b - a).T), speed)
    forward, backward = travel.direction_minutes(minutes, direction)
    return travel.build_network(a, b, forward, backward)


def worker(mode: str, seed: int) -> dict:
    make_importable()
    from territory_planner.core import travel
    from territory_planner.core.engine import build_territories
    from territory_planner.core.metrics import combined_weight, plan_figures
    from territory_planner.core.problem import Problem

    instance = synthetic_instance(SIZE, TERRITORIES, seed)
    segments = road_segments(seed)
    problem = Problem(positions=instance.positions, workloads=instance.workloads, adjacency=instance.adjacency(),
                      territory_count=TERRITORIES, measure_names=instance.measures, tolerance=instance.tolerance,
                      contiguous=True, random_seed=0)
    weights = combined_weight(problem.workloads)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    cpu = time.process_time()
    if mode == "road":
        network = network_from(segments)
        setup = travel.prepare(network, problem.positions)
        plan = build_territories(travel.with_positions(problem, setup.positions))
        labels = np.asarray(plan.labels)
        result = setup.travel(labels, TERRITORIES, weights)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        stress = setup.embedding.stress
    else:
        plan = build_territories(problem)
        labels = np.asarray(plan.labels)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        network = network_from(segments)
        snapped = travel.snap(network, problem.positions)
        centres = travel.centre_units(labels, problem.positions, TERRITORIES, weights)
        result = travel.plan_travel(network, snapped.node, snapped.on_network, labels, snapped.node[centres],
                                    problem.positions)
        stress = None
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    mean, most = result.territory_mean_max(labels, TERRITORIES)
    figures = plan_figures(labels, problem)
    return {
        "mode": mode, "seed": seed, "instance": instance.name, "seconds": seconds, "cpu_seconds": cpu, "load": load,
        "peak_mb": peak_mb,
        "segments": int(len(segments[0])), "nodes": int(network.node_count), "links": int(network.link_count),
        "mean_travel": float(np.nanmean(mean)), "mean_of_max_travel": float(np.nanmean(most)),
        "worst_max_travel": float(np.nanmax(most)),
        "max_deviation_pct": float(100 * figures.max_deviation), "noncontiguous": int(figures.noncontiguous),
        "embedding_error": stress,
    }


def write_gpkg(seed: int) -> Path:
    """The instance's Voronoi units and the road network as one GeoPackage (made once, kept)."""
    from osgeo import ogr, osr

    path = BENCH / "out" / "travel" / f"travel-{SIZE}-{seed}-{SPACING:g}.gpkg"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    instance = synthetic_instance(SIZE, TERRITORIES, seed)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(instance.crs.split(":")[1]))
    tmp = path.with_suffix(".tmp.gpkg")
    if tmp.exists():
        tmp.unlink()
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    units = data.CreateLayer("units", srs, ogr.wkbPolygon)
    units.CreateField(ogr.FieldDefn("unit_id", ogr.OFTInteger))
    for name in instance.measures:
        units.CreateField(ogr.FieldDefn(name, ogr.OFTReal))
    units.StartTransaction()
    for i in range(instance.size):
        ring = ogr.Geometry(ogr.wkbLinearRing)
        xy = instance.polygon(i)
        for x, y in np.vstack([xy, xy[:1]]):
            ring.AddPoint_2D(float(x), float(y))
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        feature = ogr.Feature(units.GetLayerDefn())
        feature.SetField("unit_id", i)
        for name, value in zip(instance.measures, instance.workloads[i]):
            feature.SetField(name, float(value))
        feature.SetGeometry(polygon)
        units.CreateFeature(feature)
    units.CommitTransaction()
    roads = data.CreateLayer("roads", srs, ogr.wkbLineString)
    roads.CreateField(ogr.FieldDefn("kmh", ogr.OFTReal))
    roads.CreateField(ogr.FieldDefn("dir", ogr.OFTString))
    roads.StartTransaction()
    a, b, speed, direction = road_segments(seed)
    code = {0: "F", 1: "B", 2: "both"}
    for k in range(len(a)):
        line = ogr.Geometry(ogr.wkbLineString)
        line.AddPoint_2D(float(a[k, 0]), float(a[k, 1]))
        line.AddPoint_2D(float(b[k, 0]), float(b[k, 1]))
        feature = ogr.Feature(roads.GetLayerDefn())
        feature.SetField("kmh", float(speed[k]))
        feature.SetField("dir", code[int(direction[k])])
        feature.SetGeometry(line)
        roads.CreateFeature(feature)
    roads.CommitTransaction()
    data = None
    tmp.replace(path)
    return path


def synthetic_name(seed: int) -> str:
    return instance_name(SIZE, seed)


def worker_e2e(mode: str, seed: int) -> dict:
    """processing.run of Build territories on the GeoPackage, straight line or road network."""
    from worker import add_territory_provider, open_layer, start_qgis

    gpkg = str(write_gpkg(seed))
    app = start_qgis()  # noqa: F841 - keep the application alive
    add_territory_provider()
    import processing

    instance_measures = ["customers", "demand", "workload"]
    params = {"INPUT": open_layer(gpkg, "units"), "TERRITORY_COUNT": TERRITORIES,
              "BALANCE_FIELDS": instance_measures, "TOLERANCE": 5.0, "CONTIGUOUS": True, "RANDOM_SEED": 0,
              "TERRITORY_FIELD": "territory", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"}
    if mode == "e2e-road":
        params.update({"DISTANCE": 1, "NETWORK": open_layer(gpkg, "roads"), "SPEED_FIELD": "kmh",
                       "DIRECTION_FIELD": "dir", "VALUE_FORWARD": "F", "VALUE_BACKWARD": "B", "VALUE_BOTH": "both"})
    load = os.getloadavg()[0]
    start = time.perf_counter()
    cpu = time.process_time()
    result = processing.run("territory:buildterritories", params)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return {"mode": mode, "seed": seed, "instance": synthetic_name(seed), "seconds": seconds, "cpu_seconds": cpu,
            "load": load,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "max_deviation_pct": float(result["MAX_DEVIATION"]), "noncontiguous": int(result["NONCONTIGUOUS"])}


def write_section(rows: list[dict], path: Path) -> None:
    by = {(r["seed"], r["mode"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    lines = ["<!-- travel -->", "## Travel time (road network vs straight line)", "",
             f"Written by `make bench-travel` (`bench/travel.py`) on "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Engine alone (no QGIS), one process per mode. "
             f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
             f"numpy {np.__version__}. Instance and network: see the docstring of `bench/travel.py` "
             "(10,000 Voronoi units, 100 territories, 5 %; about 100,000 road segments with a river and few "
             "bridges). Road-network time includes building the graph from the segments, snapping, the "
             "landmark embedding and every unit's `travel_min`; reading a QGIS layer is not included.", "",
             "Travel: minutes by road from each territory's centre unit to its units (directed; one-way "
             "streets count), the same measure for both plans; mean over territories of the per-territory "
             "mean and max, and the worst territory's max. Other sessions shared the 2-core machine (1-minute "
             f"load average {min(r['load'] for r in rows):.1f}–{max(r['load'] for r in rows):.1f} as the runs "
             "started), so wall seconds are upper bounds; CPU seconds are the process's own.", "",
             "| instance | mode | seconds (wall) | CPU seconds | × straight (wall) | × straight (CPU) | peak RSS MB "
             "| segments | mean travel min | mean of max "
             "travel min | worst max travel min | worst deviation % | non-contiguous |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    targets = []
    for seed in seeds:
        straight = by.get((seed, "straight"))
        for mode in ("straight", "road"):
            r = by.get((seed, mode))
            if r is None:
                continue
            ratio = r["seconds"] / straight["seconds"] if straight else float("nan")
            cpu_ratio = r["cpu_seconds"] / straight["cpu_seconds"] if straight else float("nan")
            lines.append(
                f"| {r['instance']} | {'road network' if mode == 'road' else 'straight line'} | {r['seconds']:.2f} | "
                f"{r['cpu_seconds']:.2f} | {ratio:.2f} | {cpu_ratio:.2f} | {r['peak_mb']:.0f} | {r['segments']:,} | "
                f"{r['mean_travel']:.1f} | "
                f"{r['mean_of_max_travel']:.1f} | {r['worst_max_travel']:.1f} | {r['max_deviation_pct']:.2f} | "
                f"{r['noncontiguous']} |")
        road = by.get((seed, "road"))
        if straight and road:
            targets.append((seed, max(road["seconds"] / straight["seconds"],
                                      road["cpu_seconds"] / straight["cpu_seconds"]), road["peak_mb"],
                            road["mean_of_max_travel"] < straight["mean_of_max_travel"],
                            road["worst_max_travel"] < straight["worst_max_travel"]))
    e2e = [(seed, by.get((seed, "e2e-straight")), by.get((seed, "e2e-road"))) for seed in seeds]
    e2e = [(seed, a, b) for seed, a, b in e2e if a and b]
    if e2e:
        lines += ["", "End to end: `processing.run(\"territory:buildterritories\")` inside QGIS on a GeoPackage of "
                  "the same units and roads (reading the layers, the network and the outputs included).", "",
                  "| instance | mode | seconds (wall) | CPU seconds | × straight (wall) | × straight (CPU) "
                  "| peak RSS MB | worst deviation % | non-contiguous |", "|---|---|---|---|---|---|---|---|---|"]
        for _, a, b in e2e:
            for r, label in ((a, "straight line"), (b, "road network")):
                lines.append(f"| {r['instance']} | {label} | {r['seconds']:.2f} | {r['cpu_seconds']:.2f} | "
                             f"{r['seconds'] / a['seconds']:.2f} | {r['cpu_seconds'] / a['cpu_seconds']:.2f} | "
                             f"{r['peak_mb']:.0f} | {r['max_deviation_pct']:.2f} | {r['noncontiguous']} |")
    lines += ["", "| target | met? | measured |", "|---|---|---|"]
    if targets:
        worst_ratio = max(t[1] for t in targets)
        lines.append(f"| road-network Build within 2× the straight-line time | "
                     f"{'**met**' if worst_ratio <= 2 else '**NOT MET**'} | worst {worst_ratio:.2f}× "
                     "(the larger of the wall and CPU ratios) |")
        if e2e:
            worst_e2e = max(max(b["seconds"] / a["seconds"], b["cpu_seconds"] / a["cpu_seconds"]) for _, a, b in e2e)
            lines.append(f"| … end to end (processing.run) | {'**met**' if worst_e2e <= 2 else '**NOT MET**'} | "
                         f"worst {worst_e2e:.2f}× (the larger of the wall and CPU ratios) |")
            worst_mb_e2e = max(b["peak_mb"] for _, _, b in e2e)
            lines.append(f"| memory < 2 GB end to end (road network) | "
                         f"{'**met**' if worst_mb_e2e < 2048 else '**NOT MET**'} | worst {worst_mb_e2e:.0f} MB peak "
                         "RSS of the QGIS process |")
        worst_mb = max(t[2] for t in targets)
        lines.append(f"| memory < 2 GB (road network) | {'**met**' if worst_mb < 2048 else '**NOT MET**'} | "
                     f"worst {worst_mb:.0f} MB peak RSS |")
        lower = sum(t[3] for t in targets)
        lines.append(f"| road-network plan has the lower max travel time (mean over territories) | "
                     f"{'**met**' if lower == len(targets) else '**NOT MET**'} | {lower} of {len(targets)} "
                     "instances |")
        lower = sum(t[4] for t in targets)
        lines.append(f"| … and the lower worst territory max | "
                     f"{'**met**' if lower == len(targets) else '**NOT MET**'} | {lower} of {len(targets)} "
                     "instances |")
    lines.append("<!-- /travel -->")
    section = "\n".join(lines) + "\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if "<!-- travel -->" in text:
        head, rest = text.split("<!-- travel -->", 1)
        tail = rest.split("<!-- /travel -->", 1)[1].lstrip("\n") if "<!-- /travel -->" in rest else ""
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,4", help="instance seeds (1-3 uniform, 4-5 clustered)")
    parser.add_argument("--worker", choices=["straight", "road", "e2e-straight", "e2e-road"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    if args.worker:
        run = worker_e2e if args.worker.startswith("e2e") else worker
        print(json.dumps(run(args.worker, args.seed)))
        return
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for mode in ("straight", "road", "e2e-straight", "e2e-road"):
            out = subprocess.run([sys.executable, __file__, "--worker", mode, "--seed", str(seed)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            rows.append(row)
    (BENCH / "out").mkdir(exist_ok=True)
    (BENCH / "out" / "travel.json").write_text(json.dumps(rows, indent=1))
    write_section(rows, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
