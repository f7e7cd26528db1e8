"""System OAI wire format: the one place that knows how OAI text is laid out (formats.md §5).

The OAI specification is not public; everything here comes from one open-source library and the
manual text it quotes, so the layout is confined to this module and its table ``LAYOUTS``.
Contract: ``decode_event(payload)`` turns one frame payload into a neutral ``OaiEvent`` or a
``Rejection``; it never raises. Unknown event codes still decode (category ``unknown``, every
field kept in ``extra_fields``) so the caller can keep and count them; fields beyond a known
layout (newer PBX releases) are kept in ``extra_fields`` too. Commands and events are built
with ``command`` and ``join_fields`` (the simulator plays the PBX with the same functions).

Wire shape, inside the 4-byte length prefix of ``mivo250_framing``::

    [<sequence>,]<CODE>,<field>,<field>,...          events and confirmations (PBX -> client)
    _<CMD>,<InvokeID>,<arg>,...\\r                    commands (client -> PBX)

Text fields are wrapped in ``|`` and may hold commas. Whether events carry a leading sequence
number is one of the open points (§5.2): a first field of digits followed by an event code is
read as a sequence number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge_agent.sources.rejection import Rejection

MONITOR_ALL_TRUNKS = 4
MONITOR_CALL_TERMINATION = 8
MONITOR_SYSTEM = 11
CONFIRMATION = "CF"
PORTS_EXCEEDED = "PE"
PIPE = "|"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CODE = re.compile(r"[A-Z]{2,3}")
_CALL_PREFIX = ("resync", "monitor", "call_id")
_COMMON_PREFIX = ("resync", "monitor")

CALL_EVENTS = frozenset(
    {"OR", "DE", "ES", "ER", "HE", "RE", "TR", "CO", "DI", "QU", "FA", "NT", "SI", "XC", "CC"}
)
AGENT_EVENTS = frozenset({"LN", "LF", "RY", "NRY", "WNR"})
FEATURE_EVENTS = frozenset(
    {"CB", "CI", "OL", "DCE", "DLC", "DND", "ET", "FE", "FW", "GI", "MU", "MW", "OE"}
)
SYSTEM_EVENTS = frozenset({"AG", "DC", "EC", "NM"})
MISC_EVENTS = frozenset({"DSC", "DEE", "ME", "OF", "PE", "RD", "RS", "SMR", "CS", "GDA", "LS"})

# Field names after the event code, in wire order (the library's positions 2.. when a sequence
# number leads). Only the fields accounting needs are named; the rest stay in extra_fields.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "ES": (
        *_CALL_PREFIX,
        "answering_extension",
        "answering_outside_number",
        "answering_device_type",
        "calling_extension",
        "outside_caller_number",
        "trunk_outside_number",
        "calling_device_type",
        "originally_called",
        "last_redirecting_extension",
        "connection_state",
        "cause",
    ),
    "CC": (*_CALL_PREFIX, "cause", "transferred_call_id", "transfer_destination"),
    "SMR": (*_COMMON_PREFIX, "node", "smdr_text"),
    CONFIRMATION: ("command", "invoke_id"),
    PORTS_EXCEEDED: (),
}

# Event cause codes (subset quoted by the library).
CAUSES: dict[int, str] = {
    3: "busy",
    8: "forward_no_answer",
    9: "call_forward",
    10: "not_answered",
    11: "pickup",
    13: "destination_not_available",
    14: "do_not_disturb",
    22: "new_call",
    26: "overflow",
    27: "recall",
    28: "redirected",
    29: "reorder_tone",
    32: "transfer",
    33: "trunks_busy",
    35: "answered",
    36: "normal_clear",
    37: "hold_system",
    38: "hold_for_transfer",
    39: "hold_for_conference",
    41: "conference",
    42: "hold_individual",
    43: "record_a_call",
    44: "call_stolen",
}
CAUSE_TRANSFER = 32


@dataclass(frozen=True, slots=True)
class OaiEvent:
    """One decoded event, neutral of field positions."""

    code: str
    category: str  # call, agent, feature, system, misc, confirmation, unknown
    sequence: int | None
    fields: Mapping[str, str] = field(default_factory=dict)
    extra_fields: tuple[str, ...] = ()

    @property
    def call_id(self) -> str:
        return self.fields.get("call_id", "")

    @property
    def resync(self) -> str:
        """Blank for a live event; a number when the event answers a resync or follows a reset."""
        return self.fields.get("resync", "")

    @property
    def cause(self) -> int | None:
        text = self.fields.get("cause", "").strip()
        return int(text) if text.isdigit() else None


def split_fields(text: str) -> list[str] | None:
    """Split on commas outside ``|...|``; pipes are removed. None if a pipe is left open."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == PIPE:
            quoted = not quoted
        elif ch == "," and not quoted:
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        return None
    fields.append("".join(current))
    return fields


def join_fields(values: Sequence[str], *, piped: frozenset[int] = frozenset()) -> str:
    """The inverse of ``split_fields``: values at the ``piped`` indexes are wrapped in pipes."""
    return ",".join(f"{PIPE}{v}{PIPE}" if i in piped else v for i, v in enumerate(values))


def decode_event(payload: bytes) -> OaiEvent | Rejection:
    """Decode one frame payload (event or confirmation) from the PBX."""
    text = payload.decode("latin-1").strip("\x00").rstrip("\r\n\x00")
    if not text.strip():
        return Rejection("empty_frame", "the frame holds no text")
    if _CONTROL.search(text):
        return Rejection("undecodable", "the frame holds control characters, not OAI text")
    fields = split_fields(text)
    if fields is None:
        return Rejection("undecodable", "a |text| field is not closed")
    sequence: int | None = None
    if len(fields) > 1 and fields[0].isdigit() and _CODE.fullmatch(fields[1]):
        sequence, fields = int(fields[0]), fields[1:]
    code = fields[0]
    if not _CODE.fullmatch(code):
        return Rejection("undecodable", f"{code[:20]!r} is not an OAI event code")
    layout = LAYOUTS.get(code) or _default_layout(code)
    values = fields[1:]
    return OaiEvent(
        code=code,
        category=category(code),
        sequence=sequence,
        fields=dict(zip(layout, values, strict=False)),
        extra_fields=tuple(values[len(layout) :]),
    )


def _default_layout(code: str) -> tuple[str, ...]:
    if code in CALL_EVENTS:
        return _CALL_PREFIX
    if category(code) == "unknown":
        return ()
    return _COMMON_PREFIX


def category(code: str) -> str:
    if code in CALL_EVENTS:
        return "call"
    if code == CONFIRMATION:
        return "confirmation"
    for name, codes in (
        ("agent", AGENT_EVENTS),
        ("feature", FEATURE_EVENTS),
        ("system", SYSTEM_EVENTS),
        ("misc", MISC_EVENTS),
    ):
        if code in codes:
            return name
    return "unknown"


def command(name: str, invoke_id: int, *args: str) -> bytes:
    """A command payload (without the length prefix): ``_MS,1,,8`` + CR."""
    return (",".join((f"_{name}", str(invoke_id), *args)) + "\r").encode("ascii")


def monitor_start(
    invoke_id: int, monitor_type: int, *, affected_id: str = "", filters: str = ""
) -> bytes:
    args = [affected_id, str(monitor_type)] + ([filters] if filters else [])
    return command("MS", invoke_id, *args)


def no_operation(invoke_id: int) -> bytes:
    return command("NO", invoke_id)


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded client command (what the PBX side sees)."""

    name: str
    invoke_id: str
    args: tuple[str, ...]


def read_command(payload: bytes) -> Command | None:
    """Decode a command payload; None if it is not ``_CMD,InvokeID,...``."""
    text = payload.decode("latin-1").rstrip("\r\n\x00")
    fields = split_fields(text)
    if not fields or len(fields) < 2 or not fields[0].startswith("_"):
        return None
    return Command(name=fields[0][1:], invoke_id=fields[1], args=tuple(fields[2:]))
