"""Factories for test rows: the one ICDR factory and the ``gen_*`` presets built on it.

``gen_icdr(n, **overrides)`` makes a minimal valid call: number ``n`` starts ``n`` minutes
after ``T0`` and lasts ``seconds`` (42); any ICDR field can be overridden by keyword. The
presets are ``gen_icdr`` with a fuller set of fields, for tests that need them:
``gen_outgoing_call`` (the data centre's stored call), ``gen_mivb_call`` (one MiVB line, every
field set), ``gen_rated_call`` (a call to rate), ``gen_smdr_call`` (the web fixtures' site
calls, raw line and UK offset included). ``gen_quarantined`` is a refused unit. Every number is
from a range reserved for fiction.
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


def gen_smdr_call(
    key: str,
    *,
    agent_id: str,
    start: datetime,
    direction: Direction = Direction.OUT,
    extension: str = "201",
    calling: str = "",
    called: str = "",
    talk_seconds: int = 65,
    ring_seconds: int = 7,
    completion: Completion = Completion.ANSWERED,
    account_code: str = "",
    trunk: str = "T001",
) -> ICDR:
    """One SMDR-style call; times in UTC, site clock on UK time."""
    answered = completion is Completion.ANSWERED
    talk = talk_seconds if answered else 0
    answer = start + timedelta(seconds=ring_seconds) if answered else None
    end = start + timedelta(seconds=ring_seconds + talk)
    offset = 60 if datetime(2025, 3, 30, 1, tzinfo=UTC) <= start < datetime(2025, 10, 26, 1, tzinfo=UTC) else 0  # fmt: skip
    local = start + timedelta(minutes=offset)
    dialled = called if direction is Direction.OUT else ""
    raw = (
        f"{local:%m/%d %H:%M} {talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d} "
        f"{extension:<5} {dialled or calling:<15} {trunk} {account_code:<6} {'A' if answered else 'U'}"
    )
    return gen_icdr(
        record_id=make_record_id(agent_id, key),
        agent_id=agent_id,
        source_id="smdr-main",
        source_kind="mitel_smdr",
        start=start,
        answer=answer,
        end=end,
        utc_offset_minutes=offset,
        ring_seconds=ring_seconds,
        talk_seconds=talk,
        direction=direction,
        calling=calling or (extension if direction is Direction.OUT else ""),
        called=called or (extension if direction is Direction.IN else ""),
        dialled_digits=dialled,
        extension=extension,
        trunk=trunk,
        account_code=account_code,
        answered=answered,
        completion=completion,
        completion_source="A" if answered else "U",
        raw=raw,
        parser_version="mitel-smdr/1",
    )


def gen_quarantined(seq: int, *, reason: str = "not_a_record") -> Quarantined:
    """A unit of source ``pbx-1`` its parser refused."""
    return Quarantined("pbx-1", seq, reason, "not a call line", b"garbage\x00")
