"""Shared test set-up: the checkout is imported as ``territory_planner``; long tests start first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_path import make_importable  # noqa: E402

make_importable()


def pytest_collection_modifyitems(items) -> None:
    """Tests marked ``slow(seconds)`` start first, spread over the parallel workers; the rest keep
    their order.

    `make test` spreads the tests over parallel workers (pytest-xdist, worksteal): each worker is
    handed a contiguous share of this list at the start and an idle worker later takes the tail of
    another's queue, never the test that runs nor the one after it. So the long tests go, longest
    first, each to the share with the fewest seconds of long tests so far, at the head of that share
    with a quick test after each: they start at once, and a long test queued behind another can be
    taken by an idle worker instead of waiting on a busy core.
    """
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)

    def seconds(item) -> float:
        marker = item.get_closest_marker("slow")
        if marker is None:
            return 0.0
        return float(marker.args[0] if marker.args else marker.kwargs.get("seconds", 1.0))

    slow = sorted((item for item in items if seconds(item) > 0), key=seconds, reverse=True)
    quick = [item for item in items if seconds(item) == 0]
    # the shares as worksteal hands them out: worker i gets len(left) // (workers - i)
    sizes, left = [], len(items)
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    shares: list = [[] for _ in range(workers)]
    load = [0.0] * workers
    for item in slow:
        room = [i for i in range(workers) if len(shares[i]) < sizes[i]] or list(range(workers))
        best = min(room, key=lambda i: load[i])
        shares[best].append(item)
        load[best] += seconds(item)
    ordered = []
    for i in range(workers):
        take = max(sizes[i] - len(shares[i]), 0) if i < workers - 1 else len(quick)
        mine, quick = quick[:take], quick[take:]
        # a quick test after each long one: the test after a running one cannot be taken away
        for k, item in enumerate(shares[i]):
            ordered += [item] + mine[k:k + 1]
        ordered += mine[len(shares[i]):]
    items[:] = ordered
