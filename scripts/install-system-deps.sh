#!/usr/bin/env bash
# Install the Debian packages Territory Planner needs (QGIS, its Python bindings, a virtual X
# server for the desktop test, PostgreSQL/PostGIS for the PostGIS test, Chromium and its driver for
# the tests that open the rep feedback pages in a real browser) when any is missing.
# Quick when everything is already there. Works on Debian 12 (PostgreSQL 15) and Debian 13
# (PostgreSQL 17): PostGIS is taken for the PostgreSQL major that is installed, or else the one
# the release's `postgresql` package would install.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# The PostgreSQL major this machine runs or would get: the newest installed server first, else the
# version the `postgresql` metapackage of this release depends on.
postgresql_major() {
  local dir major=""
  for dir in /usr/lib/postgresql/*/bin/postgres; do
    [ -x "$dir" ] || continue
    dir="${dir#/usr/lib/postgresql/}"
    dir="${dir%%/*}"
    if [ -z "$major" ] || [ "$dir" -gt "$major" ]; then major="$dir"; fi
  done
  if [ -z "$major" ]; then
    major=$(apt-cache show --no-all-versions postgresql 2>/dev/null \
            | sed -n 's/^Depends:.*postgresql-\([0-9][0-9]*\)\([ ,(]\|$\).*/\1/p' | head -1)
  fi
  echo "$major"
}

packages=(qgis python3-qgis qgis-providers python3-venv python3-numpy python3-scipy gdal-bin xvfb xauth git poppler-utils
          postgresql chromium chromium-driver)
updated=false
major="$(postgresql_major)"
if [ -z "$major" ]; then
  # a fresh machine whose package lists were never read
  $SUDO apt-get update -q
  updated=true
  major="$(postgresql_major)"
fi
[ -n "$major" ] || { echo "Cannot tell which PostgreSQL this release ships (apt-cache show postgresql)." >&2; exit 1; }
packages+=("postgresql-$major-postgis-3")

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing system packages: ${missing[*]}"
started=$SECONDS
$updated || $SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "System packages installed in $((SECONDS - started)) s"
