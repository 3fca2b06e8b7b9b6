"""The panel: the dock (a view), its controller, the assignment service, their widgets and background tasks."""
