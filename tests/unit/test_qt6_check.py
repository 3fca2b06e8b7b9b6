"""The Qt6-readiness check (scripts/qt6_check.py, run by `make lint`) finds the Qt5-only patterns
that break the plugin under QGIS 4 and lets their portable forms through."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import qt6_check  # noqa: E402


def codes(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in qt6_check.check_source(textwrap.dedent(source))]


@pytest.mark.parametrize("expression", [
    "Qt.AlignLeft",
    "Qt.ItemIsEnabled | Qt.ItemIsSelectable",
    "QtCore.Qt.UserRole",
    "QgsMapLayerProxyModel.PolygonLayer",
    "Qgis.Warning",
    "QgsTask.CanCancel",
    "QgsWkbTypes.PolygonGeometry",
    "QgsProcessing.TypeVectorPolygon",
    "QMetaType.Int",
])
def test_unscoped_enums_are_found(expression):
    found = codes(f"value = {expression}\n")
    assert found and {code for _, code in found} == {"QT601"}


@pytest.mark.parametrize("expression", [
    "Qt.AlignmentFlag.AlignLeft",
    "Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable",
    "QgsMapLayerProxyModel.Filter.PolygonLayer",
    "Qgis.MessageLevel.Warning",
    "Qgis.GeometryType.Polygon",
    "QMetaType.Type.Int",
    "QgsProject.instance()",
    "QgsProcessing.TEMPORARY_OUTPUT",
    "QgsFeatureRequest.OrderByClause('name')",
    "QtCore.QTimer",
    "isinstance(level, Qgis.MessageLevel)",
    "self.Warning",
    "layer.Info",
])
def test_scoped_enums_methods_constants_and_nested_classes_pass(expression):
    assert codes(f"value = {expression}\n") == []


def test_exec_underscore_is_found_and_exec_passes():
    assert codes("dialog.exec_()\napp.exec()\n") == [(1, "QT602")]


@pytest.mark.parametrize("source", [
    "from qgis.PyQt.QtWidgets import QUndoCommand\n",
    "from qgis.PyQt.QtWidgets import QDockWidget, QAction\n",
    "from PyQt5.QtWidgets import QShortcut\n",
    "from qgis.PyQt.QtWidgets import QUndoStack\n",
    "from qgis.PyQt import QtWidgets\naction = QtWidgets.QAction()\n",
])
def test_classes_that_moved_to_qtgui_are_found(source):
    assert {code for _, code in codes(source)} == {"QT603"}


def test_moved_class_is_allowed_as_the_fallback_of_the_qt6_import():
    source = """
        try:
            from qgis.PyQt.QtGui import QAction
        except ImportError:
            from qgis.PyQt.QtWidgets import QAction
    """
    assert codes(source) == []
    assert codes(source.replace("except ImportError", "except ValueError")) == [(5, "QT603")]


def test_widgets_that_stayed_pass():
    assert codes("from qgis.PyQt.QtWidgets import QDockWidget, QUndoView, QToolButton\n") == []


@pytest.mark.parametrize("expression", ["QVariant.Int", "QVariant.String", "QVariant.Double", "QVariant.Type.LongLong"])
def test_qvariant_type_codes_are_found_once(expression):
    assert codes(f"field = QgsField('n', {expression})\n") == [(1, "QT604")]


def test_qvariant_itself_passes():
    assert codes("from qgis.PyQt.QtCore import QVariant\nempty = QVariant()\n") == []


def test_a_line_marked_ok_is_not_checked():
    assert codes("value = Qt.AlignLeft  # qt6: ok (Qt5-only branch)\n") == []


def test_findings_name_file_line_and_fix():
    [finding] = qt6_check.check_source("x = 1\nalign = Qt.AlignLeft\n", "ui/dock.py")
    assert str(finding).startswith("ui/dock.py:2:9: QT601 Qt.AlignLeft")
    assert "Qt.<EnumType>.AlignLeft" in str(finding)


def test_command_line_fails_on_findings_and_passes_on_clean_files(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("from qgis.PyQt.QtCore import QVariant\nkind = QVariant.Int\n", encoding="utf-8")
    good = tmp_path / "good.py"
    good.write_text("from qgis.PyQt.QtCore import Qt\nalign = Qt.AlignmentFlag.AlignLeft\n", encoding="utf-8")
    assert qt6_check.main([str(bad), str(good)]) == 1
    assert "bad.py:2:8: QT604" in capsys.readouterr().out
    assert qt6_check.main([str(good)]) == 0
    assert qt6_check.main([str(tmp_path)]) == 1


def test_default_files_are_the_tracked_python_files():
    files = qt6_check.default_files()
    assert ROOT / "plugin.py" in files and ROOT / "scripts" / "qt6_check.py" in files
    assert not any(".venv" in f.parts or "build" in f.parts for f in files)



def test_known_enums_are_named_with_their_scope_and_fixed_in_place(tmp_path):
    source = ("from qgis.core import Qgis, QgsTask, QgsWkbTypes\n"
              "flags = QgsTask.CanCancel\n"
              "kind = layer.geometryType() == QgsWkbTypes.PolygonGeometry or wkb == QgsWkbTypes.MultiPolygon\n"
              "bar.pushMessage('é', level=Qgis.Warning)\n"
              "align = Qt.AlignLeft\n")
    findings = qt6_check.check_source(source)
    assert "write QgsTask.Flag.CanCancel" in findings[0].message
    module = tmp_path / "module.py"
    module.write_text(source, encoding="utf-8")
    assert qt6_check.main(["--fix", str(module)]) == 1, "Qt.AlignLeft has no known scope: still reported"
    fixed = module.read_text(encoding="utf-8")
    assert "flags = QgsTask.Flag.CanCancel\n" in fixed
    assert ("QgsWkbTypes.GeometryType.PolygonGeometry or wkb == QgsWkbTypes.Type.MultiPolygon\n") in fixed
    assert "pushMessage('é', level=Qgis.MessageLevel.Warning)" in fixed
    assert [(f.line, f.code) for f in qt6_check.check_source(fixed)] == [(5, "QT601")]
