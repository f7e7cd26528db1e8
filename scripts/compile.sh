#!/usr/bin/env bash
# Compiles the MiVB SMDR parser's hot modules with mypyc (shipped with mypy), in place: Python
# then imports the extension modules beside the sources. One module per run, so each build is
# self-contained inside its package (no top-level helper module to put on sys.path).
# CALLCOLLECT_PURE=1 runs the sources instead; a build older than its source is ignored.
# Usage: bash scripts/compile.sh [--clean]
set -euo pipefail
cd "$(dirname "$0")/.."

HOT_MODULES=(
  edge_agent/sources/mivb_smdr/driver.py
  edge_agent/sources/mivb_smdr/layout.py
)

for module in "${HOT_MODULES[@]}"; do
  rm -f "${module%.py}".*.so "${module%.py}"__mypyc.*.so
done
if [ "${1:-}" = "--clean" ]; then
  echo "compile: removed the compiled modules"
  exit 0
fi
for module in "${HOT_MODULES[@]}"; do
  mkdir -p build
  .venv/bin/mypyc "$module" >/dev/null 2>build/mypyc.log || {
    cat build/mypyc.log >&2
    exit 1
  }
  # the build may copy an unchanged file with its old time; the import's staleness check
  # compares these times with the source's
  touch "${module%.py}".*.so "${module%.py}"__mypyc.*.so
done
echo "compile: ${HOT_MODULES[*]} compiled (mypyc)"
