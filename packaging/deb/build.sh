#!/usr/bin/env bash
# Builds the two Debian packages, as root on Debian 12:
#
#   bash packaging/deb/build.sh [--version VERSION] [--out DIR] [--part agent|datacenter]
#                               [--wheels DIR]
#
# -> DIR/callcollect-agent_VERSION_amd64.deb and DIR/callcollect-datacenter_VERSION_amd64.deb
# (DIR defaults to dist/, VERSION to pyproject.toml's version). --wheels keeps the wheels of
# callcollect and its dependencies in DIR and reuses them on the next build (the install test
# builds two versions from the same wheels).
#
# Each package carries its own virtual environment, built at its final path
# (/opt/callcollect/agent, /opt/callcollect/datacenter) with Debian's /usr/bin/python3 so that
# every script's #! line and pyvenv.cfg are right as installed. The build machine's /opt is not
# touched: the venv is made in a private mount namespace where the staging tree is bind-mounted
# on /opt/callcollect (only that empty mount point is created, and removed again). The rest of
# the tree (units, configuration example, maintainer scripts) comes from packaging/deb/PART/, and
# `dpkg-deb --root-owner-group` packs it without fakeroot. No debhelper: the maintainer scripts
# are complete as written.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON=/usr/bin/python3                  # Debian's: the interpreter the packages depend on
OUT="$ROOT/dist"
VERSION=""
PARTS=(agent datacenter)
WHEELS=""

while (($#)); do
  case "$1" in
    --version) VERSION="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --part) PARTS=("$2"); shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (the venv is built at /opt in a private mount namespace)" >&2; exit 2; }
if [ -z "$VERSION" ]; then
  VERSION="$("$PYTHON" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$ROOT/pyproject.toml")"
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/callcollect-deb.XXXXXX")"
WHEELS="${WHEELS:-$WORK/wheels}"
mkdir -p "$WHEELS"
WHEELS="$(cd "$WHEELS" && pwd)"
MADE_MOUNTPOINT=""
cleanup() {
  rm -rf "$WORK"
  if [ -n "$MADE_MOUNTPOINT" ]; then rmdir /opt/callcollect 2>/dev/null || true; fi
}
trap cleanup EXIT

# extras installed into each part's venv (pyproject.toml)
declare -A EXTRAS=([agent]="agent,systemd" [datacenter]="datacenter")

build_wheels() {
  # A build venv with pip, and a copy of the sources (setuptools writes build/ into its input).
  "$PYTHON" -m venv "$WORK/buildenv"
  if [ -f "$WHEELS/complete" ]; then return; fi
  mkdir "$WORK/src"
  for part in pyproject.toml README.md edge_agent datacenter shared; do
    cp -a "$ROOT/$part" "$WORK/src/"
  done
  find "$WORK/src" -name __pycache__ -prune -exec rm -rf {} +
  "$WORK/buildenv/bin/pip" -q --disable-pip-version-check wheel \
    --wheel-dir "$WHEELS" "$WORK/src[agent,datacenter,systemd]"
  touch "$WHEELS/complete"
}

build_venv() {  # PART STAGE: the venv at /opt/callcollect/PART, inside STAGE
  local part="$1" stage="$2"
  mkdir -p "$stage/opt/callcollect/$part"
  if [ ! -d /opt/callcollect ]; then mkdir -p /opt/callcollect; MADE_MOUNTPOINT=1; fi
  unshare --mount --propagation private -- bash -euo pipefail -c '
    mount --bind "$1/opt/callcollect" /opt/callcollect
    "$2" -m venv --without-pip "/opt/callcollect/$3"
    "$4/bin/pip" -q --disable-pip-version-check --python "/opt/callcollect/$3/bin/python" \
      install --no-index --find-links "$5" --no-warn-script-location "callcollect[$6]"
    # bytecode now, as root: the installed tree is read-only to the services (ProtectSystem=strict)
    "/opt/callcollect/$3/bin/python" -m compileall -q -j 0 "/opt/callcollect/$3/lib"
  ' build-venv "$stage" "$PYTHON" "$part" "$WORK/buildenv" "$WHEELS" "${EXTRAS[$part]}"
}

stage_files() {  # PART STAGE: everything but the venv
  local part="$1" stage="$2" src="$HERE/$1" pkg="callcollect-$1" unit
  install -d "$stage/DEBIAN" "$stage/lib/systemd/system" "$stage/etc/callcollect" \
    "$stage/usr/bin" "$stage/usr/share/doc/$pkg" "$stage/usr/share/lintian/overrides"
  for unit in "$src"/systemd/*.service; do
    install -m 0644 "$unit" "$stage/lib/systemd/system/"
  done
  install -m 0644 "$src/debian/copyright" "$stage/usr/share/doc/$pkg/copyright"
  sed "s/@VERSION@/$VERSION/; s/@DATE@/$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")/" \
    "$src/debian/changelog" | gzip -9n > "$stage/usr/share/doc/$pkg/changelog.gz"
  install -m 0644 "$src/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"
  for script in postinst prerm postrm; do
    install -m 0755 "$src/debian/$script" "$stage/DEBIAN/$script"
  done
  case "$part" in
    agent)
      install -m 0644 "$ROOT/edge_agent/agent.example.toml" "$stage/etc/callcollect/agent.example.toml"
      install -d "$stage/usr/share/callcollect-agent"
      install -m 0644 "$src/systemd/capture.conf" "$stage/usr/share/callcollect-agent/capture.conf"
      ln -s /opt/callcollect/agent/bin/edge-agent "$stage/usr/bin/edge-agent"
      ;;
    datacenter)
      install -m 0644 "$ROOT/datacenter/datacenter.example.toml" "$stage/etc/callcollect/datacenter.example.toml"
      install -d "$stage/etc/ssh/sshd_config.d"
      install -m 0644 "$src/sshd_config.d/callcollect-landing.conf" "$stage/etc/ssh/sshd_config.d/"
      ln -s /opt/callcollect/datacenter/bin/datacenter "$stage/usr/bin/datacenter"
      ;;
  esac
  (cd "$stage" && find etc -type f | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
  local size
  size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
  sed "s/@VERSION@/$VERSION/; s/@SIZE@/$size/" "$src/debian/control" > "$stage/DEBIAN/control"
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
    | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
}

build_wheels
echo "build.sh: wheels built (${SECONDS} s)"
for part in "${PARTS[@]}"; do
  stage="$WORK/stage-$part"
  build_venv "$part" "$stage"
  echo "build.sh: $part venv built (${SECONDS} s)"
  stage_files "$part" "$stage"
  deb="$OUT/callcollect-${part}_${VERSION}_amd64.deb"
  # gzip -1: 2 s for the data centre's 137 MB where gzip -9 takes 30 s and xz -1 11 s, for
  # 38 MB against 33 and 26 (zstd is faster still, but lintian 2.116 calls it malformed)
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$stage" "$deb" >/dev/null
  echo "build.sh: $deb (${SECONDS} s)"
done
