#!/usr/bin/env bash
# Installs everything (apt + .venv), then runs every check: ruff (lint + format), mypy (strict),
# the docs check, and the whole pytest suite (unit, integration with real sshd/PostgreSQL/ODBC,
# end to end in headless Chromium, fault injection). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest -n 2 --dist loadgroup -p no:cacheprovider "$@"
