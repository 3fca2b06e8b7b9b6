"""Start the real QGIS desktop under Xvfb with a throw-away profile and the plugin installed.

Used by the desktop tests. The plugin is installed from the ZIP that ``make package`` builds,
exactly as "Install from ZIP" does, and enabled in the new profile. A start-up hook
(``PYQGIS_STARTUP``) records every Python error QGIS reports (instead of letting QGIS open a
blocking dialog), and a probe script given with ``--code`` runs once QGIS is up, writes what it
found to JSON and quits QGIS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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
    with open(RESULT_FILE, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    QgsApplication.exit(0)

QTimer.singleShot(int(os.environ.get("TERRITORY_TEST_DELAY_MS", "1500")), _probe)
'''


def build_plugin_zip(target_dir: Path) -> Path:
    sys.path.insert(0, str(ROOT / "scripts"))
    import package

    return package.build(target_dir / "territory_planner.zip")


def run_desktop(work_dir: Path, probe_body: str, timeout: int = 120) -> tuple[dict, list[str], str]:
    """Start QGIS with the plugin installed from its ZIP, run ``probe_body`` (Python, with
    ``iface`` and a ``result`` dict in scope) once QGIS is up.

    Returns (result dict, Python errors recorded, QGIS's console output).
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
    command = [shutil.which("xvfb-run") or "xvfb-run", "-a", "-s", "-screen 0 1440x900x24",
               "qgis", "--nologo", "--noversioncheck", "--code", str(probe)]
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        output = completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"QGIS did not finish within {timeout} s\n{expired.stdout or ''}{expired.stderr or ''}"
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.exists() else {}
    errors = []
    if errors_file.exists():
        errors = [json.loads(line) for line in errors_file.read_text(encoding="utf-8").splitlines() if line]
    return result, errors, output
