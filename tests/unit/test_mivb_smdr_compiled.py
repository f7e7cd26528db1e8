"""The MiVB SMDR parser's two builds: the sources and the mypyc-compiled modules (scripts/compile.sh).

CALLCOLLECT_PURE=1 runs the sources even where a build sits beside them, a build older than its
source is ignored, and where a build exists both read the simulator's lines to the same records.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.sources import mivb_smdr
from edge_agent.sources.mivb_smdr import _stale

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(mivb_smdr.__file__).parent
BUILT = any(PACKAGE.glob("driver*.so"))

# Parses 3,000 simulated lines of two layouts (ids of both schemes); prints where the driver came from, then the records.
PARSE = """
import sys
from datetime import datetime
from zoneinfo import ZoneInfo
from edge_agent.simulators.mivb_smdr import generate_calls
from edge_agent.sources.base import RawUnit, SourceContext
from edge_agent.sources.mivb_smdr import driver
from edge_agent.sources.mivb_smdr.layout import LayoutFlags
zone = ZoneInfo("Europe/London")
# record ids switch to scheme 2 half-way through each run (the journal's line_ids_from)
ctx = SourceContext(agent_id="a1", source_id="pbx1", timezone=zone, line_ids_from=750)
print(driver.__file__)
for layout in ("L2", "A"):
    calls = generate_calls(count=1500, seed=5, start=datetime(2026, 3, 20), layout=layout, tz=zone)
    for settings in (driver.ParserSettings(layout=LayoutFlags.parse(layout)), driver.ParserSettings()):
        parser = driver.MivbSmdrParser(ctx, settings)
        for seq, call in enumerate(calls, start=1):
            unit = RawUnit("pbx1", seq, call.received_at, call.line.encode("latin-1"))
            result = parser.feed(unit)[0]
            print(result.to_json() if hasattr(result, "to_json") else repr(result))
"""


def _run(pure: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "CALLCOLLECT_PURE"}
    if pure:
        env["CALLCOLLECT_PURE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", PARSE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


def test_the_pure_setting_runs_the_sources() -> None:
    assert _run(pure=True)[0].endswith("driver.py")


@pytest.mark.skipif(not BUILT, reason="no compiled build (bash scripts/compile.sh makes one)")
def test_the_compiled_build_reads_every_line_as_the_sources_do() -> None:
    compiled, pure = _run(pure=False), _run(pure=True)
    assert compiled[0].endswith(".so") and pure[0].endswith(".py")
    assert len(compiled) == 1 + 4 * 1500
    assert compiled[1:] == pure[1:]


def test_a_build_older_than_its_source_is_stale(tmp_path: Path) -> None:
    source = tmp_path / "driver.py"
    build = tmp_path / "driver__mypyc.cpython-311-x86_64-linux-gnu.so"
    source.write_text("")
    build.write_bytes(b"")
    os.utime(build, (1_000, 1_000))
    os.utime(source, (2_000, 2_000))
    assert _stale(tmp_path)
    os.utime(build, (3_000, 3_000))
    assert not _stale(tmp_path)


def test_the_newest_file_of_a_build_decides(tmp_path: Path) -> None:
    """A build's shim may keep an old time when only its implementation was rebuilt."""
    (tmp_path / "layout.py").write_text("")
    shim = tmp_path / "layout.cpython-311-x86_64-linux-gnu.so"
    implementation = tmp_path / "layout__mypyc.cpython-311-x86_64-linux-gnu.so"
    for path, when in ((shim, 1_000), (tmp_path / "layout.py", 2_000), (implementation, 3_000)):
        path.touch()
        os.utime(path, (when, when))
    assert not _stale(tmp_path)
