"""The shipped systemd units: their `systemd-analyze security` exposure scores are within target
and match the table in docs/operations.md, and the agent's watchdog outlasts its loop.

`--offline=yes` scores the unit files as written (no running systemd needed). The agent is
scored twice: as shipped, and with the capture drop-in installed as docs/install.md says.
`systemd-analyze verify` needs the ExecStart binaries, so it runs after installing the packages
(tests/integration/test_deb_install.py).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge_agent.config import UplinkSettings

ROOT = Path(__file__).resolve().parents[2]
AGENT_UNITS = ROOT / "packaging" / "deb" / "agent" / "systemd"
DC_UNITS = ROOT / "packaging" / "deb" / "datacenter" / "systemd"
OPERATIONS = ROOT / "docs" / "operations.md"
SCORE = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+) ")
# (unit file, with the capture drop-in, highest score allowed)
TARGETS = [
    (AGENT_UNITS / "callcollect-agent.service", False, 2.0),
    (AGENT_UNITS / "callcollect-agent.service", True, 2.0),
    (DC_UNITS / "callcollect-web.service", False, 3.0),
    (DC_UNITS / "callcollect-ingest@.service", False, 3.0),
    (DC_UNITS / "callcollect-alarms.service", False, 3.0),
]


def exposure(unit: Path, *, capture: bool, root: Path) -> float:
    """The score of ``unit`` installed alone under ``root`` (with capture.conf if asked)."""
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(unit, units / unit.name)
    if capture:
        (units / f"{unit.name}.d").mkdir()
        shutil.copy(AGENT_UNITS / "capture.conf", units / f"{unit.name}.d" / "capture.conf")
    name = unit.name.replace("@.", "@1.")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={root}", name],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = SCORE.search(result.stdout)
    assert found is not None, result.stdout + result.stderr
    return float(found.group(2))


def documented(unit: str, *, capture: bool) -> float:
    """The score docs/operations.md gives in its table row for ``unit``."""
    label = f"`{unit}`" + (" with `capture.conf`" if capture else "")
    row = re.search(rf"^\| {re.escape(label)} \| (\d+\.\d+) ", OPERATIONS.read_text(), re.M)
    assert row is not None, f"docs/operations.md has no score row for {label}"
    return float(row.group(1))


@pytest.mark.parametrize(
    ("unit", "capture", "limit"), TARGETS, ids=[f"{u.name}{'+capture' * c}" for u, c, _ in TARGETS]
)
def test_units_score_within_target_and_as_documented(
    unit: Path, capture: bool, limit: float, tmp_path: Path
) -> None:
    score = exposure(unit, capture=capture, root=tmp_path)
    assert score <= limit
    assert documented(unit.name, capture=capture) == score


def test_the_agent_watchdog_outlasts_a_loop_pass_with_a_stalled_upload() -> None:
    """WATCHDOG=1 comes once per loop pass: the default interval plus a connect and a stall."""
    unit = (AGENT_UNITS / "callcollect-agent.service").read_text()
    found = re.search(r"^WatchdogSec=(\d+)min$", unit, re.M)
    assert found is not None
    names = ("interval_seconds", "connect_timeout_seconds", "transfer_timeout_seconds")
    defaults = [f.default for f in dataclasses.fields(UplinkSettings) if f.name in names]
    assert len(defaults) == 3 and all(isinstance(d, int | float) for d in defaults)
    loop_pass = sum(d for d in defaults if isinstance(d, int | float))
    assert int(found.group(1)) * 60 > loop_pass
    assert "Type=notify" in unit and "NotifyAccess=main" in unit
