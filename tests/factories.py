"""Factories for test rows: the one ICDR factory and the ``gen_*`` presets built on it.

``gen_icdr(n, **overrides)`` makes a minimal valid call: number ``n`` starts ``n`` minutes
after ``T0`` and lasts ``seconds`` (42); any ICDR field can be overridden by keyword. The
presets below are ``gen_icdr`` with a fuller set of fields, for tests that need them. Every
number is from a range reserved for fiction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from edge_agent.sources.base import Quarantined
from shared.icdr import ICDR, Completion, Direction, make_record_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MIVB_START = datetime(2026, 5, 14, 13, 31, tzinfo=UTC)
RATED_ANSWER = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


def gen_icdr(n: int = 0, *, seconds: int = 42, **overrides: Any) -> ICDR:
    """Call ``n`` of source ``pbx-1`` (or ``source_id=``): T0 + n minutes, ``seconds`` long."""
    source_id = overrides.get("source_id", "pbx-1")
    values: dict[str, Any] = {
        "agent_id": "agent-1",
        "source_id": source_id,
        "source_kind": "fake",
        "start": T0 + timedelta(minutes=n),
        "calling": "01632960123",
        "called": "02079460456",
        **overrides,
    }
    # Derived only when not given, so a test may pass a deliberately bad start or source id.
    if "record_id" not in values:
        values["record_id"] = make_record_id(source_id, str(n))
    if "end" not in values:
        values["end"] = values["start"] + timedelta(seconds=seconds)
    return ICDR(**values)


def gen_outgoing_call(n: int = 0, **overrides: Any) -> ICDR:
    """An answered outgoing SMDR call as the data centre stores it; ``n`` varies id, time, numbers."""
    start = overrides.pop("start", T0 + timedelta(minutes=n))
    talk = overrides.pop("talk_seconds", 60 + n % 120)
    values: dict[str, Any] = {
        "record_id": make_record_id("test", str(n)),
        "agent_id": "edge-1",
        "source_id": "pbx",
        "source_kind": "mitel_smdr",
        "start": start,
        "answer": start + timedelta(seconds=5),
        "end": start + timedelta(seconds=5 + talk),
        "ring_seconds": 5,
        "talk_seconds": talk,
        "direction": Direction.OUT,
        "calling": f"2{n % 100:03d}",
        "called": f"0163296{n % 1000:04d}"[:11],
        "dialled_digits": f"901632960{n % 1000:03d}",
        "extension": f"2{n % 100:03d}",
        "trunk": "T1",
        "answered": True,
        "completion": Completion.ANSWERED,
        "raw": f"raw line {n}",
        "parser_version": "test-1",
    }
    return gen_icdr(n, **{**values, **overrides})


def gen_mivb_call(**overrides: Any) -> ICDR:
    """One MiVB SMDR line's call (extension 2201 dialling out on trunk T061), every field set."""
    values: dict[str, Any] = {
        "record_id": make_record_id("agent-1", "pbx1", "42", "abc"),
        "agent_id": "agent-1",
        "source_id": "pbx1",
        "source_kind": "mivb-smdr",
        "start": MIVB_START,
        "end": MIVB_START + timedelta(seconds=372),
        "answer": MIVB_START,
        "talk_seconds": 372,
        "direction": Direction.OUT,
        "calling": "2201",
        "called": "T061",
        "dialled_digits": "01632960123",
        "extension": "2201",
        "trunk": "T061",
        "account_code": "880042",
        "answered": True,
        "completion": Completion.ANSWERED,
        "completion_source": "A",
        "raw": "-05/14 09:31  00:06:12 2201      01632960123               A T061   ",
        "parser_version": "mivb-smdr/1",
    }
    return gen_icdr(**{**values, **overrides})


def gen_rated_call(
    *,
    number: str = "+33612345678",
    answer: datetime | None = RATED_ANSWER,
    seconds: int = 60,
    direction: Direction = Direction.OUT,
    answered: bool = True,
    record_id: str = "rec-1",
    **extra: Any,
) -> ICDR:
    """A call to rate: dialled ``number``, answered at ``answer``, lasting ``seconds``."""
    start = (answer or RATED_ANSWER) - timedelta(seconds=5)
    end = (answer or start) + timedelta(seconds=seconds)
    values: dict[str, Any] = {
        "record_id": record_id, "agent_id": "agent-1", "source_id": "src-1",
        "source_kind": "lcscdr", "start": start, "answer": answer if answered else None,
        "end": end, "direction": direction, "dialled_digits": number, "answered": answered,
        "talk_seconds": seconds if answered else 0, "calling": "", "called": "",
    }  # fmt: skip
    return gen_icdr(**{**values, **extra})


def gen_quarantined(seq: int, *, reason: str = "not_a_record") -> Quarantined:
    """A unit of source ``pbx-1`` its parser refused."""
    return Quarantined("pbx-1", seq, reason, "not a call line", b"garbage\x00")
