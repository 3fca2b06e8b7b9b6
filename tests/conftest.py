"""Shared test set-up: the checkout is imported as ``territory_planner``; long tests start first."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_path import make_importable  # noqa: E402

make_importable()


def pytest_collection_modifyitems(items) -> None:
    """Tests marked ``slow(seconds)`` run first, the longest first; the rest keep their order.

    `make test` spreads the tests over parallel workers (pytest-xdist, worksteal): a test of
    a minute or two that started last would keep one core busy long after the other had finished.
    """

    def start(item) -> float:
        marker = item.get_closest_marker("slow")
        if marker is None:
            return 0.0
        return -float(marker.args[0] if marker.args else marker.kwargs.get("seconds", 1.0))

    items.sort(key=start)
