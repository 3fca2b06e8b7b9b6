"""Run GerryChain's ``recursive_tree_part`` on one benchmark instance, in GerryChain's own venv.

GerryChain 1.0.0 needs numpy >= 2.4, which cannot go into the plugin's venv (Debian's GDAL is
built against numpy 1), so ``bench/run.py`` runs this file with ``build/gerrychain-venv``'s
Python. It reads the instance's .npz (only numpy is needed for that), balances ONE measure with
the given epsilon, and writes the labels (.npy) and a JSON record of the time spent in
``recursive_tree_part`` alone and in the whole process, and the process's peak RSS (VmHWM).

    python gerrychain_worker.py INSTANCE.npz MEASURE EPSILON RNG_SEED OUT_PREFIX
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import time

START = time.perf_counter()

import numpy as np  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM, which starts afresh at exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def main(argv: list[str]) -> int:
    instance_path, measure, epsilon, rng_seed, out_prefix = argv

    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part

    with np.load(instance_path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        edges = data["edges"]
        column = data["workloads"][:, meta["measures"].index(measure)]
    territories = int(meta["territories"])
    nx_graph = nx.Graph()
    nx_graph.add_nodes_from((i, {"weight": float(w)}) for i, w in enumerate(column))
    nx_graph.add_edges_from(map(tuple, edges.tolist()))
    graph = Graph.from_networkx(nx_graph)
    built = time.perf_counter()
    assignment = recursive_tree_part(
        graph, list(range(territories)), pop_target=float(column.sum()) / territories, pop_col="weight",
        epsilon=float(epsilon), rng=int(rng_seed))
    done = time.perf_counter()
    labels = np.full(len(column), -1, dtype=np.int64)
    for node, part in assignment.items():
        labels[int(node)] = int(part)
    np.save(out_prefix + ".npy", labels)
    record = {
        "seconds": done - built,
        "graph_seconds": built - START,
        "process_seconds": time.perf_counter() - START,
        "peak_rss_mb": peak_rss_mb(),
        "version": importlib.metadata.version("gerrychain"),
        "numpy": np.__version__,
    }
    with open(out_prefix + ".json", "w") as handle:
        json.dump(record, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
