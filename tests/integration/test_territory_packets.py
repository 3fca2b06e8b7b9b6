"""Territory packets: one PDF per territory through a print layout atlas, plus overview.pdf."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from qgis.core import QgsGeometry
from territory_planner.compat import STRING, make_field

PACKETS = "territory:territorypackets"
BUILD = "territory:buildterritories"

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                   reason="poppler-utils (pdftotext, pdftoppm) are not installed")


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture
def georgia_plan(built_plan):
    """An 8-territory Georgia plan with a previous alignment in “before”: three counties moved (this
    test's own copies of the layers; the build runs once per worker: conftest.built_plan)."""
    built = built_plan("georgia_counties.gpkg", TERRITORY_COUNT=8, BALANCE_FIELDS=["population", "elderly"],
                       TOLERANCE=10, RANDOM_SEED=1)
    units, table = built["OUTPUT"], built["OUTPUT_TERRITORIES"]
    provider = units.dataProvider()
    provider.addAttributes([make_field("before", STRING)])
    units.updateFields()
    before = units.fields().lookupField("before")
    territory_of = {f["fips"]: (f.id(), f["territory"], QgsGeometry(f.geometry())) for f in units.getFeatures()}
    values = {fid: {before: territory} for fid, territory, _ in territory_of.values()}
    moved = {}
    for fips in ("13121", "13015", "13051"):  # Fulton, Bartow, Chatham
        fid, territory, geometry = territory_of[fips]
        other = next((t for _, t, g in territory_of.values() if t != territory and g.touches(geometry)), None)
        if other is not None:
            values[fid] = {before: other}
            moved[fips] = (other, territory)  # (before, after)
    assert provider.changeAttributeValues(values)
    assert moved
    # the manager names the territories and assigns reps in the table
    name, rep = table.fields().lookupField("name"), table.fields().lookupField("rep")
    changes = {f.id(): {name: f"Region {chr(65 + n)}", rep: f"Rep {n + 1}"} for n, f in enumerate(table.getFeatures())}
    assert table.dataProvider().changeAttributeValues(changes)
    return units, table, moved


@needs_poppler
def test_a_packet_per_territory_names_its_units_and_its_gains_and_losses(run_algorithm, georgia_plan, tmp_path):
    units, table, moved = georgia_plan
    folder = tmp_path / "packets"
    result = run_algorithm(PACKETS, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table,
        "BALANCE_FIELDS": ["population", "elderly"], "UNIT_NAME_FIELD": "fips", "FIELD_BEFORE": "before",
        "OUTPUT_FOLDER": str(folder)})
    territories = {f["territory"]: f for f in table.getFeatures()}
    assert result["PACKETS"] == len(territories) == 8
    assert Path(result["OUTPUT_OVERVIEW"]) == folder / "overview.pdf"
    pdfs = sorted(folder.glob("*.pdf"))
    assert len(pdfs) == len(territories) + 1
    # every PDF renders
    for pdf in pdfs:
        out = tmp_path / "render" / pdf.stem
        out.parent.mkdir(exist_ok=True)
        subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(out)], check=True)
    assert len(list((tmp_path / "render").glob("*.png"))) >= len(territories) + 1

    members: dict[str, list[str]] = {}
    for f in units.getFeatures():
        members.setdefault(f["territory"], []).append(f["fips"])
    for code, row in territories.items():
        path = folder / f"territory_{code.replace(' ', '_')}.pdf"
        assert path.exists(), sorted(p.name for p in pdfs)
        text = pdf_text(path)
        assert row["name"] in text and row["rep"] in text
        missing = [fips for fips in members[code] if fips not in text]
        assert not missing, (code, missing)
    for fips, (old, new) in moved.items():
        gained = pdf_text(folder / f"territory_{new.replace(' ', '_')}.pdf")
        lost = pdf_text(folder / f"territory_{old.replace(' ', '_')}.pdf")
        assert "Units gained" in gained and fips in gained.split("Units gained")[1]
        assert "Units lost" in lost and fips in lost.split("Units lost")[1]
    overview = pdf_text(folder / "overview.pdf")
    assert all(row["name"] in overview for row in territories.values())


@needs_poppler
def test_packets_show_reps_and_use_the_table_colours(run_algorithm, georgia_plan, tmp_path):
    from qgis.core import QgsFeature, QgsVectorLayer
    from qgis.PyQt.QtGui import QImage

    units, table, _ = georgia_plan
    rows = {f["territory"]: f for f in table.getFeatures()}
    # a rep layer as Assign reps writes it: the territory code in a field named like the territory field
    reps = QgsVectorLayer(f"Point?crs={units.crs().authid()}&field=name:string&field=territory:string", "reps",
                          "memory")
    homes = []
    for n, code in enumerate(sorted(rows)[:3]):
        home = next(f for f in units.getFeatures() if f["territory"] == code)
        feature = QgsFeature(reps.fields())
        feature.setGeometry(home.geometry().pointOnSurface())
        feature.setAttributes([f"Home rep {n}", code])
        homes.append(feature)
    reps.dataProvider().addFeatures(homes)
    folder = tmp_path / "packets"
    run_algorithm(PACKETS, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table, "BALANCE_FIELDS": ["population"],
        "UNIT_NAME_FIELD": "fips", "REPS": reps, "REP_NAME_FIELD": "name", "OUTPUT_FOLDER": str(folder)})
    for n, code in enumerate(sorted(rows)[:3]):
        path = folder / f"territory_{code.replace(' ', '_')}.pdf"
        assert f"Home rep {n}" in pdf_text(path)  # the rep of the reps layer, in the header and at home
        # the colour bar beside the title (x 10–14 mm, y 10–30 mm) is the table's colour
        subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", "-f", "1", "-l", "1", str(path),
                        str(tmp_path / "page")], check=True)
        image = QImage(str(tmp_path / "page.png"))
        pixel = image.pixelColor(int(12 / 25.4 * 72), int(20 / 25.4 * 72))
        wanted = rows[code]["colour"]
        assert abs(pixel.red() - int(wanted[1:3], 16)) <= 3, (code, pixel.name(), wanted)
        assert abs(pixel.green() - int(wanted[3:5], 16)) <= 3, (code, pixel.name(), wanted)
        assert abs(pixel.blue() - int(wanted[5:7], 16)) <= 3, (code, pixel.name(), wanted)


@needs_poppler
def test_a_rep_without_a_location_still_heads_their_packet(run_algorithm, georgia_plan, tmp_path):
    """The one rep rule (layers/reps.py): a rep without a location keeps their territory and name;
    only the home (the star, the drive) is left out, with a warning naming the rep."""
    from qgis.core import QgsFeature, QgsProcessingFeedback, QgsVectorLayer

    units, _, _ = georgia_plan
    code = sorted({f["territory"] for f in units.getFeatures()})[0]
    reps = QgsVectorLayer(f"Point?crs={units.crs().authid()}&field=name:string&field=territory:string", "reps",
                          "memory")
    homeless = QgsFeature(reps.fields())
    homeless.setAttributes(["Nomad rep", code])
    reps.dataProvider().addFeatures([homeless])
    feedback = QgsProcessingFeedback()
    folder = tmp_path / "packets"
    run_algorithm(PACKETS, {"INPUT": units, "TERRITORY_FIELD": "territory", "REPS": reps, "REP_NAME_FIELD": "name",
                            "OUTPUT_FOLDER": str(folder)}, feedback=feedback)
    assert "Nomad rep" in pdf_text(folder / f"territory_{code.replace(' ', '_')}.pdf")
    assert "Rep “Nomad rep” (feature 1) has no location" in feedback.textLog()


@needs_poppler
def test_packets_run_from_qgis_process(georgia_layer, tmp_path):
    from qgis_process import enable_plugin, environment, run

    env = environment(str(tmp_path / "profile"))
    enable_plugin(env)
    run("territory:buildterritories", {
        "INPUT": georgia_layer.source(), "TERRITORY_COUNT": 4, "BALANCE_FIELDS": "population", "TOLERANCE": 10,
        "OUTPUT": str(tmp_path / "plan.gpkg"), "OUTPUT_TERRITORIES": str(tmp_path / "table.gpkg")}, env)
    answer = run(PACKETS, {
        "INPUT": str(tmp_path / "plan.gpkg"), "TERRITORY_FIELD": "territory",
        "TERRITORIES": str(tmp_path / "table.gpkg"), "BALANCE_FIELDS": "population", "UNIT_NAME_FIELD": "fips",
        "OUTPUT_FOLDER": str(tmp_path / "packets")}, env)
    assert answer["results"]["PACKETS"] == 4
    assert Path(answer["results"]["OUTPUT_OVERVIEW"]).exists()
    assert len(list((tmp_path / "packets").glob("territory_*.pdf"))) == 4


@needs_poppler
def test_packets_for_point_units_in_longitude_latitude(run_algorithm, nc_layer, tmp_path):
    import processing

    points = processing.run("native:centroids", {"INPUT": nc_layer, "ALL_PARTS": False,
                                                 "OUTPUT": "TEMPORARY_OUTPUT"})["OUTPUT"]
    built = run_algorithm(BUILD, {
        "INPUT": points, "TERRITORY_COUNT": 5, "BALANCE_FIELDS": ["births_1974"], "TOLERANCE": 10,
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    folder = tmp_path / "packets"
    result = run_algorithm(PACKETS, {
        "INPUT": built["OUTPUT"], "TERRITORY_FIELD": "territory", "BALANCE_FIELDS": ["births_1974"],
        "UNIT_NAME_FIELD": "name", "OUTPUT_FOLDER": str(folder)})
    assert result["PACKETS"] == 5
    members: dict[str, list[str]] = {}
    for feature in built["OUTPUT"].getFeatures():
        members.setdefault(feature["territory"], []).append(feature["name"])
    for code, names in members.items():
        text = pdf_text(folder / f"territory_{code.replace(' ', '_')}.pdf")
        assert all(name in text for name in names), code


@needs_poppler
def test_packets_show_the_drive_from_the_reps_home_by_road(run_algorithm, tmp_path):
    from pathlib import Path

    from qgis.core import QgsFeature, QgsVectorLayer

    data = Path(__file__).resolve().parents[2] / "resources" / "data" / "helsinki_roads.gpkg"
    path = tmp_path / "helsinki.gpkg"
    shutil.copy(data, path)
    accounts = QgsVectorLayer(f"{path}|layername=accounts", "accounts", "ogr")
    roads = QgsVectorLayer(f"{path}|layername=roads", "roads", "ogr")
    built = run_algorithm("territory:buildterritories", {
        "INPUT": accounts, "TERRITORY_COUNT": 3, "TOLERANCE": 10, "RANDOM_SEED": 1,
        "OUTPUT": str(tmp_path / "plan.gpkg"), "OUTPUT_TERRITORIES": "TEMPORARY_OUTPUT"})
    plan = QgsVectorLayer(built["OUTPUT"], "plan", "ogr")
    codes = sorted({f["territory"] for f in plan.getFeatures()})
    reps = QgsVectorLayer(f"Point?crs={plan.crs().authid()}&field=name:string&field=territory:string", "reps",
                          "memory")
    homes = []
    for n, code in enumerate(codes):
        home = next(f for f in plan.getFeatures() if f["territory"] == code)
        feature = QgsFeature(reps.fields())
        feature.setGeometry(home.geometry())
        feature.setAttributes([f"Rep {n}", code])
        homes.append(feature)
    reps.dataProvider().addFeatures(homes)
    folder = tmp_path / "packets"
    run_algorithm(PACKETS, {"INPUT": plan, "TERRITORY_FIELD": "territory", "REPS": reps, "REP_NAME_FIELD": "name",
                            "NETWORK": roads, "DEFAULT_SPEED": 30, "OUTPUT_FOLDER": str(folder)})
    for code in codes:
        text = pdf_text(folder / f"territory_{code.replace(' ', '_')}.pdf")
        assert "drive from home (min)" in text and "longest" in text, text[:2000]
    without = tmp_path / "plain"
    run_algorithm(PACKETS, {"INPUT": plan, "TERRITORY_FIELD": "territory", "REPS": reps, "REP_NAME_FIELD": "name",
                            "OUTPUT_FOLDER": str(without)})
    assert "drive from home" not in pdf_text(without / f"territory_{codes[0].replace(' ', '_')}.pdf")


@needs_poppler
def test_packets_list_every_gained_and_lost_unit(run_algorithm, georgia_plan, tmp_path):
    """Issue 25: the first page shows the first few changes with “… and N more”, and every unit gained
    or lost is in the packet's list of units, which runs on over further pages."""
    units, table, _ = georgia_plan
    provider = units.dataProvider()
    before = units.fields().lookupField("before")
    counts = {}
    for f in units.getFeatures():
        counts[f["territory"]] = counts.get(f["territory"], 0) + 1
    code = max(sorted(counts), key=counts.get)
    members = [f for f in units.getFeatures() if f["territory"] == code]
    assert len(members) >= 9
    other = next(t for t in sorted({f["territory"] for f in units.getFeatures()}) if t != code)
    moved = members[:9]  # nine counties the territory gained from its neighbour
    assert provider.changeAttributeValues({f.id(): {before: other} for f in moved})
    folder = tmp_path / "packets"
    run_algorithm(PACKETS, {
        "INPUT": units, "TERRITORY_FIELD": "territory", "TERRITORIES": table, "BALANCE_FIELDS": ["population"],
        "UNIT_NAME_FIELD": "fips", "FIELD_BEFORE": "before", "OUTPUT_FOLDER": str(folder)})
    text = pdf_text(folder / f"territory_{code.replace(' ', '_')}.pdf")
    assert "… and 5 more" in text
    listed = text.split("Units in the territory")[1]
    assert all(f["fips"] in listed for f in moved), "every gained unit is in the list of units"
    assert listed.count("gained from") >= 9
    lost = pdf_text(folder / f"territory_{other.replace(' ', '_')}.pdf")
    assert all(f["fips"] in lost.split("Units in the territory")[1] for f in moved), "and every lost one"
    assert lost.count("lost to") >= 9
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(folder / f"territory_{code.replace(' ', '_')}.pdf"),
                    str(tmp_path / "page")], check=True)
