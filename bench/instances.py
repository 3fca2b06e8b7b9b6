"""Benchmark instances in the style of Ríos-Mercado & Fernández (2009), and the bundled real data.

A synthetic instance is ``n`` units scattered in a 100 km square, either uniformly or in Gaussian
clusters of varying size and density with a uniform "rural" background (the *clustered* or urban
variant). Each unit is the Voronoi cell of its point, clipped to the square; two units are
neighbours when their cells share a boundary of positive length, which is the Delaunay
triangulation of the points less the few hull edges whose Voronoi ridge lies outside the square
(so the graph is exactly the one a GIS reads from the polygons). Each unit carries three
activities: customers U[4, 20] (integers), demand U[15, 400] and workload U[15, 100]. The
tolerance is 5 %.

Everything here is numpy/scipy; turning an instance into a QGIS layer is in ``bench/qgis_worker.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import Voronoi

#: Bump when the generator changes, so cached instances and results are made again.
GENERATOR_VERSION = 1
#: above this many cells clipped_voronoi mirrors only the points near the sides (same cells)
STRIP_MIRROR_FROM = 300_000

SIDE = 100_000.0  # metres
#: Lower-left corner of the square in the layers' CRS (UTM 16N, metres): plausible coordinates.
ORIGIN = (450_000.0, 3_650_000.0)
CRS = "EPSG:32616"
TOLERANCE = 0.05
MEASURES = ["customers", "demand", "workload"]

#: (units, territories) of the synthetic benchmark.
SIZES = [(500, 10), (2000, 50), (10000, 100), (50000, 200)]
#: Seeds 1–3 are uniform instances, 4–5 clustered ("urban") ones.
SEEDS = [1, 2, 3, 4, 5]
CLUSTERED_SEEDS = {4, 5}

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "resources" / "data"
#: The real public datasets: name → (gpkg file, layer, balance fields, territories).
REAL = {
    "georgia": ("georgia_counties.gpkg", "georgia_counties", ["population", "elderly"], 10),
    "nc": ("nc_counties.gpkg", "nc_counties", ["births_1974", "births_1979"], 10),
}


@dataclass
class Instance:
    """One benchmark instance as arrays.

    ``positions`` are the units' centroids in the layer CRS (metres), the same points the plugin
    reads from the layer; ``edges`` lists each neighbour pair once (i < j); ``workloads`` has one
    column per entry of ``measures``. Synthetic instances also carry their Voronoi polygons as
    ``polygon_xy`` (all vertices, rings not closed) split by ``polygon_offsets`` (n + 1 entries).
    Real instances carry ``layer_path``/``layer_name`` instead, and ``keys``: each unit's value of
    the layer's ``fips`` field, to find the units again in an output layer.
    """

    name: str
    kind: str  # "uniform", "clustered" or "real"
    seed: int
    territories: int
    positions: np.ndarray
    edges: np.ndarray
    workloads: np.ndarray
    measures: list[str]
    tolerance: float = TOLERANCE
    crs: str = CRS
    polygon_xy: np.ndarray | None = None
    polygon_offsets: np.ndarray | None = None
    layer_path: str = ""
    layer_name: str = ""
    keys: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.positions)

    def polygon(self, i: int) -> np.ndarray:
        return self.polygon_xy[self.polygon_offsets[i]:self.polygon_offsets[i + 1]]

    def adjacency(self):
        """The symmetric n × n neighbour matrix (scipy CSR)."""
        from scipy import sparse

        n = self.size
        rows = np.concatenate([self.edges[:, 0], self.edges[:, 1]])
        cols = np.concatenate([self.edges[:, 1], self.edges[:, 0]])
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))

    def save(self, path: Path) -> None:
        arrays = dict(positions=self.positions, edges=self.edges, workloads=self.workloads)
        if self.polygon_xy is not None:
            arrays.update(polygon_xy=self.polygon_xy, polygon_offsets=self.polygon_offsets)
        if self.keys is not None:
            arrays.update(keys=self.keys)
        meta = dict(name=self.name, kind=self.kind, seed=self.seed, territories=self.territories,
                    measures=self.measures, tolerance=self.tolerance, crs=self.crs,
                    layer_path=self.layer_path, layer_name=self.layer_name)
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Instance:
        import json

        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {key: data[key] for key in data.files if key != "meta"}
        return cls(**meta, **arrays)


def instance_name(size: int, seed: int) -> str:
    return f"{size}-{'c' if seed in CLUSTERED_SEEDS else 'u'}{seed}"


def synthetic_instance(size: int, territories: int, seed: int) -> Instance:
    """The synthetic instance of ``size`` units and seed ``seed`` (clustered for seeds 4–5)."""
    kind = "clustered" if seed in CLUSTERED_SEEDS else "uniform"
    digest = hashlib.sha256(f"rmf-{GENERATOR_VERSION}-{size}-{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    points = clustered_points(size, rng) if kind == "clustered" else rng.uniform(0.0, SIDE, (size, 2))
    points = _separate_duplicates(points, rng)
    polygon_xy, polygon_offsets, edges = clipped_voronoi(points, SIDE)
    workloads = np.column_stack([
        rng.integers(4, 21, size).astype(float),
        rng.uniform(15.0, 400.0, size),
        rng.uniform(15.0, 100.0, size),
    ])
    centroids = polygon_centroids(polygon_xy, polygon_offsets)
    origin = np.asarray(ORIGIN)
    return Instance(
        name=instance_name(size, seed), kind=kind, seed=seed, territories=territories,
        positions=centroids + origin, edges=edges, workloads=workloads, measures=list(MEASURES),
        polygon_xy=polygon_xy + origin, polygon_offsets=polygon_offsets)


def clustered_points(size: int, rng: np.random.Generator) -> np.ndarray:
    """Points in Gaussian clusters of varying spread and weight ("towns" and "cities") over a
    uniform rural background holding 20 % of the points, all inside the square."""
    clusters = max(3, int(round(np.sqrt(size) / 4)))
    centres = rng.uniform(0.1 * SIDE, 0.9 * SIDE, (clusters, 2))
    spreads = SIDE * np.exp(rng.uniform(np.log(0.02), np.log(0.10), clusters))
    weights = rng.lognormal(0.0, 1.0, clusters)
    weights /= weights.sum()
    rural = int(round(0.2 * size))
    counts = rng.multinomial(size - rural, weights)
    parts = [rng.uniform(0.0, SIDE, (rural, 2))]
    for centre, spread, count in zip(centres, spreads, counts):
        found = np.zeros((0, 2))
        while len(found) < count:
            draw = rng.normal(centre, spread, (2 * (count - len(found)) + 8, 2))
            draw = draw[np.all((draw > 0.0) & (draw < SIDE), axis=1)]
            found = np.concatenate([found, draw])
        parts.append(found[:count])
    points = np.concatenate(parts)
    return points[rng.permutation(len(points))]


def _separate_duplicates(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    while len(np.unique(points, axis=0)) < len(points):
        points = np.clip(points + rng.normal(0.0, 1e-3, points.shape), 0.0, SIDE)
    return points


def clipped_voronoi(points: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voronoi cells of ``points`` clipped to the square [0, side]², and their neighbour pairs.

    The points are mirrored across the four sides: the bisector of a point and its own mirror
    image is that side, and a mirror image of another point is never nearer than the point itself
    inside the square, so each cell of the enlarged diagram is exactly the clipped cell and its
    ridges to other original points are exactly the clipped shared boundaries.
    Returns (vertices of all cells, each cell counter-clockwise; offsets; edges i < j).
    """
    n = len(points)
    x, y = points[:, 0], points[:, 1]
    diagram = None
    if n > STRIP_MIRROR_FROM:
        # A million cells: mirror only the points near each side (qhull on 5n points needs
        # gigabytes). Exact when every original cell stays inside the square: a missing mirror
        # image is never nearer than its own point there. Otherwise fall back to all mirrors.
        strip = 50.0 * side / np.sqrt(n)
        diagram = _mirrored_voronoi(points, side, strip)
        regions = [diagram.regions[r] for r in diagram.point_region[:n].tolist()]
        used = np.unique(np.concatenate([np.asarray(r, dtype=np.int64) for r in regions]))
        slack = 1e-9 * side
        if used.size == 0 or used[0] < 0 or np.any(diagram.vertices[used] < -slack) or np.any(
                diagram.vertices[used] > side + slack):
            diagram = None
    if diagram is None:
        diagram = _mirrored_voronoi(points, side, None)
    vertices = np.clip(diagram.vertices, 0.0, side)

    ridge_points = diagram.ridge_points
    ridge_vertices = np.asarray(diagram.ridge_vertices)
    inner = (ridge_points[:, 0] < n) & (ridge_points[:, 1] < n) & np.all(ridge_vertices >= 0, axis=1)
    pairs, ridges = ridge_points[inner], ridge_vertices[inner]
    length = np.hypot(*(vertices[ridges[:, 0]] - vertices[ridges[:, 1]]).T)
    pairs = pairs[length > 1e-9 * side]
    edges = np.unique(np.sort(pairs, axis=1), axis=0).astype(np.int64)

    rings = []
    for i in range(n):
        region = diagram.regions[diagram.point_region[i]]
        if not region or min(region) < 0:
            raise ValueError(f"Voronoi cell {i} is unbounded; the mirror construction failed")
        ring = vertices[region]
        angle = np.arctan2(ring[:, 1] - y[i], ring[:, 0] - x[i])
        ring = ring[np.argsort(angle)]
        # drop repeated vertices (clipping may merge a vertex onto a side's corner)
        keep = np.ones(len(ring), dtype=bool)
        keep[1:] = np.any(np.abs(np.diff(ring, axis=0)) > 1e-9 * side, axis=1)
        if len(ring) > 1 and np.all(np.abs(ring[-1] - ring[0]) <= 1e-9 * side):
            keep[-1] = False
        rings.append(ring[keep])
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rings])
    return np.concatenate(rings), offsets, edges


def _mirrored_voronoi(points: np.ndarray, side: float, strip: float | None) -> Voronoi:
    """Voronoi diagram of the points and their mirror images across the four sides of the
    square (all of them, or only those within ``strip`` of the side)."""
    x, y = points[:, 0], points[:, 1]
    near = (lambda d: d <= strip) if strip is not None else (lambda d: np.ones(d.shape, dtype=bool))
    left, right, bottom, top = near(x), near(side - x), near(y), near(side - y)
    mirrored = np.concatenate([
        points,
        np.column_stack([-x[left], y[left]]), np.column_stack([2 * side - x[right], y[right]]),
        np.column_stack([x[bottom], -y[bottom]]), np.column_stack([x[top], 2 * side - y[top]]),
    ])
    return Voronoi(mirrored)


def polygon_centroids(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Area centroids of simple polygons given as counter-clockwise rings."""
    n = len(offsets) - 1
    nxt = np.arange(len(xy)) + 1
    nxt[offsets[1:] - 1] = offsets[:-1]
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = xy[nxt, 0], xy[nxt, 1]
    cross = x0 * y1 - x1 * y0
    owner = np.repeat(np.arange(n), np.diff(offsets))
    area = np.bincount(owner, cross, n) / 2.0
    cx = np.bincount(owner, (x0 + x1) * cross, n) / (6.0 * area)
    cy = np.bincount(owner, (y0 + y1) * cross, n) / (6.0 * area)
    return np.column_stack([cx, cy])


def polygon_areas(xy: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    n = len(offsets) - 1
    nxt = np.arange(len(xy)) + 1
    nxt[offsets[1:] - 1] = offsets[:-1]
    cross = xy[:, 0] * xy[nxt, 1] - xy[nxt, 0] * xy[:, 1]
    return np.bincount(np.repeat(np.arange(n), np.diff(offsets)), cross, n) / 2.0


def benchmark_plan(sizes: list[int] | None = None, seeds: list[int] | None = None,
                   real: bool = True) -> list[tuple[str, int, int, int]]:
    """The instances to run as (name, size, territories, seed); size 0 marks a real dataset."""
    plan = []
    for size, territories in SIZES:
        if sizes is not None and size not in sizes:
            continue
        for seed in SEEDS:
            if seeds is not None and seed not in seeds:
                continue
            plan.append((instance_name(size, seed), size, territories, seed))
    if real:
        plan.extend((name, 0, REAL[name][3], 0) for name in REAL)
    return plan


# -- failure shapes of issue 8 -----------------------------------------------------------------
#: (name, units, territories): instances on which a search of single moves gets trapped.
SHAPES = {
    "metro-1000": (1000, 20),        # heavy metro units side by side
    "conflict-1000": (1000, 20),     # two anti-correlated measures
    "oversized-3000": (3000, 100),   # units several times a target: tolerance out of reach
}


def shape_instance(name: str) -> Instance:
    """A failure-shape instance: uniform Voronoi units whose workloads trap single-move searches.

    ``metro-*``: one measure; a dozen metro units, side by side in two clusters, each 50–90 % of a
    territory's target, next to units at 20–30 %; the rest small. ``conflict-*``: two measures;
    "population" concentrated in a few dense clusters, "accounts" spread evenly. ``oversized-*``:
    one measure with a handful of units several times a territory's target.
    """
    size, territories = SHAPES[name]
    digest = hashlib.sha256(f"shape-{GENERATOR_VERSION}-{name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    points = _separate_duplicates(rng.uniform(0.0, SIDE, (size, 2)), rng)
    polygon_xy, polygon_offsets, edges = clipped_voronoi(points, SIDE)
    positions = polygon_centroids(polygon_xy, polygon_offsets)
    if name.startswith("metro"):
        work = rng.uniform(15, 100, size)
        centres = rng.uniform(0.25 * SIDE, 0.75 * SIDE, (2, 2))
        near = [np.argsort(((positions - c) ** 2).sum(axis=1), kind="stable")[:9] for c in centres]
        share = np.zeros(size)
        for group in near:
            share[group[:3]] = rng.uniform(0.5, 0.9, 3)
            share[group[3:9]] = rng.uniform(0.2, 0.3, 6)
        metro = share > 0
        # the metro units are these fractions of the final target: T = rest / (p - sum of fractions)
        target = work[~metro].sum() / (territories - share.sum())
        work[metro] = share[metro] * target
        workloads, measures = work.reshape(-1, 1), ["workload"]
    elif name.startswith("conflict"):
        centres = rng.uniform(0.1 * SIDE, 0.9 * SIDE, (5, 2))
        d2 = np.min(((positions[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
        population = 20 + 4000 * np.exp(-d2 / (2 * (0.05 * SIDE) ** 2)) * rng.uniform(0.5, 1.5, size)
        accounts = rng.uniform(15, 25, size)
        workloads, measures = np.column_stack([population, accounts]), ["population", "accounts"]
    else:
        work = rng.uniform(15, 100, size)
        target = work.sum() / territories
        big = rng.choice(size, 5, replace=False)
        work[big] = rng.uniform(2.0, 4.0, 5) * target
        workloads, measures = work.reshape(-1, 1), ["workload"]
    return Instance(name=name, kind="shape", seed=0, territories=territories, positions=positions,
                    edges=edges, workloads=workloads, measures=measures, polygon_xy=polygon_xy,
                    polygon_offsets=polygon_offsets)


# --- large instances (issue 14): account points shaped like a national customer base ----------

#: A box about the size of the contiguous United States, in an equal-area CRS (metres).
NATION_CRS = "EPSG:5070"  # NAD83 / Conus Albers
NATION_ORIGIN = (-2_300_000.0, 300_000.0)
NATION_SIZE = (4_500_000.0, 2_800_000.0)
ACCOUNT_MEASURES = ["visits", "sales"]


def national_accounts(size: int, seed: int, metros: int = 300, rural_share: float = 0.15) -> tuple:
    """Account points clustered like a national customer base, and their two workloads.

    ``metros`` metro areas with Zipf-distributed sizes (the largest holds about a sixth of the
    metro accounts, the smallest a few hundredths of a percent), each a core with suburbs (a
    Gaussian whose spread varies per account, so density falls off slowly), radius growing with
    the metro's size (about 5 to 60 km); ``rural_share`` of the accounts scattered over the whole
    country. Workloads are lognormal: visits a year (σ 0.6) and sales (σ 1.0, correlated with visits).
    Returns (positions (size, 2) in NATION_CRS metres, workloads (size, 2)).
    """
    digest = hashlib.sha256(f"accounts-{GENERATOR_VERSION}-{size}-{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    width, height = NATION_SIZE
    rural = int(round(rural_share * size))
    weight = 1.0 / rng.permutation(np.arange(1, metros + 1))  # Zipf's law for city sizes
    weight /= weight.sum()
    counts = rng.multinomial(size - rural, weight)
    centres = rng.uniform((0.05 * width, 0.05 * height), (0.95 * width, 0.95 * height), (metros, 2))
    radius = 5_000.0 + 55_000.0 * np.sqrt(weight / weight.max())
    owner = np.repeat(np.arange(metros), counts)
    spread = radius[owner] * rng.lognormal(0.0, 0.5, owner.size)
    metro = centres[owner] + rng.normal(0.0, 1.0, (owner.size, 2)) * spread[:, None]
    points = np.concatenate([rng.uniform((0.0, 0.0), (width, height), (rural, 2)), metro])
    points[:, 0] = np.clip(points[:, 0], 0.0, width)
    points[:, 1] = np.clip(points[:, 1], 0.0, height)
    points = np.round(points, 2)  # centimetres, as a geocoder gives them
    points = points[rng.permutation(size)]
    common = rng.normal(0.0, 1.0, size)
    visits = np.round(np.exp(0.6 * common + 0.2 * rng.normal(0.0, 1.0, size)) * 12.0, 1)
    sales = np.round(np.exp(0.8 * common + 0.6 * rng.normal(0.0, 1.0, size)) * 1000.0, 2)
    return points + np.asarray(NATION_ORIGIN), np.column_stack([visits, sales])


# --- accounts over ZIP-like units (issue 21) ---------------------------------------------------

#: Bump when zip_like_accounts changes (its own number: the other instances stay as they are).
ACCOUNTS_VERSION = 2

def zip_like_accounts(units: int, accounts: int, seed: int, metros: int = 300) -> tuple:
    """A ZIP-code-like layer of ``units`` polygons over the national box, and ``accounts`` points
    standing in them, both denser in the same metro areas.

    Metro areas have Zipf-distributed sizes; 70 % of the unit centres and 85 % of the accounts lie
    around them (Gaussian, radius growing with the metro), the rest uniformly over the box, so
    units are small where accounts are many, as ZIP codes are. The units are the Voronoi cells of
    their centres computed in the unit square and stretched to the box (an affine image of a
    Voronoi diagram: still a tessellation, with the same neighbours). Each account's home unit is
    the cell whose centre is nearest to it in the unit square: exactly the cell it stands in.
    Returns (polygon_xy, polygon_offsets, edges, unit centroids, account points, account home unit,
    account workloads (visits, sales)), coordinates in NATION_CRS metres.
    """
    digest = hashlib.sha256(f"zip-accounts-{ACCOUNTS_VERSION}-{units}-{accounts}-{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    size = np.asarray(NATION_SIZE)
    sizes = 1.0 / rng.permutation(np.arange(1, metros + 1))
    sizes /= sizes.sum()
    middles = rng.uniform(0.05, 0.95, (metros, 2))
    reach = (5_000.0 + 55_000.0 * np.sqrt(sizes / sizes.max())) / size.mean()

    def scatter(count: int, rural_share: float) -> np.ndarray:
        rural = int(round(rural_share * count))
        owner = rng.choice(metros, count - rural, p=sizes)
        around = middles[owner] + rng.normal(0.0, 1.0, (owner.size, 2)) * (
            reach[owner] * rng.lognormal(0.0, 0.5, owner.size))[:, None]
        # kept off the box's edge: a point on it could round to just outside every unit
        return np.clip(np.concatenate([rng.uniform(0.0, 1.0, (rural, 2)), around]), 1e-6, 1.0 - 1e-6)

    centres = scatter(units, 0.30)
    while len(np.unique(centres, axis=0)) < len(centres):
        centres = np.clip(centres + rng.normal(0.0, 1e-9, centres.shape), 0.0, 1.0)
    centres = centres[rng.permutation(units)]
    polygon_xy, polygon_offsets, edges = clipped_voronoi(centres, 1.0)
    points = scatter(accounts, 0.15)[rng.permutation(accounts)]
    from scipy.spatial import cKDTree

    _, home = cKDTree(centres).query(points)
    common = rng.normal(0.0, 1.0, accounts)
    visits = np.round(np.exp(0.6 * common + 0.2 * rng.normal(0.0, 1.0, accounts)) * 12.0, 1)
    sales = np.round(np.exp(0.8 * common + 0.6 * rng.normal(0.0, 1.0, accounts)) * 1000.0, 2)
    origin = np.asarray(NATION_ORIGIN)
    stretch = polygon_xy * size + origin
    return (stretch, polygon_offsets, edges, polygon_centroids(polygon_xy, polygon_offsets) * size + origin,
            np.round(points * size + origin, 2), home.astype(np.int64), np.column_stack([visits, sales]))
