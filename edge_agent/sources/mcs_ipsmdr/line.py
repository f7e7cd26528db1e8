"""One MCS IP SMDR event line (formats.md §3.2, §3.6) -> ``IpSmdrEvent``.

Contract: ``read_line(text, pad=...)`` returns an ``IpSmdrEvent`` or a ``Rejection``; it never
raises. A 162-character line whose separators and pipes sit where the manual puts them is read
by fixed offsets (``layout="fixed"``). Anything else is tokenised (``layout="tokenised"``):
pipes split the line into its piped elements (Direction, Contact Name, DNIS, Event) and the
bare regions between them; a bare region's words are matched to its elements in order, and when
space padding leaves fewer words than elements, each word goes to the element whose nominal
columns it overlaps most. That absorbs the manual's own ±1 widths, ``||`` and ``| |`` for an
empty name, a missing DNIS on outbound lines, lines shorter or longer than 162 and LF endings.

Padding (§3.2): the configured pad character is stripped from device fields (Trunk, Endpoint,
Source Endpoint). When the pad is a digit, Caller ID and DDI keep their padded value and the
event says ``ambiguous_numbers`` (left padding with ``0`` hides how many leading zeros are real).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from edge_agent.sources.rejection import Rejection

LINE_WIDTH = 162
MAX_LINE = 1024  # far beyond any real line; longer input is not worth tokenising
DEFAULT_PAD = "0"
PIPE = "|"

KNOWN_EVENTS = frozenset(
    {
        "RINGING",
        "ANSWERED",
        "HOLD",
        "CONNECTED",
        "DIVERTED",
        "TRANSFERRED",
        "QUEUED",
        "CALLMODIFIED",
        "DISCONNECTED",
    }
)
_EVENT_ALIASES = {"CALLCONNECTED": "CONNECTED"}  # 13 letters cannot fit the 12-wide slot
DIRECTIONS = frozenset({"IN", "OUT"})


@dataclass(frozen=True, slots=True)
class Element:
    name: str
    width: int
    piped: bool


ELEMENTS: tuple[Element, ...] = (
    Element("timestamp", 19, piped=False),
    Element("direction", 5, piped=True),
    Element("call_id", 22, piped=False),
    Element("trunk", 7, piped=False),
    Element("endpoint", 7, piped=False),
    Element("source_endpoint", 7, piped=False),
    Element("caller_id", 15, piped=False),
    Element("contact_name", 14, piped=True),
    Element("ddi", 15, piped=False),
    Element("dnis_name", 14, piped=True),
    Element("account_code", 12, piped=False),
    Element("event", 14, piped=True),
)


def _offsets() -> dict[str, tuple[int, int]]:
    spans: dict[str, tuple[int, int]] = {}
    column = 0
    for element in ELEMENTS:
        spans[element.name] = (column, column + element.width)
        column += element.width + 1
    return spans


SPANS = _offsets()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_EVENT_WORD = re.compile(r"[A-Z][A-Z_]{0,19}")
_DEVICE = re.compile(r"\d*")
_CALL_ID = re.compile(r"\d{1,32}")


@dataclass(frozen=True, slots=True)
class IpSmdrEvent:
    """One event, cleaned of padding; times are the MCS server's local wall clock."""

    local_time: datetime
    direction: str  # IN or OUT
    call_id: str
    trunk: str
    endpoint: str
    source_endpoint: str
    caller_id: str
    contact_name: str
    ddi: str
    dnis_name: str
    account_code: str
    event: str  # normalised: CALLCONNECTED -> CONNECTED; unknown words as read
    layout: str  # fixed or tokenised
    ambiguous_numbers: bool

    @property
    def known(self) -> bool:
        return self.event in KNOWN_EVENTS


def read_line(text: str, *, pad: str = DEFAULT_PAD) -> IpSmdrEvent | Rejection:
    """Read one event line (without its line end)."""
    text = text.rstrip("\r\n")
    if not text.strip():
        return Rejection("blank_line", "the line is blank")
    if len(text) > MAX_LINE:
        return Rejection("line_too_long", f"{len(text)} characters; an event line has {LINE_WIDTH}")
    if _CONTROL.search(text):
        return Rejection("control_characters", "the line holds control characters")
    fixed = _fixed(text)
    if fixed is not None:
        return _to_event(fixed, layout="fixed", pad=pad)
    tokenised = _tokenised(text)
    if isinstance(tokenised, Rejection):
        return tokenised
    return _to_event(tokenised, layout="tokenised", pad=pad)


def _fixed(text: str) -> dict[str, str] | None:
    if len(text) != LINE_WIDTH:
        return None
    values: dict[str, str] = {}
    for element in ELEMENTS:
        begin, end = SPANS[element.name]
        if end < LINE_WIDTH and text[end] != " ":
            return None
        value = text[begin:end]
        if element.piped:
            if value[0] != PIPE or value[-1] != PIPE:
                return None
            value = value[1:-1]
        if PIPE in value:
            return None
        values[element.name] = value
    return values


def _tokenised(text: str) -> dict[str, str] | Rejection:
    values = {"timestamp": text[:19]}
    rest = text[19:]
    pipes = [i for i, ch in enumerate(rest) if ch == PIPE]
    if len(pipes) not in (6, 8):
        return Rejection(
            "layout_mismatch",
            f"{len(pipes)} pipe characters; an event line has 8 (6 without DNIS)",
        )
    groups = [(pipes[i], pipes[i + 1]) for i in range(0, len(pipes), 2)]
    piped_names = ["direction", "contact_name", "dnis_name", "event"]
    if len(groups) == 3:
        piped_names.remove("dnis_name")
        values["dnis_name"] = ""
    bare_names: list[list[str]] = [
        ["call_id", "trunk", "endpoint", "source_endpoint", "caller_id"],
        ["ddi", "account_code"] if len(groups) == 3 else ["ddi"],
        [] if len(groups) == 3 else ["account_code"],
    ]
    if rest[: groups[0][0]].strip() or rest[groups[-1][1] + 1 :].strip():
        return Rejection("layout_mismatch", "text outside the elements before or after the pipes")
    for name, (open_, close) in zip(piped_names, groups, strict=True):
        values[name] = rest[open_ + 1 : close]
    if len(groups) == 3 and "OUT" not in values["direction"]:
        return Rejection("layout_mismatch", "no DNIS element, which only outbound lines may omit")
    regions = [rest[groups[i][1] + 1 : groups[i + 1][0]] for i in range(len(groups) - 1)]
    if len(groups) == 4:
        regions_named = list(zip(regions, bare_names, strict=True))
    else:
        regions_named = list(zip(regions, bare_names[:2], strict=True))
    for region, names in regions_named:
        assigned = _assign_words(region, names)
        if assigned is None:
            return Rejection(
                "layout_mismatch",
                f"more words than elements between pipes where {', '.join(names)} belong",
            )
        values.update(assigned)
    return values


def _assign_words(region: str, names: list[str]) -> dict[str, str] | None:
    """Match the words of a bare region to its elements (see the module docstring)."""
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"\S+", region)]
    if len(words) > len(names):
        return None
    result = dict.fromkeys(names, "")
    if len(words) == len(names):
        result.update({name: word for name, (_, _, word) in zip(names, words, strict=True)})
        return result
    slots = _nominal_slots(names)
    slot = 0
    for index, (begin, end, word) in enumerate(words):
        last_allowed = len(names) - (len(words) - index)
        candidates = range(slot, last_allowed + 1)
        best = max(candidates, key=lambda j: (_overlap((begin, end), slots[j]), -j))
        result[names[best]] = word
        slot = best + 1
    return result


def _nominal_slots(names: list[str]) -> list[tuple[int, int]]:
    """Columns of each element inside a bare region that starts just after a pipe."""
    slots: list[tuple[int, int]] = []
    column = 1  # the separator after the closing pipe
    for name in names:
        width = next(e.width for e in ELEMENTS if e.name == name)
        slots.append((column, column + width))
        column += width + 1
    return slots


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def _to_event(values: dict[str, str], *, layout: str, pad: str) -> IpSmdrEvent | Rejection:
    local_time = _timestamp(values["timestamp"])
    if local_time is None:
        return Rejection("bad_time", f"{values['timestamp']!r} is not yyyy-MM-dd HH:mm:ss")
    direction = _text(values["direction"], pad)
    if direction not in DIRECTIONS:
        return Rejection("bad_direction", f"direction {direction!r} is neither IN nor OUT")
    call_id = _call_id(values["call_id"], pad)
    if not _CALL_ID.fullmatch(call_id):
        return Rejection("bad_call_id", f"CallID {values['call_id']!r} is not a number")
    devices = {
        name: _device(values[name], pad) for name in ("trunk", "endpoint", "source_endpoint")
    }
    for name, device in devices.items():
        if not _DEVICE.fullmatch(device):
            return Rejection("bad_device", f"{name} {values[name]!r} is not a device number")
    word = _text(values["event"], pad)
    if not _EVENT_WORD.fullmatch(word):
        return Rejection("bad_event", f"event {values['event']!r} is not an event word")
    caller_id, caller_ambiguous = _number(values["caller_id"], pad)
    ddi, ddi_ambiguous = _number(values["ddi"], pad)
    return IpSmdrEvent(
        local_time=local_time,
        direction=direction,
        call_id=call_id,
        trunk=devices["trunk"],
        endpoint=devices["endpoint"],
        source_endpoint=devices["source_endpoint"],
        caller_id=caller_id,
        contact_name=_text(values["contact_name"], pad),
        ddi=ddi,
        dnis_name=_text(values["dnis_name"], pad),
        account_code=_account(values["account_code"], pad),
        event=_EVENT_ALIASES.get(word, word),
        layout=layout,
        ambiguous_numbers=caller_ambiguous or ddi_ambiguous,
    )


def _timestamp(text: str) -> datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` (strptime is several times slower and accepts 1-digit fields)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None


def _only_pad(value: str, pad: str) -> bool:
    return not value.strip().strip(pad).strip()


def _device(value: str, pad: str) -> str:
    return value.strip().lstrip(pad).strip()


def _call_id(value: str, pad: str) -> str:
    # The CallID is opaque digits: a digit pad is part of it, any other pad is not.
    value = value.strip()
    return value if pad.isdigit() else value.strip(pad).strip()


def _number(value: str, pad: str) -> tuple[str, bool]:
    """(number, ambiguous): a digit pad cannot be told from real leading zeros."""
    if _only_pad(value, pad):
        return "", False
    value = value.strip()
    if pad.isdigit():
        return value, value.startswith(pad)
    return value.strip(pad).strip(), False


def _account(value: str, pad: str) -> str:
    return "" if _only_pad(value, pad) else value.strip().lstrip(pad).strip()


def _text(value: str, pad: str) -> str:
    """A piped text element: spaces trimmed; a non-alphanumeric pad trimmed from the right."""
    if _only_pad(value, pad):
        return ""
    value = value.strip()
    return value if pad.isalnum() else value.rstrip(pad).strip()
