"""County-like layers for the panel's Rebalance bench (``bench/bench_dock_rebalance.py``).

Voronoi cells of clustered points (bench/instances.py ``clustered_points``: metro clusters over a
rural background) stretched over a national extent of 4,500 × 2,600 km on the Conus Albers
projection and written in degrees (EPSG:4326), as a national county layer usually comes, so the
plugin projects it itself. Two measures pull apart as population and places do between metros and
the countryside:

    population  lognormal, larger in small (dense, metro) cells
    places      1 + a Poisson count growing with the cell's area (small towns spread over the country)

The territory field holds a plan of 20 territories balanced on population (5 %) by the engine's
Build, so a Rebalance on places has to move many units, as in issue 26. Written once to
``build/bench-dock/counties-<size>.gpkg``.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "build" / "bench-dock"
LAYER = "counties"
TERRITORIES = 20
#: the national extent on EPSG:5070 (metres): lower-left corner and size
ORIGIN = (-2_300_000.0, 300_000.0)
EXTENT = (4_500_000.0, 2_600_000.0)


def county_like(size: int, territories: int = TERRITORIES) -> Path:
    """The GeoPackage of ``size`` county-like units in ``territories`` territories (made on first use)."""
    path = FOLDER / f"counties-{size}-{territories}.gpkg"
    if path.exists():
        return path
    FOLDER.mkdir(parents=True, exist_ok=True)
    from instances import SIDE, clipped_voronoi, clustered_points, polygon_areas, polygon_centroids

    digest = hashlib.sha256(f"counties-{size}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    points = clustered_points(size, rng)
    polygon_xy, offsets, edges = clipped_voronoi(points, SIDE)
    scale = np.array([EXTENT[0] / SIDE, EXTENT[1] / SIDE])
    polygon_xy = polygon_xy * scale + np.asarray(ORIGIN)
    areas = np.abs(polygon_areas(polygon_xy, offsets))
    relative = areas / areas.mean()
    population = np.round(rng.lognormal(9.0, 0.8, size) * np.clip(relative, 0.02, None) ** -0.6)
    places = 1 + rng.poisson(2.0 * relative)
    workloads = np.column_stack([population, places]).astype(float)
    labels = _plan_on_population(polygon_centroids(polygon_xy, offsets), population, edges, territories)
    _write(path, polygon_xy, offsets, labels, workloads)
    return path


def _plan_on_population(positions: np.ndarray, population: np.ndarray, edges: np.ndarray,
                        territories: int) -> np.ndarray:
    """A plan of ``territories`` territories balanced on population by the engine's Build."""
    from scipy import sparse
    from territory_planner.core.engine import build_territories
    from territory_planner.core.problem import Problem

    n = len(positions)
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    problem = Problem(positions=positions, workloads=population[:, None], adjacency=adjacency,
                      territory_count=territories, measure_names=["population"], tolerance=0.05,
                      contiguous=True, time_limit=30.0)
    return np.asarray(build_territories(problem).labels, dtype=np.int64)


def _write(path: Path, polygon_xy: np.ndarray, offsets: np.ndarray, labels: np.ndarray,
           workloads: np.ndarray) -> None:
    from common import write_gpkg
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsFields,
        QgsGeometry,
        QgsProject,
        QgsWkbTypes,
    )
    from qgis.PyQt.QtCore import QByteArray
    from territory_planner.compat import make_field

    to_degrees = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:5070"),
                                        QgsCoordinateReferenceSystem("EPSG:4326"), QgsProject.instance())
    fields = QgsFields()
    for field in (make_field("territory", "string", 40), make_field("population", "double"),
                  make_field("places", "int")):
        fields.append(field)

    def polygon(i: int):
        ring = polygon_xy[offsets[i]:offsets[i + 1]]
        ring = np.vstack([ring, ring[:1]])
        wkb = struct.pack("<BIII", 1, 3, 1, len(ring)) + np.ascontiguousarray(ring, dtype="<f8").tobytes()
        geometry = QgsGeometry()
        geometry.fromWkb(QByteArray(wkb))
        geometry.transform(to_degrees)
        return geometry

    rows = ((polygon(i), [f"Territory {labels[i] + 1}", float(workloads[i, 0]), int(workloads[i, 1])])
            for i in range(len(labels)))
    write_gpkg(path, LAYER, fields, QgsWkbTypes.Type.Polygon, "EPSG:4326", rows)


def counties_with_plan(counties: str, territories: int = TERRITORIES) -> Path:
    """A copy of a county GeoPackage (e.g. bench/nat.py's NAT counties) with a plan of ``territories``
    territories balanced on population (5 %), made by the toolbox's Build (written once)."""
    import processing

    path = FOLDER / f"{Path(counties.split('|')[0]).stem}-plan-{territories}.gpkg"
    if not path.exists():
        FOLDER.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.gpkg")
        partial.unlink(missing_ok=True)
        processing.run("territory:buildterritories", {
            "INPUT": counties, "BALANCE_FIELDS": ["population"], "TERRITORY_COUNT": territories, "TOLERANCE": 5.0,
            "TIME_LIMIT": 20.0, "TERRITORY_FIELD": "territory", "OUTPUT": str(partial),
            "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
        partial.replace(path)
    return path
