"""Territory Planner: balanced, contiguous sales territories inside QGIS."""


def classFactory(iface):  # noqa: N802 - name required by QGIS
    """Load the plugin class; called by QGIS when the plugin is enabled."""
    from .plugin import TerritoryPlannerPlugin

    return TerritoryPlannerPlugin(iface)
