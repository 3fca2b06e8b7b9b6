"""The plugin's one translation helper: every user-facing string goes through ``tr``.

One context, so that a translator sees the plugin's strings in one list. Call ``tr`` on the
constant text and format afterwards: ``tr("Territory {} has no units").format(name)``.
Nothing here may be imported by ``core/``.
"""

from __future__ import annotations

from qgis.PyQt.QtCore import QCoreApplication

CONTEXT = "TerritoryPlanner"


def tr(text: str) -> str:
    """``text`` translated for the running QGIS locale (itself when no translation is installed)."""
    return QCoreApplication.translate(CONTEXT, text)
