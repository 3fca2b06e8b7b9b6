"""Run ``qgis_process`` with Territory Planner loaded the way QGIS loads a plugin.

The plugin folder is put on ``QGIS_PLUGINPATH`` (under its package name), a throw-away profile
is used (``QGIS_CUSTOM_CONFIG_PATH``) and the plugin is enabled in it. We call
``qgis_process.bin`` directly: Debian's ``/usr/bin/qgis_process`` wrapper adds
``--noversioncheck``, which the 3.22 binary rejects.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugin_path import PACKAGE, plugins_dir  # noqa: E402


def executable() -> str:
    for name in ("qgis_process.bin", "qgis_process"):
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("qgis_process not found: run `make sysdeps` to install QGIS")


def environment(profile_dir: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["QGIS_PLUGINPATH"] = str(plugins_dir())
    env["QGIS_CUSTOM_CONFIG_PATH"] = profile_dir or tempfile.mkdtemp(prefix="territory-qgis-profile-")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    runtime = env.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    return env


def enable_plugin(env: dict[str, str]) -> None:
    result = subprocess.run([executable(), "plugins", "enable", PACKAGE], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"qgis_process could not enable {PACKAGE}:\n{result.stdout}\n{result.stderr}")


def run(algorithm: str, parameters: dict[str, object], env: dict[str, str] | None = None) -> dict:
    """Run one algorithm; return qgis_process's JSON answer (raises with its output on failure)."""
    if env is None:
        env = environment()
        enable_plugin(env)
    args = [executable(), "--json", "run", algorithm, "--"]
    for key, value in parameters.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool):
                item = "true" if item else "false"
            args.append(f"{key}={item}")
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"qgis_process failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    start = result.stdout.find("{")
    return json.loads(result.stdout[start:])
