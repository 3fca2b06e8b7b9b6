#!/usr/bin/env bash
# `make test-debian13`: run the whole test suite on Debian 13 (trixie: QGIS 3.40, Python 3.13,
# NumPy 2, PostgreSQL 17) in a chroot, whatever release this machine runs.
#
# The root is built with debootstrap from the package mirror apt already uses here and kept in
# build/debian13 (built again when missing or unfinished). Each run clones the current commit
# (uncommitted changes are not tested) into the root and runs `make test` there, exactly as the
# README tells a developer on a fresh Debian 13 machine: the root starts with only what the README
# says a minimal system needs first (make, git), and `make test` installs the rest.
# Needs root (debootstrap, chroot, mount); installs debootstrap when it is missing.
#
#   bash scripts/test-debian13.sh                  # make test in the root
#   bash scripts/test-debian13.sh make test-unit   # any other command, run in the clone
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# DEBIAN13_ROOT puts the root elsewhere (e.g. one root shared by several checkouts)
CHROOT="$(realpath -m "${DEBIAN13_ROOT:-$ROOT/build/debian13}")"
SUITE=trixie
CHECKOUT=/work/territory_planner
MINIMAL_PACKAGES=make,git,ca-certificates

[ "$(id -u)" -eq 0 ] || { echo "make test-debian13 needs root (debootstrap, chroot, mount)." >&2; exit 1; }

log() { printf '[test-debian13 %(%H:%M:%S)T] %s\n' -1 "$*"; }

# The mirror this machine's apt uses: the first URI of a non-security source.
host_mirror() {
  local file uri=""
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
               { u = ""; s = ""
                 for (i = 1; i <= NF; i++) {
                   if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); u = a[2] }
                   if ($i ~ /^Suites:/) s = $i }
                 if (u != "" && s !~ /-security/ && $0 ~ /(^|\n)Types:[^\n]*deb([ \t]|$)/) { print u; exit } }' "$file")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$file" ] || continue
    uri=$(awk '$1 == "deb" && $0 !~ /-security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$file")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo "http://deb.debian.org/debian"
}

# Whatever is mounted inside the root, deepest first.
mounts_inside() {
  awk -v root="$CHROOT/" 'index($2 "/", root) == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_all() {
  local point
  for point in $(mounts_inside); do
    umount "$point" 2>/dev/null || umount -l "$point" || true
  done
}

build_root() {
  local mirror security
  mirror="$(host_mirror)"
  security="${mirror%/debian}/debian-security"
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
  }
  unmount_all
  [ "$(mounts_inside | wc -l)" -eq 0 ] || { echo "Something is still mounted in $CHROOT; not removing it." >&2; exit 1; }
  rm -rf --one-file-system "$CHROOT"
  mkdir -p "$CHROOT"
  log "debootstrap $SUITE from $mirror"
  local started=$SECONDS
  debootstrap --variant=minbase --include="$MINIMAL_PACKAGES" "$SUITE" "$CHROOT" "$mirror" \
    > "$CHROOT-debootstrap.log" 2>&1 || {
      tail -30 "$CHROOT-debootstrap.log" >&2
      echo "debootstrap failed; the whole log is in $CHROOT-debootstrap.log" >&2
      exit 1
    }
  cat > "$CHROOT/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
EOF
  # no service starts inside the root while packages install (PostgreSQL's cluster, ...)
  printf '#!/bin/sh\nexit 101\n' > "$CHROOT/usr/sbin/policy-rc.d"
  chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
  log "debootstrap took $((SECONDS - started)) s"
  touch "$CHROOT/.complete"
}

# The host's network settings, so that apt and pip work behind the same network.
copy_host_settings() {
  cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$CHROOT/etc/hosts" 2>/dev/null || true
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$CHROOT/etc/ssl/certs" "$CHROOT/usr/local/share/ca-certificates"
    # the bundle itself, and as an extra CA, so that update-ca-certificates in the root keeps it
    cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/certs/ca-certificates.crt"
    cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/usr/local/share/ca-certificates/host-bundle.crt"
  fi
  # apt's network settings (proxies, accepting a mirror's old Release files)
  apt-config dump | grep -E '^Acquire::((https?|ftp)::Proxy|Check-Valid-Until|Check-Date|AllowInsecureRepositories) ' \
    > "$CHROOT/etc/apt/apt.conf.d/90host-network" || true
  [ -f /etc/pip.conf ] && cp /etc/pip.conf "$CHROOT/etc/pip.conf"
  if [ -d /etc/xdg/pip ]; then
    rm -rf "$CHROOT/etc/xdg/pip" && mkdir -p "$CHROOT/etc/xdg" && cp -r /etc/xdg/pip "$CHROOT/etc/xdg/pip"
  fi
  if [ -d "${HOME:-/root}/.config/pip" ]; then
    rm -rf "$CHROOT/root/.config/pip" && mkdir -p "$CHROOT/root/.config" \
      && cp -r "${HOME:-/root}/.config/pip" "$CHROOT/root/.config/pip"
  fi
}

mount_system() {
  mount -t proc proc "$CHROOT/proc"
  mount -t sysfs sysfs "$CHROOT/sys"
  mount --bind /dev "$CHROOT/dev"
  mount --bind /dev/pts "$CHROOT/dev/pts"
  mkdir -p "$CHROOT/dev/shm"
  mount -t tmpfs -o mode=1777 shm "$CHROOT/dev/shm"
  mkdir -p "$CHROOT/run"
  mount -t tmpfs -o mode=755 run "$CHROOT/run"
}

main() {
  local total=$SECONDS
  mkdir -p "$ROOT/build" "$(dirname "$CHROOT")"
  # one run at a time: a second one would unmount and replace the first one's clone
  exec 9>"$CHROOT.lock"
  flock -n 9 || { log "waiting for another make test-debian13 to finish"; flock 9; }
  if [ ! -f "$CHROOT/.complete" ]; then
    build_root
  else
    log "using the Debian 13 root in $CHROOT (delete it to build it again)"
  fi
  trap unmount_all EXIT
  unmount_all
  copy_host_settings
  mount_system

  local commit
  commit="$(git -C "$ROOT" rev-parse HEAD)"
  rm -rf --one-file-system "$CHROOT$CHECKOUT"
  mkdir -p "$(dirname "$CHROOT$CHECKOUT")"
  git clone -q --no-hardlinks "$ROOT" "$CHROOT$CHECKOUT"
  git -C "$CHROOT$CHECKOUT" -c advice.detachedHead=false checkout -q "$commit"
  log "testing commit $(git -C "$ROOT" log -1 --format='%h %s' "$commit")"

  # A clean environment, plus the host's PIP_* settings.
  local env_args=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
                  TERM=dumb DEBIAN_FRONTEND=noninteractive)
  local name
  while IFS= read -r name; do
    env_args+=("$name=${!name}")
  done < <(compgen -e | grep -E '^(PIP_|CI$)' || true)

  local command=("$@")
  [ ${#command[@]} -gt 0 ] || command=(make test)
  local status=0 started=$SECONDS
  chroot "$CHROOT" /usr/bin/env -i "${env_args[@]}" /bin/bash -c \
    'cd "$0" && . /etc/os-release && echo "Debian $VERSION_ID ($VERSION_CODENAME)" && exec "$@"' \
    "$CHECKOUT" "${command[@]}" || status=$?
  log "${command[*]} in the Debian 13 root took $((SECONDS - started)) s (exit $status); all of it $((SECONDS - total)) s"
  return $status
}

main "$@"
