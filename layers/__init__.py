"""QGIS layers ↔ engine arrays, shared by the Processing algorithms and the dock."""
