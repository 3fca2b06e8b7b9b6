"""`make package`: write dist/territory_planner-<version>.zip for QGIS's "Install from ZIP".

The ZIP holds one top folder ``territory_planner/`` with the files git tracks, minus what a user
does not need (tests, benchmarks, developer scripts and tooling, caches).
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "territory_planner"
EXCLUDED_DIRS = {"tests", "bench", "scripts", ".ci", "docs", "build", "dist", "demo-output", "test-output"}
EXCLUDED_FILES = {"Makefile", "pyproject.toml", "requirements-dev.txt", "requirements-bench.txt", ".gitignore"}


def plugin_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = []
    for name in listed.decode().split("\0"):
        if not name:
            continue
        parts = Path(name).parts
        if parts[0] in EXCLUDED_DIRS or name in EXCLUDED_FILES or "__pycache__" in parts:
            continue
        if name.endswith((".pyc", ".pyo")) or not (ROOT / name).is_file():
            continue
        files.append(name)
    return files


def version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def build(target: Path | None = None) -> Path:
    target = target or ROOT / "dist" / f"{PACKAGE}-{version()}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in plugin_files():
            archive.write(ROOT / name, f"{PACKAGE}/{name}")
    return target


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"Wrote {path}")
