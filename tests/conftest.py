"""Shared test set-up: the checkout is imported as ``territory_planner``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from plugin_path import make_importable  # noqa: E402

make_importable()
