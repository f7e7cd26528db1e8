#!/usr/bin/env bash
# Installs everything (apt + .venv), then runs the demo site: a simulated Mitel PBX feeding a
# local data centre. Prints the web address and a login; Ctrl-C stops it. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python scripts/demo.py "$@"
