"""Build every case of an instance file and save the labels (run by test_same_everywhere.py).

    python same_everywhere_worker.py CASES.npz LABELS.npz

Runs in whatever interpreter the test names (e.g. a NumPy 2 venv without QGIS): it imports only
the engine (numpy, scipy). Each case in CASES.npz is stored as ``<name>/positions``,
``<name>/workloads``, ``<name>/edges`` (one row per neighbour pair) and ``<name>/territories``.
LABELS.npz gets ``<name>`` (the labels) and ``versions`` (NumPy and SciPy of this interpreter).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_path import make_importable  # noqa: E402

NO_CLOCK = 3600.0  # seconds: far beyond where patience stops any case here


def case_names(data) -> list:
    return sorted({key.split("/")[0] for key in data.files})


def build(data, name: str) -> np.ndarray:
    """The labels the engine builds for one case, with random seed 0 and default settings."""
    make_importable()
    from territory_planner.core import engine
    from territory_planner.core.engine import build_territories
    from territory_planner.core.problem import Problem

    # Out of tolerance the search stops by patience, or at the default time limit, which counts
    # wall-clock seconds: on a loaded machine the clock would cut one of the two runs elsewhere.
    # The comparison is about the seed, so the clock is moved out of the way (patience still rules).
    engine.DEFAULT_TIME_LIMIT = NO_CLOCK

    positions = np.asarray(data[f"{name}/positions"], dtype=float)
    edges = np.asarray(data[f"{name}/edges"], dtype=np.int64).reshape(-1, 2)
    n = positions.shape[0]
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    problem = Problem(positions=positions, workloads=np.asarray(data[f"{name}/workloads"], dtype=float),
                      adjacency=adjacency, territory_count=int(data[f"{name}/territories"]), random_seed=0)
    return np.asarray(build_territories(problem).labels, dtype=np.int64)


def main(argv: list) -> int:
    cases, out = argv[1], argv[2]
    with np.load(cases) as data:
        labels = {name: build(data, name) for name in case_names(data)}
    np.savez(out, versions=np.array(f"NumPy {np.__version__}, SciPy {scipy.__version__}"), **labels)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
