"""Add the county names to the bundled Georgia sample (resources/data/georgia_counties.gpkg).

The names come from the US Census Bureau's list of county FIPS codes and names as the PyPI package
addfips 0.4.2 ships it (``addfips/data/counties_2000.csv``: statefp, countyfp, name). The sample's
``fips`` is the county's five-digit FIPS code; its name is written, without the word "County", into
a text field ``name`` (as the North Carolina sample names its counties).

    pip download --no-deps addfips==0.4.2 -d /tmp/addfips && unzip -o /tmp/addfips/*.whl -d /tmp/addfips
    .venv/bin/python scripts/add_county_names.py /tmp/addfips/addfips/data/counties_2000.csv
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from osgeo import ogr

SAMPLE = Path(__file__).resolve().parents[1] / "resources" / "data" / "georgia_counties.gpkg"


def county_names(csv_path: str, state: str = "13") -> dict[str, str]:
    """{five-digit FIPS: name without " County"} of one state's counties."""
    with open(csv_path, encoding="utf-8") as handle:
        return {row["statefp"] + row["countyfp"]: row["name"].removesuffix(" County")
                for row in csv.DictReader(handle) if row["statefp"] == state}


def main(csv_path: str) -> None:
    names = county_names(csv_path)
    source = ogr.Open(str(SAMPLE), 1)
    layer = source.GetLayerByName("georgia_counties")
    if layer.GetLayerDefn().GetFieldIndex("name") < 0:
        layer.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    layer.StartTransaction()
    missing = []
    for feature in layer:
        name = names.get(feature.GetField("fips"))
        if name is None:
            missing.append(feature.GetField("fips"))
            continue
        feature.SetField("name", name)
        layer.SetFeature(feature)
    layer.CommitTransaction()
    source = None  # noqa: F841 - closes the file
    if missing:
        raise SystemExit(f"no name for the FIPS codes {missing}")


if __name__ == "__main__":
    main(sys.argv[1])
