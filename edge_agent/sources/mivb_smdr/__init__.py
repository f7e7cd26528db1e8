"""MiVoice Business / 3300 ICP SMDR driver: fixed-width text lines over TCP (formats.md section 2).

driver.py  the parser (line -> ICDR), its settings; make_source / make_parser
layout.py  column maps generated from the SMDR option flags; layout auto-detection

Both modules may also be compiled with mypyc (``scripts/compile.sh``, run by the install), which
puts extension modules beside the sources; Python then imports those. The sources stay the
reference and are what runs when ``CALLCOLLECT_PURE=1`` is set, or when a compiled module is
older than its source (a stale build would run old code: it is ignored rather than trusted).
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path

PURE_ENV = "CALLCOLLECT_PURE"


def _stale(package: Path) -> bool:
    """True when a module's newest compiled file here is older than its source."""
    built: dict[str, float] = {}
    for build in package.glob("*.so"):
        module = build.name.split(".", 1)[0].removesuffix("__mypyc")
        built[module] = max(built.get(module, 0.0), build.stat().st_mtime)
    for module, mtime in built.items():
        source = package / f"{module}.py"
        if source.exists() and mtime < source.stat().st_mtime:
            return True
    return False


def _prefer_sources(package: Path) -> None:
    """Import this package's modules from their sources: a finder without extension loaders."""
    sys.path_importer_cache[str(package)] = FileFinder(
        str(package), (SourceFileLoader, SOURCE_SUFFIXES)
    )


_HERE = Path(__file__).parent  # as the package's __path__ names it
if os.environ.get(PURE_ENV) == "1" or _stale(_HERE):
    _prefer_sources(_HERE)
