"""Why a raw unit is not a call: the value decoders return instead of raising.

Contract: decoders in the Mitel drivers return ``Rejection`` for bad input, never raise;
``quarantine`` turns it into the ``Quarantined`` result that keeps the unit's raw bytes, so
nothing a PBX sent is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.sources.base import Quarantined, RawUnit


@dataclass(frozen=True, slots=True)
class Rejection:
    """A short code for machines (``layout_mismatch``) and a sentence for people."""

    reason: str
    detail: str


def quarantine(unit: RawUnit, rejection: Rejection) -> Quarantined:
    return Quarantined(
        source_id=unit.source_id,
        seq=unit.seq,
        reason=rejection.reason,
        detail=rejection.detail,
        raw=unit.data,
    )
