"""Travel time on a road network: the graph, snapping, shortest paths and an embedding for the engine.

Pure numpy/scipy. The engine itself measures straight lines; road-network mode feeds it
*positions* whose Euclidean distances approximate travel minutes (landmark MDS, de Silva &
Tenenbaum 2004) blended with the map (see :func:`prepare`), so ``core.engine`` needs no change.
Exact travel times (``travel_min``) are then computed per territory from its centre unit (or
seed) with one Dijkstra run per territory.

Units: coordinates in metres (the units' projected CRS), speeds in km/h, times in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

# An embedding coordinate unit is the distance covered in one minute at this speed, so the
# engine's figures stay in metre-like magnitudes (1 minute ~ 1 km at 60 km/h).
METRES_PER_MINUTE = 1000.0
FORWARD, BACKWARD, BOTH = 0, 1, 2


class NetworkError(ValueError):
    """The road network cannot be used as given; the message names the problem and the fix."""


@dataclass
class RoadNetwork:
    """A directed road graph.

    nodes    (N, 2) node coordinates in metres.
    minutes  (N, N) csr: travel minutes of each directed link (a one-way street has one direction).
    main     (N,) bool: the node lies on the largest connected piece of the network (undirected).
    """

    nodes: np.ndarray
    minutes: sp.csr_matrix
    main: np.ndarray = field(default=None)
    _tree: Optional[cKDTree] = field(default=None, repr=False)
    _undirected: Optional[sp.csr_matrix] = field(default=None, repr=False)

    def __post_init__(self):
        if self.main is None:
            _, comp = connected_components(self.minutes, directed=True, connection="weak")
            sizes = np.bincount(comp) if len(comp) else np.zeros(1, dtype=np.int64)
            self.main = comp == int(np.argmax(sizes)) if len(comp) else np.zeros(0, dtype=bool)

    @property
    def node_count(self) -> int:
        return int(len(self.nodes))

    @property
    def link_count(self) -> int:
        return int(self.minutes.nnz)

    def tree(self) -> cKDTree:
        """KD-tree over the main piece's nodes (units snap only there)."""
        if self._tree is None:
            self._tree = cKDTree(self.nodes[self.main])
        return self._tree

    def undirected(self) -> sp.csr_matrix:
        """Each link usable both ways at its faster time: for the embedding, where one-way streets
        barely matter and a symmetric distance is needed."""
        if self._undirected is None:
            g = self.minutes.tocoo()
            rows = np.concatenate([g.row, g.col])
            cols = np.concatenate([g.col, g.row])
            cost = np.concatenate([g.data, g.data])
            order = np.lexsort((cost, cols, rows))
            rows, cols, cost = rows[order], cols[order], cost[order]
            first = np.ones(len(rows), dtype=bool)
            first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            n = self.node_count
            self._undirected = sp.csr_matrix((cost[first], (rows[first], cols[first])), shape=(n, n))
        return self._undirected


def build_network(starts: np.ndarray, ends: np.ndarray, minutes_forward: np.ndarray,
                  minutes_backward: np.ndarray, tolerance: float = 0.0) -> RoadNetwork:
    """A network from link end points (metres) and travel minutes per direction.

    ``minutes_forward[e]`` is the time from ``starts[e]`` to ``ends[e]``; ``np.inf`` (or NaN) means
    the link cannot be driven that way (one-way street). End points closer than ``tolerance``
    metres become one node (0: exactly equal coordinates only). Parallel links keep the fastest.
    """
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    ends = np.asarray(ends, dtype=float).reshape(-1, 2)
    fwd = np.asarray(minutes_forward, dtype=float).reshape(-1)
    bwd = np.asarray(minutes_backward, dtype=float).reshape(-1)
    e = len(starts)
    if e == 0:
        raise NetworkError("The road network has no lines. Choose a line layer with roads.")
    points = np.concatenate([starts, ends])
    node_of = _merge_points(points, tolerance)
    count = int(node_of.max()) + 1
    nodes = np.zeros((count, 2))
    np.add.at(nodes, node_of, points)
    nodes /= np.bincount(node_of, minlength=count)[:, None]
    a, b = node_of[:e], node_of[e:]
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    cost = np.concatenate([fwd, bwd])
    keep = np.isfinite(cost) & (rows != cols)
    rows, cols, cost = rows[keep], cols[keep], np.maximum(cost[keep], 1e-9)  # 0 would mean "no link"
    # parallel links: keep the fastest
    order = np.lexsort((cost, cols, rows))
    rows, cols, cost = rows[order], cols[order], cost[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    graph = sp.csr_matrix((cost[first], (rows[first], cols[first])), shape=(count, count))
    return RoadNetwork(nodes=nodes, minutes=graph)


def _merge_points(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Node index of every point: equal points share one; with a tolerance, points within it too."""
    _, inverse = np.unique(points, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    if tolerance and tolerance > 0:
        unique = np.zeros((int(inverse.max()) + 1, 2))
        unique[inverse] = points
        pairs = cKDTree(unique).query_pairs(float(tolerance), output_type="ndarray")
        if len(pairs):
            m = len(unique)
            link = sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
            _, merged = connected_components(link, directed=False)
            inverse = merged[inverse]
    _, inverse = np.unique(inverse, return_inverse=True)
    return np.asarray(inverse).reshape(-1)


def link_minutes(length_m: np.ndarray, speed_kmh: np.ndarray) -> np.ndarray:
    """Minutes to drive ``length_m`` metres at ``speed_kmh``."""
    return np.asarray(length_m, dtype=float) / (np.asarray(speed_kmh, dtype=float) * 1000.0 / 60.0)


def direction_minutes(minutes: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward minutes of each link given its direction (FORWARD, BACKWARD, BOTH)."""
    minutes = np.asarray(minutes, dtype=float)
    direction = np.asarray(direction)
    fwd = np.where(direction == BACKWARD, np.inf, minutes)
    bwd = np.where(direction == FORWARD, np.inf, minutes)
    return fwd, bwd


# --- snapping -------------------------------------------------------------------------------

@dataclass
class Snap:
    """Where points meet the network: ``node`` (index into the network's nodes), ``distance``
    (metres to it) and ``on_network`` (within the snap limit)."""

    node: np.ndarray
    distance: np.ndarray
    on_network: np.ndarray
    limit: float


def default_snap_limit(distances: np.ndarray) -> float:
    """Farther than this from any road, a unit is "off the network": 1 km, or ten times the
    median snap distance when the roads are sparser than that."""
    d = np.asarray(distances, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return 1000.0
    return float(max(1000.0, 10.0 * np.median(d)))


def snap(network: RoadNetwork, points: np.ndarray, limit: Optional[float] = None) -> Snap:
    """Snap points (metres) to the nearest node of the network's main piece."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    main_nodes = np.flatnonzero(network.main)
    if len(main_nodes) == 0:
        raise NetworkError("The road network has no nodes. Choose a line layer with roads.")
    distance, near = network.tree().query(points)
    node = main_nodes[near]
    if limit is None:
        limit = default_snap_limit(distance)
    return Snap(node=node, distance=distance, on_network=distance <= limit, limit=float(limit))


# --- shortest paths -------------------------------------------------------------------------

def travel_minutes(network: RoadNetwork, sources: np.ndarray, targets: np.ndarray,
                   limit: float = np.inf, chunk: int = 16, progress=None) -> np.ndarray:
    """(len(sources), len(targets)) minutes from each source node to each target node.

    Only these pairs are kept: Dijkstra runs from the sources in chunks (``indices=``) and stops
    beyond ``limit`` minutes (``limit=``); unreachable pairs are ``inf``.
    """
    sources = np.asarray(sources, dtype=np.int64).reshape(-1)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    out = np.full((len(sources), len(targets)), np.inf)
    unique, inverse = np.unique(sources, return_inverse=True)
    rows = np.empty((len(unique), len(targets)))
    for start in range(0, len(unique), chunk):
        if progress is not None:
            progress.step(start / max(len(unique), 1), "")
        block = unique[start:start + chunk]
        dist = dijkstra(network.minutes, directed=True, indices=block, limit=limit)
        rows[start:start + len(block)] = np.atleast_2d(dist)[:, targets]
    out[:] = rows[np.asarray(inverse).reshape(-1)]
    return out


# --- embedding ------------------------------------------------------------------------------

@dataclass
class Embedding:
    """Coordinates whose Euclidean distances approximate travel minutes x METRES_PER_MINUTE."""

    positions: np.ndarray          # (n, 2) the embedded points
    landmarks: np.ndarray          # node indices of the landmarks
    stress: float                  # relative error of embedded vs true landmark distances


def embed(network: RoadNetwork, nodes: np.ndarray, landmark_count: int = 24, random_seed: int = 0,
          progress=None) -> Embedding:
    """Landmark MDS of the given network nodes (on the undirected network).

    Landmarks are chosen farthest-first among ``nodes``; one Dijkstra run per landmark; classical
    MDS of the landmarks, then every node placed by distance-based triangulation.
    """
    nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
    graph = network.undirected()
    unique = np.unique(nodes)
    count = int(min(max(landmark_count, 3), len(unique)))
    rng = np.random.default_rng(random_seed)
    chosen = [int(unique[rng.integers(len(unique))])]
    rows = []
    nearest = np.full(len(unique), np.inf)
    # Farthest-first: each new landmark is the node farthest (in minutes) from those chosen.
    while True:
        if progress is not None:
            progress.step(len(rows) / count, "")
        dist = dijkstra(graph, directed=False, indices=chosen[-1])
        rows.append(dist)
        if len(rows) >= count:
            break
        nearest = np.minimum(nearest, dist[unique])
        finite = np.where(np.isfinite(nearest), nearest, -1.0)
        nxt = int(unique[int(np.argmax(finite))])
        if finite.max() <= 0 or nxt in chosen:
            break
        chosen.append(nxt)
    landmarks = np.asarray(chosen, dtype=np.int64)
    dist_all = np.vstack(rows)                      # (size, N) minutes
    finite_max = np.nanmax(np.where(np.isfinite(dist_all), dist_all, np.nan)) if np.isfinite(dist_all).any() else 1.0
    dist_all = np.where(np.isfinite(dist_all), dist_all, 2.0 * finite_max)
    size = len(landmarks)
    if size < 3:
        # one or two places: a line is exact
        pos = np.zeros((len(nodes), 2))
        pos[:, 0] = dist_all[0, nodes]
        return Embedding(positions=pos * METRES_PER_MINUTE, landmarks=landmarks, stress=0.0)
    delta = dist_all[:, landmarks] ** 2
    delta = 0.5 * (delta + delta.T)
    centring = np.eye(size) - 1.0 / size
    gram = -0.5 * centring @ delta @ centring
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:2]
    lam = np.maximum(values[top], 1e-12)
    vec = vectors[:, top]
    pseudo = (vec / np.sqrt(lam)).T          # (2, size)
    mean = delta.mean(axis=1)
    sq = dist_all[:, nodes] ** 2                    # (size, n)
    pos = -0.5 * (pseudo @ (sq - mean[:, None])).T
    land_pos = vec * np.sqrt(lam)
    embedded = np.sqrt(((land_pos[:, None, :] - land_pos[None, :, :]) ** 2).sum(axis=2))
    true = dist_all[:, landmarks]
    upper = np.triu_indices(size, 1)
    stress = float(np.sqrt(((embedded[upper] - true[upper]) ** 2).sum() / max((true[upper] ** 2).sum(), 1e-12)))
    return Embedding(positions=pos * METRES_PER_MINUTE, landmarks=landmarks, stress=stress)


# --- a plan's travel times ------------------------------------------------------------------

def centre_units(labels: np.ndarray, embedded: np.ndarray, territory_count: int,
                 weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Each territory's centre unit: the member nearest its weighted centre in ``embedded`` (the
    travel-time embedding in road mode, so nearest in travel time); -1 for an empty territory."""
    labels = np.asarray(labels, dtype=np.int64)
    w = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=float)
    centres = np.full(territory_count, -1, dtype=np.int64)
    for k in range(territory_count):
        members = np.flatnonzero(labels == k)
        if len(members) == 0:
            continue
        wk = w[members]
        mid = (embedded[members] * wk[:, None]).sum(axis=0) / wk.sum() if wk.sum() > 0 \
            else embedded[members].mean(axis=0)
        centres[k] = members[int(np.argmin(((embedded[members] - mid) ** 2).sum(axis=1)))]
    return centres


@dataclass
class TravelResult:
    """Travel figures of a plan.

    travel_min      (n,) minutes from the unit's territory centre (or seed) to the unit; NaN when
                    the unit is off the network or cannot be reached.
    centre_nodes    (p,) network node each territory's travel is measured from.
    from_centres    (p, n) minutes from every territory's centre node to every unit.
    """

    travel_min: np.ndarray
    centre_nodes: np.ndarray
    from_centres: np.ndarray

    def territory_mean_max(self, labels: np.ndarray, territory_count: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and max travel_min per territory (NaN where nothing is known)."""
        labels = np.asarray(labels, dtype=np.int64)
        mean = np.full(territory_count, np.nan)
        most = np.full(territory_count, np.nan)
        for k in range(territory_count):
            t = self.travel_min[labels == k]
            t = t[np.isfinite(t)]
            if len(t):
                mean[k], most[k] = float(t.mean()), float(t.max())
        return mean, most


def plan_travel(network: RoadNetwork, unit_nodes: np.ndarray, on_network: np.ndarray, labels: np.ndarray,
                centre_nodes: np.ndarray, positions: Optional[np.ndarray] = None,
                max_minutes: Optional[float] = None) -> TravelResult:
    """Minutes from each territory's centre node to each unit: one Dijkstra run per territory.

    Each run stops once it has reached every unit of its territory: with ``positions`` (metres, or
    the embedding) the first radius is 1.5 x the farthest member at 60 km/h (METRES_PER_MINUTE),
    doubled while a member is still beyond it (four times at most, then unbounded), and never below
    ``max_minutes``. Times are exact; ``from_centres`` is ``inf`` for units beyond a run's radius.
    """
    labels = np.asarray(labels, dtype=np.int64)
    unit_nodes = np.asarray(unit_nodes, dtype=np.int64)
    on = np.asarray(on_network, dtype=bool)
    centre_nodes = np.asarray(centre_nodes, dtype=np.int64)
    p = len(centre_nodes)
    n = len(unit_nodes)
    from_centres = np.full((p, n), np.inf)
    for k in range(p):
        if centre_nodes[k] < 0:
            continue
        members = np.flatnonzero((labels == k) & on)
        limit = np.inf
        if positions is not None and len(members):
            pos = np.asarray(positions, dtype=float)
            at_centre = members[unit_nodes[members] == centre_nodes[k]]
            anchor = pos[at_centre[0]] if len(at_centre) else pos[members].mean(axis=0)
            reach = float(np.sqrt(((pos[members] - anchor) ** 2).sum(axis=1)).max()) / METRES_PER_MINUTE
            limit = 1.5 * reach + 1.0
        if max_minutes is not None:
            limit = max(limit, float(max_minutes))
        for attempt in range(6):
            dist = dijkstra(network.minutes, directed=True, indices=int(centre_nodes[k]),
                            limit=limit if attempt < 5 else np.inf)
            row = dist[unit_nodes]
            if np.all(np.isfinite(row[members])) or not np.isfinite(limit) or attempt == 5:
                break
            limit *= 2.0
        from_centres[k] = row
    travel = np.full(n, np.nan)
    ok = (labels >= 0) & (labels < p) & on
    idx = np.flatnonzero(ok)
    travel[idx] = from_centres[labels[idx], idx]
    travel[~np.isfinite(travel)] = np.nan
    return TravelResult(travel_min=travel, centre_nodes=centre_nodes, from_centres=from_centres)


def repair_max_travel(labels: np.ndarray, problem, travel: TravelResult, max_minutes: float,
                      adjacency: Optional[sp.csr_matrix] = None, locked: Optional[np.ndarray] = None,
                      max_rounds: int = 5) -> tuple[np.ndarray, list[int]]:
    """Move units beyond ``max_minutes`` of their centre to a neighbouring territory whose centre
    is within the limit, when the move keeps that territory's balance (no measure's deviation
    grows beyond the tolerance or beyond the worst deviation already present) and keeps the
    donor territory in one piece. Centres stay where they are.

    ``problem`` is the core Problem (workloads, adjacency, tolerance, seed targets); the figures
    come from ``core.metrics.plan_figures``. Returns the new labels and the units moved.
    """
    from .graph import undirected
    from .metrics import plan_figures

    labels = np.asarray(labels, dtype=np.int64).copy()
    n = len(labels)
    adj = undirected(problem.adjacency if adjacency is None else adjacency, n).tocsr()
    p = travel.from_centres.shape[0]
    moved: list[int] = []
    fig = plan_figures(labels, problem)
    allowed = max(float(problem.tolerance), float(fig.max_deviation))
    for _ in range(max_rounds):
        current = travel.from_centres[np.clip(labels, 0, p - 1), np.arange(n)]
        over = np.flatnonzero((labels >= 0) & (current > max_minutes + 1e-9))
        if locked is not None:
            over = over[np.asarray(locked)[over] < 0]
        if len(over) == 0:
            break
        over = over[np.argsort(-current[over])]
        changed = False
        for u in over:
            a = int(labels[u])
            neighbours = adj.indices[adj.indptr[u]:adj.indptr[u + 1]]
            options = {int(labels[v]) for v in neighbours} - {a, -1}
            options = [b for b in options if travel.from_centres[b, u] <= max_minutes]
            options.sort(key=lambda b: travel.from_centres[b, u])
            for b in options:
                trial = labels.copy()
                trial[u] = b
                if not _still_connected(adj, labels, u, a):
                    continue
                f = plan_figures(trial, problem)
                dev_b = np.abs(f.deviation[b]).max()
                dev_a = np.abs(f.deviation[a]).max()
                if dev_b <= allowed + 1e-9 and dev_a <= allowed + 1e-9:
                    labels = trial
                    moved.append(int(u))
                    changed = True
                    break
        if not changed:
            break
    return labels, moved


def _still_connected(adj: sp.csr_matrix, labels: np.ndarray, u: int, territory: int) -> bool:
    """Does ``territory`` stay one piece without unit ``u``?"""
    members = np.flatnonzero(labels == territory)
    members = members[members != u]
    if len(members) <= 1:
        return len(members) == 1
    sub = adj[members][:, members]
    parts, _ = connected_components(sub, directed=False)
    before = adj[np.flatnonzero(labels == territory)][:, np.flatnonzero(labels == territory)]
    parts_before, _ = connected_components(before, directed=False)
    return parts <= parts_before


def with_positions(problem, positions: np.ndarray, seeds: Optional[np.ndarray] = None):
    """A copy of the engine Problem with other positions (and seeds), for running in travel time."""
    return replace(problem, positions=np.asarray(positions, dtype=float),
                   seeds=(None if seeds is None else np.asarray(seeds, dtype=float)))


@dataclass
class TravelSetup:
    """Everything road-network mode needs for one run: snapped units and seeds, and the embedding."""

    network: RoadNetwork
    units: Snap
    seeds: Optional[Snap]
    positions: np.ndarray                 # (n, 2) embedded units, for Problem.positions
    seed_positions: Optional[np.ndarray]  # (p, 2) embedded seeds, for Problem.seeds
    embedding: Embedding

    @property
    def off_network(self) -> np.ndarray:
        """Indices of units farther than the snap limit from any road."""
        return np.flatnonzero(~self.units.on_network)

    def centre_nodes(self, labels: np.ndarray, territory_count: int, weights=None) -> np.ndarray:
        """Where each territory's travel is measured from: its seed, else its centre unit."""
        if self.seeds is not None:
            return self.seeds.node.copy()
        centres = centre_units(labels, self.positions, territory_count, weights)
        return np.where(centres >= 0, self.units.node[np.maximum(centres, 0)], -1)

    def travel(self, labels: np.ndarray, territory_count: int, weights=None,
               max_minutes: Optional[float] = None) -> TravelResult:
        return plan_travel(self.network, self.units.node, self.units.on_network, labels,
                           self.centre_nodes(labels, territory_count, weights), self.positions, max_minutes)


def prepare(network: RoadNetwork, unit_positions: np.ndarray, seed_positions: Optional[np.ndarray] = None,
            snap_limit: Optional[float] = None, landmark_count: int = 24, random_seed: int = 0,
            geography: float = 0.3, progress=None) -> TravelSetup:
    """Snap units (and seeds) to the network and place them for the engine in travel time.

    The engine positions are ``geography`` x the real positions + (1 - ``geography``) x the
    travel-time embedding, rotated onto the map (orthogonal Procrustes) and scaled to the same
    spread. A two-dimensional embedding bends distances locally (about 10 % on a street grid);
    some geography keeps neighbourhoods as they are on the map while rivers, fast roads and
    missing links still push units apart or together (measured in bench/travel.py: lower maximum
    travel time per territory than either pure form). ``geography=0`` gives the pure embedding.
    """
    from scipy.linalg import orthogonal_procrustes

    unit_positions = np.asarray(unit_positions, dtype=float).reshape(-1, 2)
    units = snap(network, unit_positions, snap_limit)
    seeds = snap(network, seed_positions, units.limit) if seed_positions is not None else None
    nodes = units.node if seeds is None else np.concatenate([units.node, seeds.node])
    embedding = embed(network, nodes, landmark_count, random_seed, progress)
    n = len(units.node)
    placed = embedding.positions
    if geography > 0:
        real = unit_positions if seeds is None else np.vstack([unit_positions, np.asarray(seed_positions, float)])
        mx, my = real[:n].mean(axis=0), placed[:n].mean(axis=0)
        x, y = real - mx, placed - my
        rotation, _ = orthogonal_procrustes(y[:n], x[:n])
        y = y @ rotation
        spread = float((y[:n] ** 2).sum())
        scale = np.sqrt(float((x[:n] ** 2).sum()) / spread) if spread > 0 else 1.0
        placed = mx + geography * x + (1.0 - geography) * scale * y
    pos = placed[:n]
    seed_pos = placed[n:] if seeds is not None else None
    return TravelSetup(network=network, units=units, seeds=seeds, positions=pos, seed_positions=seed_pos,
                       embedding=embedding)
