"""Layers for the accounts tests: a 4 × 4 grid of 10 km squares in four quadrant territories, and
account points (or a table of accounts with a unit id) written to GeoPackages through GDAL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from osgeo import ogr, osr
from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject, QgsVectorLayer

SIDE = 10_000.0
ORIGIN = (700_000.0, 3_500_000.0)
GRID = 4
UNITS_EPSG = 26916


def quadrant(row: int, col: int) -> str:
    return f"T{1 + col // 2 + 2 * (row // 2)}"


def srs(epsg: int):
    reference = osr.SpatialReference()
    reference.ImportFromEPSG(epsg)
    reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return reference


def write_grid(path: Path, territory_of=quadrant) -> Path:
    """Units ``U{row}{col}`` (field ``uid``) with ``population`` = 100 each and a territory field."""
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = data.CreateLayer("units", srs(UNITS_EPSG), ogr.wkbPolygon)
    for name, kind in (("uid", ogr.OFTString), ("population", ogr.OFTReal), ("territory", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for row in range(GRID):
        for col in range(GRID):
            x, y = ORIGIN[0] + col * SIDE, ORIGIN[1] + row * SIDE
            feature = ogr.Feature(layer.GetLayerDefn())
            ring = f"{x} {y},{x + SIDE} {y},{x + SIDE} {y + SIDE},{x} {y + SIDE},{x} {y}"
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({ring}))"))
            feature.SetField("uid", f"U{row}{col}")
            feature.SetField("population", 100.0)
            territory = territory_of(row, col)
            if territory is not None:
                feature.SetField("territory", territory)
            layer.CreateFeature(feature)
    data = None
    return path


def cell_point(row: float, col: float) -> tuple[float, float]:
    """The map point (units' CRS) at fractional grid position (row, col): (1.5, 0.5) is the middle
    of the unit in row 1, column 0."""
    return ORIGIN[0] + col * SIDE, ORIGIN[1] + row * SIDE


@dataclass
class Account:
    ident: object
    at: tuple[float, float] | None  # (row, col) in grid cells, None: no location
    visits: float | None = 1.0
    override: str | None = None
    unit: str | None = None
    name: str | None = None
    wkt: str | None = None  # a geometry of its own (multipoints)


def write_accounts(path: Path, accounts: list[Account], epsg: int | None = UNITS_EPSG, id_kind=ogr.OFTString,
                   extra: tuple[str, ...] = ()) -> Path:
    """Accounts as points in ``epsg`` (None: a table without geometry), fields id, name, visits,
    override and zip (the id of its unit), and the real fields ``extra`` (1 each)."""
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = data.CreateLayer("accounts", srs(epsg) if epsg else None, ogr.wkbPoint if epsg else ogr.wkbNone)
    for name, kind in (("id", id_kind), ("name", ogr.OFTString), ("visits", ogr.OFTReal),
                       ("override", ogr.OFTString), ("zip", ogr.OFTString), *[(e, ogr.OFTReal) for e in extra]):
        layer.CreateField(ogr.FieldDefn(name, kind))
    transform = None
    if epsg and epsg != UNITS_EPSG:
        transform = QgsCoordinateTransform(QgsCoordinateReferenceSystem(f"EPSG:{UNITS_EPSG}"),
                                           QgsCoordinateReferenceSystem(f"EPSG:{epsg}"), QgsProject.instance())
    for account in accounts:
        feature = ogr.Feature(layer.GetLayerDefn())
        if account.ident is not None:
            feature.SetField("id", account.ident)
        for name in extra:
            feature.SetField(name, 1.0)
        for name in ("name", "visits", "override", "unit"):
            value = getattr(account, name)
            if value is not None:
                feature.SetField("zip" if name == "unit" else name, value)
        if epsg and account.wkt:
            feature.SetGeometry(ogr.CreateGeometryFromWkt(account.wkt))
        elif epsg and account.at is not None:
            x, y = cell_point(*account.at)
            if transform is not None:
                point = transform.transform(QgsPointXY(x, y))
                x, y = point.x(), point.y()
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT({x} {y})"))
        layer.CreateFeature(feature)
    data = None
    return path


def layer_of(path: Path, name: str) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    assert layer.isValid(), path
    return layer


def as_layer(value) -> QgsVectorLayer:
    if isinstance(value, QgsVectorLayer):
        return value
    layer = QgsVectorLayer(value, "output", "ogr")
    assert layer.isValid(), value
    return layer


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def rows_by(layer: QgsVectorLayer, key: str) -> dict:
    return {str(f[key]): f for f in layer.getFeatures()}
