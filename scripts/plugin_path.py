"""Make the checkout importable as the package ``territory_planner``, whatever its folder is named.

QGIS loads a plugin by the name of its folder; a checkout may be called anything. We keep a
symlink ``build/plugins/territory_planner`` → the checkout, and put ``build/plugins`` on
``sys.path`` (tests, bench) or on ``QGIS_PLUGINPATH`` (``qgis_process``, the desktop test).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "territory_planner"
ROOT = Path(__file__).resolve().parent.parent


def plugins_dir() -> Path:
    """Return a folder that holds the plugin under its package name (creating the link)."""
    folder = ROOT / "build" / "plugins"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / PACKAGE
    if not (link.is_symlink() and link.resolve() == ROOT):
        # Parallel test workers may get here at once: each makes the link under a name of its own
        # and renames it over the old one (atomic), so no process ever finds the link missing.
        spare = folder / f".{PACKAGE}-{os.getpid()}"
        if spare.is_symlink():
            spare.unlink()
        os.symlink(ROOT, spare, target_is_directory=True)
        os.replace(spare, link)
    return folder


def make_importable() -> Path:
    folder = str(plugins_dir())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return Path(folder)
