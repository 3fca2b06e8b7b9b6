"""Static Qt6-readiness check, run by `make lint`: finds Qt5-only patterns that break under
QGIS 4 (Qt6, PyQt6) without importing Qt or QGIS.

    python scripts/qt6_check.py [PATH ...]     # default: every Python file of the checkout
    python scripts/qt6_check.py --fix [PATH ...]   # also scope the enum values it knows (SCOPES)

Codes:
  QT601  an unscoped enum value (``Qt.AlignLeft``, ``QgsMapLayerProxyModel.PolygonLayer``,
         ``Qgis.Warning``): PyQt6 knows only the scoped form ``Qt.AlignmentFlag.AlignLeft``.
  QT602  ``exec_``: gone in PyQt6; ``exec()`` works on both.
  QT603  a class imported from the Qt module it left in Qt6 (``QAction``, ``QShortcut``,
         ``QUndoCommand``, ``QUndoStack`` ... moved from QtWidgets to QtGui). Allowed as the
         fallback of ``try: from qgis.PyQt.QtGui import X`` / ``except ImportError:``.
  QT604  a ``QVariant`` type code (``QVariant.Int``, ``QVariant.Type.String``): PyQt6 has none;
         use ``QMetaType`` through the plugin's compat module.

An enum value is told from the rest by its shape: ``Owner.Member`` where Owner is a Qt or QGIS
class (``Qt``, ``Qgis``, ``Q...``) and Member starts with a capital letter, is not ALL_CAPS (a
constant), is not itself scoped further (``Qt.AlignmentFlag.AlignLeft``: Member is then the
enum type) and is not called (a nested class). A line whose comment says ``qt6: ok`` (or ``qt6-ok``) is not checked.
Exit status 1 when anything is found.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPPRESS = re.compile(r"#.*\bqt6(:\s*|-)ok\b")  # "# qt6: ok" or "# qt6-ok"
QT_OWNER = re.compile(r"^(Qt|Q(?!t[A-Z0-9])[A-Za-z][A-Za-z0-9]*)$")  # Qt, Qgis, QgsTask, QAction; not QtCore
# Enum types and nested classes that are used bare (``isinstance(x, Qgis.MessageLevel)``).
ENUM_TYPES_AND_CLASSES = frozenset({
    "MessageLevel", "AlignmentFlag", "ItemDataRole", "ItemFlag", "Orientation", "Type", "Flag", "Flags",
    "Filter", "Filters", "LayerFilter", "LayerFilters", "WkbType", "GeometryType", "ProcessingSourceType",
})
# Qt5 module -> {class: its Qt6 module}
MOVED = {
    "QtWidgets": {name: "QtGui" for name in (
        "QAction", "QActionGroup", "QShortcut", "QUndoCommand", "QUndoStack", "QUndoGroup", "QFileSystemModel")},
}
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}
# The scope of enum values this plugin uses, in the form QGIS 3.22 and 3.40 both accept without a
# deprecation warning (checked on both); ``--fix`` inserts it: QgsTask.CanCancel -> QgsTask.Flag.CanCancel.
SCOPES = {
    "Qgis": ("MessageLevel", "Info Warning Critical Success NoLevel"),
    "QgsTask": ("Flag", "CanCancel CancelWithoutPrompt Hidden Silent AllFlags"),
    "QgsFeatureRequest": ("Flag", "NoFlags NoGeometry SubsetOfAttributes ExactIntersect"),
    "QgsFeatureSink": ("Flag", "FastInsert RollBackOnErrors"),
    "QgsProcessing": ("SourceType", "TypeMapLayer TypeVectorAnyGeometry TypeVectorPoint TypeVectorLine "
                                    "TypeVectorPolygon TypeRaster TypeFile TypeVector TypeMesh TypePlugin"),
    "QgsProcessingParameterField": ("DataType", "Any Numeric String DateTime"),
    "QgsProcessingParameterNumber": ("Type", "Integer Double"),
    "QgsSimpleMarkerSymbolLayerBase": ("Shape", "Square Diamond Pentagon Hexagon Triangle Star Circle Cross"),
    "QgsUnitTypes": ("DistanceUnit", "DistanceMeters DistanceKilometers DistanceFeet DistanceMiles "
                                     "DistanceDegrees DistanceUnknownUnit"),
    "QgsVectorDataProvider": ("Capability", "AddFeatures DeleteFeatures ChangeAttributeValues AddAttributes "
                                            "DeleteAttributes ChangeGeometries"),
    "QgsVectorFileWriter": ("WriterError", "NoError ErrDriverNotFound ErrCreateDataSource ErrCreateLayer "
                                           "ErrAttributeTypeUnsupported ErrAttributeCreationFailed"),
    "QgsMapLayerProxyModel": ("Filter", "RasterLayer NoGeometry PointLayer LineLayer PolygonLayer HasGeometry "
                                        "VectorLayer MeshLayer All"),
    "QgsFieldProxyModel": ("Filter", "String Int LongLong Double Numeric Date Time DateTime AllTypes"),
}
_SCOPE_OF = {(owner, member): enum for owner, (enum, members) in SCOPES.items() for member in members.split()}
_WKB_TYPES = "Unknown Point LineString Polygon MultiPoint MultiLineString MultiPolygon NoGeometry PointZ PolygonZ"
_SCOPE_OF.update({("QgsWkbTypes", member): "Type" for member in _WKB_TYPES.split()})
_SCOPE_OF.update({("QgsWkbTypes", member): "GeometryType" for member in
                  "PointGeometry LineGeometry PolygonGeometry UnknownGeometry NullGeometry".split()})


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    code: str
    message: str
    #: (line, column) where ``insert`` turns the finding into its portable form, when known
    fix_at: tuple[int, int] | None = None
    insert: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column + 1}: {self.code} {self.message}"


def _final_name(node: ast.AST) -> str | None:
    """``Qt`` for ``Qt`` and for ``QtCore.Qt``; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    return _final_name(node) or "…"


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_final_name(kind) in IMPORT_ERRORS for kind in kinds if kind is not None)


class _Checker(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.findings: list[Finding] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        self.in_import_fallback = 0

    def report(self, node: ast.AST, code: str, message: str) -> None:
        self.findings.append(Finding(self.path, node.lineno, node.col_offset, code, message))

    def check(self, tree: ast.AST) -> list[Finding]:
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.visit(tree)
        return self.findings

    # -- QT603: imports that moved between modules -------------------------------------------
    def visit_Try(self, node: ast.Try) -> None:
        for part in node.body + node.orelse + node.finalbody:
            self.visit(part)
        for handler in node.handlers:
            fallback = _catches_import_error(handler)
            self.in_import_fallback += fallback
            self.visit(handler)
            self.in_import_fallback -= fallback

    visit_TryStar = visit_Try  # noqa: N815 - the name ast.NodeVisitor looks up

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").rsplit(".", 1)[-1]
        moved = MOVED.get(module, {})
        if not self.in_import_fallback:
            for alias in node.names:
                if alias.name in moved:
                    self.report(node, "QT603", f"{alias.name} is in {moved[alias.name]} in Qt6, not {module}: "
                                              f"import it from the compat module (or try {moved[alias.name]} "
                                              f"first and fall back to {module} on ImportError)")
        self.generic_visit(node)

    # -- QT601, QT602, QT603 (QtWidgets.QAction), QT604 ---------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = _final_name(node.value)
        member = node.attr
        parent = self.parents.get(node)
        if member == "exec_":
            self.report(node, "QT602", "exec_() is gone in PyQt6: call exec()")
        elif owner == "QVariant" and member[:1].isupper():
            self.report(node, "QT604", f"{_dotted(node)}: QVariant type codes are gone in PyQt6; use the "
                                      "compat module's field types (QMetaType)")
        elif owner in MOVED and member in MOVED[owner] and not self.in_import_fallback:
            self.report(node, "QT603", f"{owner}.{member} is in {MOVED[owner][member]} in Qt6")
        elif owner and QT_OWNER.match(owner) and self._looks_like_unscoped_enum(node, parent):
            scope = _SCOPE_OF.get((owner, member))
            if scope:
                self.findings.append(Finding(
                    self.path, node.lineno, node.col_offset, "QT601",
                    f"{_dotted(node)} is an unscoped enum; write {_dotted(node.value)}.{scope}.{member} "
                    "(--fix does)", fix_at=(node.end_lineno, node.end_col_offset - len(member)), insert=scope + "."))
            else:
                self.report(node, "QT601", f"{_dotted(node)} is an unscoped enum; PyQt6 needs the enum's scope, "
                                          f"e.g. {_dotted(node.value)}.<EnumType>.{member}")
        self.generic_visit(node)

    @staticmethod
    def _looks_like_unscoped_enum(node: ast.Attribute, parent: ast.AST | None) -> bool:
        member = node.attr
        if not member[:1].isupper() or member.upper() == member or member in ENUM_TYPES_AND_CLASSES:
            return False
        if member.startswith("Q") and QT_OWNER.match(member):  # a class in a module: QtCore.QTimer
            return False
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr[:1].isupper():
            return False  # Owner.EnumType.Value
        if isinstance(parent, ast.Call) and parent.func is node:
            return False  # Owner.NestedClass(...)
        return True


def _suppressed_lines(source: str) -> set[int]:
    lines = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and SUPPRESS.search(token.string):
                lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings in one module's source, in line order."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return [Finding(path, error.lineno or 1, (error.offset or 1) - 1, "QT600", f"cannot parse: {error.msg}")]
    suppressed = _suppressed_lines(source)
    findings = [f for f in _Checker(path).check(tree) if f.line not in suppressed]
    return sorted(findings, key=lambda f: (f.line, f.column, f.code))


def fix_source(source: str, findings: list[Finding]) -> str:
    """``source`` with every finding that has a known fix applied."""
    lines = source.splitlines(keepends=True)
    for finding in sorted((f for f in findings if f.fix_at), key=lambda f: f.fix_at, reverse=True):
        line, column = finding.fix_at
        text = lines[line - 1]
        # ast columns count UTF-8 bytes
        encoded = text.encode("utf-8")
        lines[line - 1] = (encoded[:column] + finding.insert.encode("utf-8") + encoded[column:]).decode("utf-8")
    return "".join(lines)


def default_files(root: Path = ROOT) -> list[Path]:
    """Every Python file of ``root`` that git tracks or would track (outside git: all but build output)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.py"],
                                cwd=root, capture_output=True, check=True).stdout.decode()
        return [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {"build", "dist", ".venv", ".git", "demo-output", "test-output", "__pycache__"}
        return [p for p in sorted(root.rglob("*.py")) if not skip & set(p.relative_to(root).parts)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the Python files git tracks)")
    parser.add_argument("--fix", action="store_true", help="scope the enum values whose scope is known, in place")
    arguments = parser.parse_args(argv)
    files: list[Path] = []
    for path in arguments.paths or default_files():
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    findings: list[Finding] = []
    for path in files:
        try:
            shown = str(path.resolve().relative_to(ROOT))
        except ValueError:
            shown = str(path)
        source = path.read_text(encoding="utf-8")
        found = check_source(source, shown)
        if arguments.fix and any(f.fix_at for f in found):
            path.write_text(fix_source(source, found), encoding="utf-8")
            found = check_source(path.read_text(encoding="utf-8"), shown)
        findings.extend(found)
    for finding in findings:
        print(finding)
    if findings:
        print(f"qt6_check: {len(findings)} Qt5-only pattern(s) in {len({f.path for f in findings})} file(s)")
        return 1
    print(f"qt6_check: {len(files)} files, no Qt5-only pattern")
    return 0


if __name__ == "__main__":
    sys.exit(main())
