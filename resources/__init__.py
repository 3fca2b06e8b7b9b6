"""Paths to the plugin's bundled icons, forms and sample data, resolved at run time."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent


def icon_path(name: str) -> str:
    return str(RESOURCES / "icons" / name)


def icon(name: str):
    from qgis.PyQt.QtGui import QIcon

    return QIcon(icon_path(name))


def sample_data(name: str) -> str:
    return str(RESOURCES / "data" / name)
