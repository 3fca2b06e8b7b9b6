"""Every algorithm against a table of bad inputs, as a new user would try them (issue 13).

Per case and algorithm the outcome is either a ``QgsProcessingException`` whose message names the
problem and the fix (never a Python exception type), or a documented success. Every run also
checks that the input files are byte-identical afterwards and that a failed run leaves no output
file behind. The layers are a 4 × 4 grid of 10 km squares, so the whole matrix runs in seconds.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from osgeo import ogr, osr
from qgis.core import (
    QgsFeatureRequest,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)

#: QGIS 3.22 reads GDAL's undefined SRS as a CRS without a definition, 3.40 as no CRS at all
NO_CRS = "coordinate reference system is undefined|has no coordinate reference system"
ALGORITHMS = ["buildterritories", "rebalanceterritories", "territorystatistics", "assignreps",
              "comparealignments", "buildhierarchy"]
SIDE = 10_000.0
ORIGIN = (700_000.0, 3_500_000.0)
GRID = 4
PYTHON_ERROR = re.compile(r"\b\w*(Error|Exception)\b|Traceback|object has no attribute")


# --- the test layers ----------------------------------------------------------------------------


def _srs(epsg: int | None):
    if epsg is None:
        return None
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def quadrant(row: int, col: int) -> str:
    return f"T{1 + col // 2 + 2 * (row // 2)}"


def write_units(path: Path, epsg: int | None = 26916, territory_name=quadrant, field_names: dict | None = None) -> Path:
    """A 4 × 4 grid of squares: workloads w (real) and w2 (integer), a text copy of w, a territory
    (four 2 × 2 quadrants) and an "after" alignment that moves one column."""
    names = {"w": "w", "territory": "territory"}
    names.update(field_names or {})
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = data.CreateLayer("units", _srs(epsg), ogr.wkbPolygon)
    for name, kind in ((names["w"], ogr.OFTReal), ("w2", ogr.OFTInteger), ("w_text", ogr.OFTString),
                       (names["territory"], ogr.OFTString), ("after", ogr.OFTString), ("uid", ogr.OFTString),
                       ("lock", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for row in range(GRID):
        for col in range(GRID):
            x, y = ORIGIN[0] + col * SIDE, ORIGIN[1] + row * SIDE
            feature = ogr.Feature(layer.GetLayerDefn())
            ring = f"{x} {y},{x + SIDE} {y},{x + SIDE} {y + SIDE},{x} {y + SIDE},{x} {y}"
            feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({ring}))"))
            w = 10.0 + row + col
            feature.SetField(names["w"], w)
            feature.SetField("w2", 1 + (row * col) % 3)
            feature.SetField("w_text", str(w))
            feature.SetField(names["territory"], territory_name(row, col))
            after = territory_name(row, col) if col != 2 else territory_name(row, 1)
            feature.SetField("after", after)
            feature.SetField("uid", f"U{row}{col}")
            layer.CreateFeature(feature)
    data = None
    return path


def write_reps(path: Path, names=("R1", "R2", "R3", "R4")) -> Path:
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = data.CreateLayer("reps", _srs(26916), ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("rep", ogr.OFTString))
    for k, name in enumerate(names):
        feature = ogr.Feature(layer.GetLayerDefn())
        x = ORIGIN[0] + SIDE * (1 + 2 * (k % 2))
        y = ORIGIN[1] + SIDE * (1 + 2 * (k // 2))
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT({x} {y})"))
        feature.SetField("rep", name)
        layer.CreateFeature(feature)
    data = None
    return path


def sql(path: Path, *statements: str) -> None:
    """Run SQL on a GeoPackage through GDAL (its triggers need GDAL's spatial functions)."""
    data = ogr.Open(str(path), 1)
    for statement in statements:
        data.ExecuteSQL(statement)
    data = None


def set_geometry(path: Path, fid: int, wkt: str | None) -> None:
    data = ogr.Open(str(path), 1)
    layer = data.GetLayer(0)
    feature = layer.GetFeature(fid)
    feature.SetGeometryDirectly(ogr.CreateGeometryFromWkt(wkt) if wkt else None)
    layer.SetFeature(feature)
    data = None


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# --- the matrix ---------------------------------------------------------------------------------


@dataclass
class Inputs:
    folder: Path
    out: Path
    units: str  # layer source (a GeoPackage path, or a QgsVectorLayer for memory layers)
    reps: str
    layer: QgsVectorLayer | None = None  # set when the case needs a layer object (filters, memory)


SEARCH_SECONDS = 0.5


def base_parameters(algorithm: str, inputs: Inputs) -> dict:
    units = inputs.layer if inputs.layer is not None else inputs.units
    out = inputs.out
    common = {"INPUT": units, "BALANCE_FIELDS": ["w"]}
    # The matrix is about inputs, not the search: a short TIME_LIMIT keeps the cases whose plan stays
    # out of tolerance (tolerance 0 %, all-zero workloads, ...) from searching for the default minute.
    search = {"TIME_LIMIT": SEARCH_SECONDS}
    if algorithm == "buildterritories":
        return {**common, **search, "TERRITORY_COUNT": 3, "TOLERANCE": 10.0, "OUTPUT": str(out / "units.gpkg"),
                "OUTPUT_TERRITORIES": str(out / "territories.gpkg")}
    if algorithm == "rebalanceterritories":
        return {**common, **search, "TERRITORY_FIELD": "territory", "TOLERANCE": 10.0,
                "OUTPUT": str(out / "units.gpkg"), "OUTPUT_TERRITORIES": str(out / "territories.gpkg")}
    if algorithm == "territorystatistics":
        return {**common, "TERRITORY_FIELD": "territory", "TOLERANCE": 10.0, "OUTPUT": str(out / "stats.gpkg"),
                "OUTPUT_HTML": str(out / "report.html")}
    if algorithm == "assignreps":
        return {**common, "TERRITORY_FIELD": "territory", "REPS": inputs.reps, "REP_NAME_FIELD": "rep",
                "OUTPUT": str(out / "units.gpkg"), "OUTPUT_TERRITORIES": str(out / "territories.gpkg")}
    if algorithm == "comparealignments":
        return {**common, "FIELD_BEFORE": "territory", "FIELD_AFTER": "after", "OUTPUT": str(out / "changed.gpkg"),
                "OUTPUT_SUMMARY": str(out / "summary.gpkg"), "OUTPUT_HTML": str(out / "compare.html")}
    if algorithm == "buildhierarchy":
        return {**common, "TERRITORY_FIELD": "territory", "REGION_COUNT": 2, "TOLERANCE": 10.0,
                "OUTPUT": str(out / "units.gpkg"), "OUTPUT_REGIONS": str(out / "regions.gpkg")}
    raise AssertionError(algorithm)


@dataclass
class Ok:
    """A documented success; ``warning`` (a regex) must be among the run's warnings."""

    warning: str | None = None
    check: Callable | None = None  # check(results, inputs) for figures the case is about


@dataclass
class Fails:
    """A QgsProcessingException naming the problem and the fix (both regexes, case-insensitive)."""

    problem: str
    fix: str


@dataclass
class Case:
    name: str
    prepare: Callable[[Inputs], None] | None = None  # changes the input files before they are hashed
    parameters: Callable[[str, dict, Inputs], None] | None = None  # changes the parameters in place
    expect: dict = field(default_factory=dict)  # algorithm -> Ok | Fails | None (not applicable)
    default: object = None
    geometry_check: int | None = None  # the Processing context's invalid-geometry setting


def outcome(case: Case, algorithm: str):
    return case.expect.get(algorithm, case.default)


def _set_w(value_sql: str, where: str = "fid = 6"):
    return lambda inputs: sql(Path(inputs.units), f"UPDATE units SET w = {value_sql} WHERE {where}")


def _no_crs(inputs: Inputs) -> None:
    path = Path(inputs.units)
    path.unlink()
    write_units(path, epsg=None)


def _cartesian_undefined(inputs: Inputs) -> None:
    _no_crs(inputs)
    sql(Path(inputs.units), "UPDATE gpkg_geometry_columns SET srs_id = -1", "UPDATE gpkg_contents SET srs_id = -1")


def _memory_layer_with(value: float):
    def prepare(inputs: Inputs) -> None:
        source = QgsVectorLayer(f"{inputs.units}|layername=units", "units", "ogr")
        layer = source.materialize(QgsFeatureRequest())
        index = layer.fields().lookupField("w")
        assert layer.dataProvider().changeAttributeValues({5: {index: value}})
        inputs.layer = layer

    return prepare


def _lines(inputs: Inputs) -> None:
    path = Path(inputs.units)
    data = ogr.GetDriverByName("GPKG").CreateDataSource(str(path.with_name("lines.gpkg")))
    layer = data.CreateLayer("units", _srs(26916), ogr.wkbLineString)
    for name, kind in (("w", ogr.OFTReal), ("territory", ogr.OFTString), ("after", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    for k in range(4):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"LINESTRING({700000 + k * SIDE} 3500000, "
                                                      f"{700000 + k * SIDE} 3510000)"))
        feature.SetField("w", 1.0)
        feature.SetField("territory", f"T{1 + k // 2}")
        feature.SetField("after", "T1")
        layer.CreateFeature(feature)
    data = None
    inputs.units = str(path.with_name("lines.gpkg"))


def _filtered(inputs: Inputs) -> None:
    layer = QgsVectorLayer(f"{inputs.units}|layername=units", "units", "ogr")
    assert layer.setSubsetString("\"territory\" IN ('T1', 'T2')")  # the south half: 8 units
    inputs.layer = layer


def _param(**values):
    def change(algorithm: str, parameters: dict, inputs: Inputs) -> None:
        for key, value in values.items():
            if key in parameters or key in ("TERRITORY_COUNT", "TOLERANCE", "REGION_COUNT"):
                if key == "TERRITORY_COUNT" and algorithm != "buildterritories":
                    continue
                if key == "REGION_COUNT" and algorithm != "buildhierarchy":
                    continue
                if key == "TOLERANCE" and "TOLERANCE" not in parameters:
                    continue
                parameters[key] = value(inputs) if callable(value) else value

    return change


def _outputs_in(folder_name: str):
    def change(algorithm: str, parameters: dict, inputs: Inputs) -> None:
        for key, value in list(parameters.items()):
            if key.startswith("OUTPUT") and isinstance(value, str):
                parameters[key] = str(inputs.out / folder_name / Path(value).name)

    return change


def _html_in_missing_folder(algorithm: str, parameters: dict, inputs: Inputs) -> None:
    if "OUTPUT_HTML" in parameters:
        parameters["OUTPUT_HTML"] = str(inputs.out / "no such folder" / "report.html")


def _output_is_a_folder(algorithm: str, parameters: dict, inputs: Inputs) -> None:
    (inputs.out / "a folder.gpkg").mkdir()
    parameters["OUTPUT"] = str(inputs.out / "a folder.gpkg")


def _territory(value_sql: str):
    return lambda inputs: sql(Path(inputs.units), f"UPDATE units SET territory = {value_sql}")


def _duplicate_unit_ids(algorithm: str, parameters: dict, inputs: Inputs) -> None:
    if algorithm == "comparealignments":
        parameters["INPUT_AFTER"] = inputs.units
        parameters["UNIT_ID_FIELD"] = "uid"
        parameters["FIELD_AFTER"] = "after"


def _non_ascii(inputs: Inputs) -> None:
    folder = inputs.folder / "Données Zürich 東京"
    folder.mkdir()
    path = folder / "unités.gpkg"
    names = {"T1": "Ørsted", "T2": "Zürich", "T3": "東京", "T4": "Ñandú"}
    write_units(path, territory_name=lambda row, col: names[quadrant(row, col)])
    inputs.units = str(path)


def _check_output_units(count: int):
    def check(results, inputs):
        if "OUTPUT" in results and results["OUTPUT"] and str(results["OUTPUT"]).endswith("units.gpkg"):
            layer = QgsVectorLayer(results["OUTPUT"], "out", "ogr")
            assert layer.featureCount() == count
    return check


CASES = [
    Case("empty layer", lambda i: sql(Path(i.units), "DELETE FROM units"),
         default=Fails("no features", "Choose a layer with units")),
    Case("NULL workload", _set_w("NULL"), default=Fails(r"Feature \d+ has no value \(NULL\)", "Fill it in")),
    Case("negative workload", _set_w("-5"), default=Fails("negative", "zero or more")),
    Case("infinite workload", _set_w("9e999"), default=Fails("invalid workload", "zero or more")),
    Case("NaN workload (memory layer)", _memory_layer_with(math.nan),
         default=Fails("invalid workload", "zero or more")),
    Case("all-zero workload", _set_w("0", "1"), default=Ok(warning="0 for every unit")),
    Case("text measure field", parameters=_param(BALANCE_FIELDS=["w_text"]),
         default=Fails("BALANCE_FIELDS|not numeric", "numeric")),
    Case("invalid polygon, QGIS check 'stop'",
         lambda i: set_geometry(Path(i.units), 6, "POLYGON((710000 3510000,720000 3520000,720000 3510000,"
                                                  "710000 3520000,710000 3510000))"),
         default=Ok(warning="Repaired 1 invalid"),
         geometry_check=QgsFeatureRequest.InvalidGeometryCheck.GeometryAbortOnInvalid),
    Case("invalid polygon, QGIS check off",
         lambda i: set_geometry(Path(i.units), 6, "POLYGON((710000 3510000,720000 3520000,720000 3510000,"
                                                  "710000 3520000,710000 3510000))"),
         default=Ok(warning="Repaired 1 invalid"),
         geometry_check=QgsFeatureRequest.InvalidGeometryCheck.GeometryNoCheck),
    Case("invalid polygon, QGIS check 'skip'",
         lambda i: set_geometry(Path(i.units), 6, "POLYGON((710000 3510000,720000 3520000,720000 3510000,"
                                                  "710000 3520000,710000 3510000))"),
         default=Ok(warning="Repaired 1 invalid"),
         geometry_check=QgsFeatureRequest.InvalidGeometryCheck.GeometrySkipInvalid),
    Case("empty geometry", lambda i: set_geometry(Path(i.units), 6, "POLYGON EMPTY"),
         default=Fails("has no geometry", "Give it a geometry or filter it out")),
    Case("NULL geometry", lambda i: set_geometry(Path(i.units), 6, None),
         default=Fails("has no geometry", "Give it a geometry or filter it out")),
    Case("GeoPackage without CRS (undefined geographic SRS)", _no_crs,
         default=Fails(NO_CRS, "Set the layer's CRS")),
    Case("GeoPackage with undefined Cartesian SRS", _cartesian_undefined,
         default=Fails(NO_CRS, "Set the layer's CRS")),
    Case("duplicate unit ids (compare, layer after)",
         lambda i: sql(Path(i.units), "UPDATE units SET uid = 'U00' WHERE fid = 2"), _duplicate_unit_ids,
         default=Ok(), expect={"comparealignments": Fails("repeated .*U00", "choose a unique id field")}),
    Case("duplicate rep names", lambda i: (Path(i.reps).unlink(), write_reps(Path(i.reps), ("R1", "R1", "R3"))),
         default=Ok(), expect={"assignreps": Fails("unique; repeated: R1", "Tell the reps apart")}),
    Case("duplicate seed names (build)", parameters=lambda a, p, i: p.update(SEEDS=i.reps, SEED_NAME_FIELD="rep")
         if a == "buildterritories" else None,
         prepare=lambda i: (Path(i.reps).unlink(), write_reps(Path(i.reps), ("R1", "R1", "R3"))),
         default=Ok(), expect={"buildterritories": Fails("unique; repeated: R1", "own name"),
                               "assignreps": Fails("unique; repeated: R1", "Tell the reps apart")}),
    Case("input file missing", parameters=lambda a, p, i: p.update(INPUT=str(i.folder / "gone.gpkg")),
         default=Fails("gone.gpkg.*could not be opened", "Check the path")),
    Case("line layer as units", _lines, default=Fails("INPUT|line", "polygon or point")),
    Case("max changed units 150 %", parameters=lambda a, p, i: p.update(MAX_CHANGED_UNITS=150)
         if a == "rebalanceterritories" else None,
         default=Ok(), expect={"rebalanceterritories": Fails("MAX_CHANGED_UNITS", "from 0 to 100")}),
    Case("K above the number of units", parameters=_param(TERRITORY_COUNT=17, REGION_COUNT=5),
         default=Ok(), expect={"buildterritories": Fails("16 units but 17 territories", "at most 16"),
                               "buildhierarchy": Fails("4 territories .* 5 regions", "at most 4 regions")}),
    Case("K = 0", parameters=_param(TERRITORY_COUNT=0, REGION_COUNT=0),
         default=Ok(), expect={"buildterritories": Fails("TERRITORY_COUNT", "minimum|at least|1"),
                               "buildhierarchy": Fails("REGION_COUNT", "minimum|at least|1")}),
    Case("K = number of units", parameters=_param(TERRITORY_COUNT=16, REGION_COUNT=4), default=Ok()),
    Case("tolerance 0 %", parameters=_param(TOLERANCE=0.0), default=Ok()),
    Case("tolerance 100 % (the parameter's maximum)", parameters=_param(TOLERANCE=100.0), default=Ok()),
    Case("tolerance above 100 %", parameters=_param(TOLERANCE=150.0), default=Ok(),
         expect={a: Fails("TOLERANCE", "100") for a in ("buildterritories", "rebalanceterritories",
                                                         "territorystatistics", "buildhierarchy")}),
    Case("negative tolerance", parameters=_param(TOLERANCE=-1.0), default=Ok(),
         expect={a: Fails("TOLERANCE", "0") for a in ("buildterritories", "rebalanceterritories",
                                                       "territorystatistics", "buildhierarchy")}),
    Case("output in a missing folder", parameters=_outputs_in("missing"),
         default=Fails("folder .* does not exist", "Create the folder")),
    Case("report in a missing folder", parameters=_html_in_missing_folder, default=Ok(),
         expect={a: Fails("folder .* does not exist", "Create the folder")
                 for a in ("territorystatistics", "comparealignments")}),
    Case("temporary outputs (TEMPORARY_OUTPUT, memory:)", parameters=lambda a, p, i: p.update(
        {k: ("TEMPORARY_OUTPUT" if k != "OUTPUT" else "memory:") for k in p if k.startswith("OUTPUT")}),
         default=Ok()),
    Case("output path is a folder", parameters=_output_is_a_folder,
         default=Fails("names a folder", "Add a file name")),
    Case("territory field empty everywhere", _territory("NULL"), default=Fails("empty", "Build territories first|pick"),
         expect={"buildterritories": Ok(), "comparealignments": Ok(),
                 "buildhierarchy": Fails("16 units have no territory", "give every unit a territory"),
                 "territorystatistics": Fails("No unit has a territory", "build territories first")}),
    Case("some units without a territory",
         lambda i: sql(Path(i.units), "UPDATE units SET territory = NULL WHERE fid = 3"),
         default=Ok(), expect={"buildhierarchy": Fails("1 units have no territory", "give every unit a territory")}),
    Case("non-ASCII folder, file, field values", _non_ascii, default=Ok()),
    Case("layer with a filter (subset string)", _filtered, default=Ok(check=_check_output_units(8)),
         expect={"buildterritories": Ok(check=_check_output_units(8)),
                 "buildhierarchy": Ok(check=_check_output_units(8))}),
]


class Messages(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.warnings: list[str] = []

    def pushWarning(self, text):  # noqa: N802 - QGIS API name
        self.warnings.append(text)
        super().pushWarning(text)


def _run(run_algorithm, case: Case, algorithm: str, tmp_path: Path):
    inputs_folder = tmp_path / "inputs"
    inputs_folder.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    inputs = Inputs(inputs_folder, out, str(write_units(inputs_folder / "units.gpkg")),
                    str(write_reps(inputs_folder / "reps.gpkg")))
    if case.prepare is not None:
        case.prepare(inputs)
    parameters = base_parameters(algorithm, inputs)
    if case.parameters is not None:
        case.parameters(algorithm, parameters, inputs)
    unit_folder = Path(inputs.units).parent
    before = {**digest(inputs_folder), **digest(unit_folder)}
    before_out = {p.name for p in out.iterdir()}
    feedback = Messages()
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    abort = QgsFeatureRequest.InvalidGeometryCheck.GeometryAbortOnInvalid
    context.setInvalidGeometryCheck(abort if case.geometry_check is None else case.geometry_check)
    error = results = None
    try:
        results = run_algorithm(f"territory:{algorithm}", parameters, feedback=feedback, context=context)
    except QgsProcessingException as exception:
        error = str(exception)
    after = {**digest(inputs_folder), **digest(unit_folder)}
    return inputs, before, after, before_out, results, error, feedback, out


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(run_algorithm, case, algorithm, tmp_path):
    expected = outcome(case, algorithm)
    inputs, before, after, before_out, results, error, feedback, out = _run(run_algorithm, case, algorithm, tmp_path)
    assert after == before, "an input file changed"
    if isinstance(expected, Fails):
        assert error is not None, f"expected an error, got {results}"
        assert re.search(expected.problem, error, re.IGNORECASE), error
        assert re.search(expected.fix, error, re.IGNORECASE), error
        assert not PYTHON_ERROR.search(error), error
        left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert not left, f"partial outputs left: {left}"
    else:
        assert error is None, error
        assert isinstance(expected, Ok)
        if expected.warning:
            assert any(re.search(expected.warning, w) for w in feedback.warnings), feedback.warnings
        if expected.check is not None:
            expected.check(results, inputs)


# --- what the matrix relies on --------------------------------------------------------------------


def test_every_algorithm_checks_outputs_and_removes_partial_ones(territory_provider):
    from territory_planner.algorithms.provider import algorithm_classes

    names = {cls().name() for cls in algorithm_classes()}
    # Territory packets writes a folder of PDFs; its bad inputs are tested in test_territory_packets.py,
    # those of the feedback pages and their review in test_feedback_review.py. Set territory goals reads a
    # territory table (no geometry needed); its bad inputs are in test_set_goals.py. Assign accounts is about
    # bad accounts, tested in test_assign_accounts.py.
    assert names == set(ALGORITHMS) | {"territorypackets", "feedbackpages", "reviewfeedback", "setgoals",
                                       "assignaccounts"}
    for cls in algorithm_classes():
        assert getattr(cls.processAlgorithm, "removes_partial_outputs", False), cls.__name__


class CancelAt(QgsProcessingFeedback):
    """Cancels when the algorithm announces ``step``: after its layer outputs are written."""

    def __init__(self, step: str):
        super().__init__()
        self.step = step

    def setProgressText(self, text):  # noqa: N802 - QGIS API name
        super().setProgressText(text)
        if text.startswith(self.step):
            self.cancel()


@pytest.mark.parametrize("algorithm, step", [("territorystatistics", "Drawing the map"),
                                             ("comparealignments", "Writing the realignment report")])
def test_a_run_failing_after_its_layers_were_written_leaves_no_file(run_algorithm, tmp_path, algorithm, step):
    out = tmp_path / "out"
    out.mkdir()
    inputs = Inputs(tmp_path, out, str(write_units(tmp_path / "units.gpkg")), str(write_reps(tmp_path / "reps.gpkg")))
    parameters = base_parameters(algorithm, inputs)
    (out / "keep me.txt").write_text("an unrelated file in the output folder")
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_algorithm(f"territory:{algorithm}", parameters, feedback=CancelAt(step))
    assert [p.name for p in out.iterdir()] == ["keep me.txt"]


def test_the_context_invalid_geometry_setting_is_left_as_it_was(run_algorithm, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    inputs = Inputs(tmp_path, out, str(write_units(tmp_path / "units.gpkg")), str(write_reps(tmp_path / "reps.gpkg")))
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    context.setInvalidGeometryCheck(QgsFeatureRequest.InvalidGeometryCheck.GeometrySkipInvalid)
    run_algorithm("territory:territorystatistics", base_parameters("territorystatistics", inputs), context=context)
    assert context.invalidGeometryCheck() == QgsFeatureRequest.InvalidGeometryCheck.GeometrySkipInvalid


@pytest.fixture
def full_disk(tmp_path):
    """A 96 KiB tmpfs: too small for a GeoPackage of the 159 Georgia counties (needs root)."""
    import os
    import subprocess

    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_gives_a_clear_error_and_leaves_input_and_folder_clean(run_algorithm, georgia_layer, full_disk):
    source = Path(georgia_layer.source().split("|")[0])
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(QgsProcessingException) as raised:
        run_algorithm("territory:buildterritories", {
            "INPUT": georgia_layer, "TERRITORY_COUNT": 5, "BALANCE_FIELDS": ["population"],
            "OUTPUT": str(full_disk / "units.gpkg"), "OUTPUT_TERRITORIES": "memory:"})
    message = str(raised.value)
    assert "could not be written" in message and "free space" in message, message
    assert not PYTHON_ERROR.search(message.replace("OGR error", "")), message
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert list(full_disk.iterdir()) == []
