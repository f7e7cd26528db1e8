"""The spool quota alarm: says loudly, once per change, how close the spool is to full.

Contract:

- ``QuotaWatch.check()`` measures the spool (``Spool.usage``) and, when its level changed since
  the last check, logs one line at a severity that matches (``warning`` → WARNING, ``critical``
  → ERROR, ``full`` → CRITICAL, back to ``ok`` → INFO). Rising past more than one level
  between two checks (a burst, a slow cycle) logs every level passed, in order, so a
  monitoring rule keyed on the ``critical`` line fires even when the spool went straight to
  full. It stores the new level in the spool's
  state (``QUOTA_STATE_KEY``, JSON: level, percent, used and quota bytes, since) so ``status``
  and the health heartbeat in other threads or processes report the same alarm.
- The measure is ``Spool.usage``: everything the agent keeps in its state directory against the
  configured quota, shrunk to fit when the disk has less room left than ``spool.min_free_mb``
  (or ``min_free_percent``) allows; the log line says when free disk is the limit.
- The levels are the spool's: ``warning`` from 70 %, ``critical`` from 90 %, ``full`` at 100 %,
  when ``SourcePipeline.may_read`` turns False and every acquirer stops reading (the PBX
  buffers). Nothing unacknowledged is deleted to make room; retention may delete acknowledged
  batches early (``edge_agent.delivery.retention``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from edge_agent.spool import AGENT_STATE, Spool, SpoolError, SpoolLevel, SpoolUsage
from shared.icdr import format_time

log = logging.getLogger(__name__)

QUOTA_STATE_KEY = "spool_quota"
SEVERITY = {
    SpoolLevel.OK: logging.INFO,
    SpoolLevel.WARNING: logging.WARNING,
    SpoolLevel.CRITICAL: logging.ERROR,
    SpoolLevel.FULL: logging.CRITICAL,
}
ADVICE = {
    SpoolLevel.OK: "back below 70 %",
    SpoolLevel.WARNING: "batches are not leaving: check the uplink and receipts "
    "(edge-agent status, edge-agent check --connect)",
    SpoolLevel.CRITICAL: "sources will stop reading at 100 %: restore the uplink now, or raise "
    "spool.quota_mb if the disk has room",
    SpoolLevel.FULL: "sources have STOPPED reading (the PBXs buffer, for as long as they can); "
    "nothing is lost yet: restore the uplink or raise spool.quota_mb",
}
RANK = {level: rank for rank, level in enumerate(SpoolLevel)}


@dataclass(frozen=True, slots=True)
class QuotaState:
    level: SpoolLevel
    percent: float
    used_bytes: int
    quota_bytes: int
    since: str

    def to_json(self) -> str:
        return json.dumps({"level": str(self.level), "percent": round(self.percent, 1),
                           "used_bytes": self.used_bytes, "quota_bytes": self.quota_bytes,
                           "since": self.since}, sort_keys=True)  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> QuotaState:
        raw = json.loads(text)
        return cls(SpoolLevel(raw["level"]), float(raw["percent"]), int(raw["used_bytes"]),
                   int(raw["quota_bytes"]), str(raw["since"]))  # fmt: skip


def at_least(level: SpoolLevel, floor: SpoolLevel) -> bool:
    return RANK[level] >= RANK[floor]


class QuotaWatch:
    """Raises and clears the spool quota alarm (see the module docstring)."""

    def __init__(self, spool: Spool, *, clock: Callable[[], datetime]) -> None:
        self.spool = spool
        self.clock = clock
        stored = spool.get_state(AGENT_STATE, QUOTA_STATE_KEY)
        self.level = QuotaState.from_json(stored).level if stored else SpoolLevel.OK

    def check(self) -> SpoolUsage:
        usage = self.spool.usage()
        if usage.level is not self.level:
            for passed in _levels_between(self.level, usage.level):
                log.log(SEVERITY[passed], "spool quota %s: passed on the way to %s (%.1f %% of "
                        "%.1f MB used); %s", passed, usage.level, usage.percent,
                        usage.quota_bytes / 2**20, ADVICE[passed])  # fmt: skip
            log.log(
                SEVERITY[usage.level],
                "spool quota %s: %.1f %% of %.1f MB used%s; %s",
                usage.level, usage.percent, usage.quota_bytes / 2**20, _disk_note(usage),
                ADVICE[usage.level],
            )  # fmt: skip
            self.level = usage.level
            state = QuotaState(usage.level, usage.percent, usage.used_bytes, usage.quota_bytes,
                               format_time(self.clock()))  # fmt: skip
            try:  # the log line is the alarm; the state row is for status, and may not fit
                self.spool.set_state(AGENT_STATE, QUOTA_STATE_KEY, state.to_json())
            except SpoolError as exc:
                log.error("spool quota %s not recorded for status: %s", usage.level, exc)
        return usage


def _levels_between(old: SpoolLevel, new: SpoolLevel) -> list[SpoolLevel]:
    """The levels strictly between ``old`` and ``new`` when rising; none when falling."""
    return [level for level in SpoolLevel if RANK[old] < RANK[level] < RANK[new]]


def _disk_note(usage: SpoolUsage) -> str:
    if not usage.disk_limited or usage.free_bytes is None:
        return ""
    return (f" (limited by free disk: {usage.free_bytes / 2**20:.1f} MB free, "
            f"{usage.min_free_bytes / 2**20:.1f} MB must stay free; free disk space)")  # fmt: skip


def stored_state(spool: Spool) -> QuotaState | None:
    """The last alarm state ``QuotaWatch`` recorded (for status and health)."""
    text = spool.get_state(AGENT_STATE, QUOTA_STATE_KEY)
    return QuotaState.from_json(text) if text else None
