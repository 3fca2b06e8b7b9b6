"""Start the real QGIS desktop under Xvfb with a throw-away profile and the plugin installed.

Used by the desktop tests. The plugin is installed from the ZIP that ``make package`` builds,
exactly as "Install from ZIP" does, and enabled in the new profile. A start-up hook
(``PYQGIS_STARTUP``) records every Python error QGIS reports (instead of letting QGIS open a
blocking dialog), and a probe script given with ``--code`` runs once QGIS is up, writes what it
found to JSON and quits QGIS.

Before quitting, the probe unloads the plugin (``qgis.utils.unloadPlugin``) and removes every
layer and clears the project, recording whether that went cleanly. QGIS 3.40 can still die on
its own way out (signal 11 in ``QgsApplication::exitQgis``, also without this plugin):
:func:`check_desktop_run` fails a test on any Python error or warning from the plugin, on a probe
that did not finish, or on a plugin that did not unload cleanly, and only *reports* a crash that
came after all of that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: marks a test that starts the QGIS desktop: skipped where QGIS or Xvfb is not installed
NEEDS_DESKTOP = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                                   reason="needs the qgis and xvfb packages (make sysdeps)")

STARTUP = '''
import json, os, traceback
import qgis.utils
from qgis.core import QgsApplication

ERRORS_FILE = os.environ["TERRITORY_TEST_ERRORS"]

def _record(text):
    with open(ERRORS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(text) + "\\n")

def _no_dialog(type, value, tb, msg, pop_error=True):
    _record("".join(traceback.format_exception(type, value, tb)))

qgis.utils.open_stack_dialog = _no_dialog

def _on_message(message, tag, level):
    if tag in ("Python error", "Python warning") and "territory" in message.lower():
        _record(tag + ": " + message)

QgsApplication.messageLog().messageReceived.connect(_on_message)
'''

PROBE_HEAD = '''
import json, os, sys
import qgis.utils
from qgis.PyQt.QtCore import QTimer
from qgis.core import QgsApplication

RESULT_FILE = os.environ["TERRITORY_TEST_RESULT"]

def _probe():
    result = {}
    iface = qgis.utils.iface
    try:
'''

PROBE_TAIL = '''
    except Exception as error:  # reported to the test, which fails with it
        import traceback
        result["probe_error"] = traceback.format_exc()
    _leave(result, iface)
    QgsApplication.exit(0)


def _write(result):
    with open(RESULT_FILE, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def _leave(result, iface):
    """Unload the plugin, then empty the project, as before quitting; the result is written after
    each step, so that a crash in QGIS's own clean-up still leaves what was checked."""
    import traceback
    from qgis.core import QgsProject
    from qgis.PyQt.QtCore import QCoreApplication, QEvent, QObject
    from qgis.PyQt.QtWidgets import QMenu

    def ours(thing):
        # QGIS keeps a plugin's emptied menu object (not shown); anything else of ours is a leak
        return (thing.objectName().startswith("TerritoryPlanner")
                and not (isinstance(thing, QMenu) and not thing.actions()))

    try:
        result["unloaded"] = bool(qgis.utils.unloadPlugin("territory_planner"))
        result["still_active"] = "territory_planner" in qgis.utils.active_plugins
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QgsApplication.processEvents()
        result["left_behind"] = sorted({o.objectName() for o in iface.mainWindow().findChildren(QObject) if ours(o)})
        result["left_behind"] += [a.text() for a in iface.pluginMenu().actions() if "Territory" in a.text()]
        result["provider_left"] = QgsApplication.processingRegistry().providerById("territory") is not None
    except Exception:
        result["leave_error"] = traceback.format_exc()
    _write(result)
    try:
        project = QgsProject.instance()
        project.removeAllMapLayers()
        project.clear()
        QgsApplication.processEvents()
        result["project_cleared"] = not project.mapLayers()
    except Exception:
        result["leave_error"] = traceback.format_exc()
    _write(result)

QTimer.singleShot(int(os.environ.get("TERRITORY_TEST_DELAY_MS", "1500")), _probe)
'''


def build_plugin_zip(target_dir: Path) -> Path:
    sys.path.insert(0, str(ROOT / "scripts"))
    import package

    return package.build(target_dir / "territory_planner.zip")


@dataclass
class DesktopRun:
    """What one QGIS desktop session left: the probe's ``result`` (empty when the probe never
    finished), the Python errors and warnings recorded, QGIS's console output and exit status."""

    result: dict
    errors: list[str] = field(default_factory=list)
    output: str = ""
    returncode: int | None = None  # None: killed after the time-out

    def __iter__(self):
        """``result, errors, output = run_desktop(...)`` as before; prefer :func:`check_desktop_run`."""
        return iter((self.result, self.errors, self.output))

    @property
    def crashed(self) -> bool:
        return self.returncode != 0 or "died on signal" in self.output


def check_desktop_run(run: DesktopRun) -> dict:
    """Fail on anything the plugin did wrong; only report (a warning) a QGIS crash that came after
    every check had run and the plugin had unloaded cleanly. Returns the probe's result."""
    assert not run.errors, "QGIS reported Python errors or warnings:\n" + "\n".join(run.errors)
    assert run.result, "QGIS did not finish the probe:\n" + run.output[-3000:]
    assert "probe_error" not in run.result, run.result["probe_error"]
    assert "leave_error" not in run.result, run.result["leave_error"]
    assert run.result["unloaded"] and not run.result["still_active"], "the plugin did not unload cleanly"
    assert run.result["left_behind"] == [], f"unloading left these behind: {run.result['left_behind']}"
    assert not run.result["provider_left"], "unloading left the Processing provider registered"
    if not run.crashed:
        assert run.result.get("project_cleared"), "layers were left in the project after clearing it"
    else:
        what = "was killed after its time-out" if run.returncode is None else f"exited with status {run.returncode}"
        message = (f"QGIS {what} after every check had passed and the plugin had unloaded cleanly (QGIS's own "
                   f"shutdown; not a plugin error):\n{run.output[-1500:]}")
        warnings.warn(message, UserWarning, stacklevel=2)
        print(message)
    return run.result


def first_display_number() -> int:
    """Where ``xvfb-run -a`` starts looking for a free X display: 99 (its default), plus 20 per
    pytest-xdist worker. ``-a`` takes the first number without a lock file, but two workers that
    look at the same moment would both take it and one X server would fail to start."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ...; not set without xdist
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return 99 + 20 * index


def run_desktop(work_dir: Path, probe_body: str, timeout: int = 120, screen: str = "1440x900") -> DesktopRun:
    """Start QGIS with the plugin installed from its ZIP, run ``probe_body`` (Python, with
    ``iface`` and a ``result`` dict in scope) once QGIS is up, then leave QGIS (see the module's
    docstring) and quit it. ``screen``: the virtual screen's size (e.g. a laptop's "1366x768").
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    profile_root = work_dir / "qgis-config"
    profile = profile_root / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(build_plugin_zip(work_dir)) as archive:
        archive.extractall(plugins)
    (profile / "QGIS").mkdir(parents=True)
    (profile / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\nterritory_planner=true\n\n[qgis]\ncheckVersion=false\nshowTips=false\n", encoding="utf-8")
    startup = work_dir / "startup.py"
    startup.write_text(STARTUP, encoding="utf-8")
    probe = work_dir / "probe.py"
    probe.write_text(PROBE_HEAD + textwrap.indent(textwrap.dedent(probe_body), " " * 8) + PROBE_TAIL,
                     encoding="utf-8")
    result_file = work_dir / "result.json"
    errors_file = work_dir / "errors.jsonl"
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)  # a real window on the virtual X server
    env.update({
        "QGIS_CUSTOM_CONFIG_PATH": str(profile_root),
        "PYQGIS_STARTUP": str(startup),
        "TERRITORY_TEST_RESULT": str(result_file),
        "TERRITORY_TEST_ERRORS": str(errors_file),
    })
    runtime = env.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    command = [shutil.which("xvfb-run") or "xvfb-run", "-a", "-n", str(first_display_number()),
               "-s", f"-screen 0 {screen}x24", "qgis", "--nologo", "--noversioncheck", "--code", str(probe)]
    returncode = None
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        output = completed.stdout + completed.stderr
        returncode = completed.returncode
    except subprocess.TimeoutExpired as expired:
        output = f"QGIS did not finish within {timeout} s\n{_text(expired.stdout)}{_text(expired.stderr)}"
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.exists() else {}
    errors = []
    if errors_file.exists():
        errors = [json.loads(line) for line in errors_file.read_text(encoding="utf-8").splitlines() if line]
    return DesktopRun(result=result, errors=errors, output=output, returncode=returncode)


def _text(captured) -> str:
    if isinstance(captured, bytes):
        return captured.decode(errors="replace")
    return captured or ""
