#!/usr/bin/env bash
# Install the Debian packages Territory Planner needs (QGIS, its Python bindings, a virtual X
# server for the desktop test) when any is missing. Quick when everything is already there.
set -euo pipefail
packages=(qgis python3-qgis qgis-providers python3-venv python3-numpy python3-scipy gdal-bin xvfb xauth
          postgresql postgresql-15-postgis-3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
