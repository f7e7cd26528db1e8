#!/usr/bin/env bash
# Installs everything (apt + .venv), then runs every check: ruff (lint + format), mypy (strict),
# the docs check, and the whole pytest suite (unit, integration with real sshd/PostgreSQL/ODBC,
# end to end in headless Chromium, fault injection). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
echo "== ruff"; .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "== mypy"; .venv/bin/mypy
echo "== parser tests, pure Python (the suite below runs the compiled build)"
CALLCOLLECT_PURE=1 .venv/bin/pytest -q -p no:cacheprovider tests/unit/test_mivb_smdr.py \
  tests/unit/test_mivb_smdr_properties.py tests/unit/test_mivb_smdr_compiled.py
echo "== pytest"
exec .venv/bin/pytest -n 2 --dist loadgroup -p no:cacheprovider "$@"
