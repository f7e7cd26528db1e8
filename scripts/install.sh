#!/usr/bin/env bash
# Installs everything callcollect needs on Debian 12, as root: the system packages (apt), then the
# project and its pinned Python dependencies in ./.venv. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev build-essential pkg-config libsystemd-dev
  unixodbc unixodbc-dev odbc-postgresql libsqliteodbc tdsodbc
  postgresql openssh-server openssh-client openssl iproute2 tcpdump chromium
  faketime slapd ldap-utils
  poppler-utils  # pdftoppm / pdftotext: the PDF export tests render and read the files
  fonts-dejavu-core  # the PDF exports' font (Unicode names); Helvetica and "?" without it
  patroni etcd-server  # tests/fixtures/patroni.py: failover of the PostgreSQL store (docs/scale.md)
  mmdebstrap lintian dpkg-dev fakeroot  # packaging/deb/ and its install tests
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install: apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's own Python: the same interpreter the appliance package ships with.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
# The MiVB SMDR parser's hot modules, compiled (CALLCOLLECT_PURE=1 runs the sources instead).
bash scripts/compile.sh
mkdir -p -m 0755 /run/sshd
echo "install: done (.venv ready)"
