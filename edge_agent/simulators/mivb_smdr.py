"""MiVoice Business SMDR simulator: generated calls with their expected facts, and the PBX socket.

Contract: ``generate_calls(count=..., seed=..., start=..., layout=..., tz=...)`` returns
``SimCall`` values in the order the PBX writes them (a record is written when its call ends).
Each carries its formatted SMDR line and the facts a correct parser must derive, computed from
the chosen values by the rules of formats.md §2.3-2.4 (default completion table, no
unsupervised allowance), never by parsing. The mix covers answered and unanswered outgoing
calls (supervised and not), incoming DID calls answered, unanswered and busy, transfers,
conferences, attendant-handled calls, account codes, internal and tandem calls, long calls
(flags ``-`` ``%`` ``+``) and calls that cross midnight. Numbers are fictional (UK 01632 960xxx,
020 7946 0xxx, 07700 900xxx; North American 555-01xx).

``SmdrSimulatorServer`` plays the controller's SMDR port (the PBX is the server): it streams the
lines with CR LF at ``rate_per_second`` to every connected client, or, ``live``, each call's line
when the clock reaches the call's ``received_at`` (a PBX writes the record when the call ends), so
calls generated from a start in the past arrive at once and the rest as they end. Like the PBX it buffers while
no client is connected, and a client that connects gets the buffered lines first, so a collector
that reconnects loses nothing and receives nothing twice. ``drop_after_lines`` closes each
connection after that many lines (to test reconnects).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from zoneinfo import ZoneInfo

from edge_agent.simulators.pbx_server import PbxServer
from edge_agent.sources.mivb_smdr.layout import LayoutFlags, column_map, format_record
from shared.icdr import Completion, Direction

DEFAULT_PORT = 1752
DEFAULT_SYSTEM_ID = "001"
DEFAULT_MEAN_GAP_SECONDS = 90.0
SEND_TIMEOUT_SECONDS = 5.0
WAIT_POLL_SECONDS = 0.05
EMIT_DELAY_SECONDS = 2  # the PBX writes the record this long after the call ends

# scenario -> weight (per mille of calls)
SCENARIOS: dict[str, int] = {
    "outgoing_answered": 260,
    "outgoing_unsupervised": 60,
    "outgoing_unanswered": 50,
    "outgoing_account_code": 60,
    "incoming_answered": 200,
    "incoming_unanswered": 70,
    "incoming_busy": 30,
    "incoming_transferred": 70,
    "conference": 20,
    "attendant": 40,
    "internal": 80,
    "tandem": 20,
    "long_call": 40,
}
STATIONS = ("2201", "2202", "2230", "2245", "2310", "2318", "2400", "2417")
DID_DIGITS = ("4455", "4400", "4471", "4490")
ATTENDANT = "ATT1"
ACCOUNT_CODES = ("880042", "770001", "1234", "990315")


def _external_number(rng: random.Random) -> str:
    """A dialled number from a range reserved for fiction."""
    choice = rng.randrange(4)
    if choice == 0:
        return f"01632960{rng.randrange(1000):03d}"
    if choice == 1:
        return f"02079460{rng.randrange(1000):03d}"
    if choice == 2:
        return f"07700900{rng.randrange(1000):03d}"
    return f"1613555{rng.randrange(100, 200):04d}"


def _caller_id(rng: random.Random) -> str:
    """ANI: a ten-digit North American 555-01xx number."""
    return f"{rng.choice(('613', '416', '212'))}55501{rng.randrange(100):02d}"


@dataclass(frozen=True, slots=True)
class SimCall:
    """One simulated call: its SMDR line and the ICDR facts a parser must produce from it."""

    line: str
    scenario: str
    received_at: datetime  # UTC: when the PBX writes the line
    start_local: datetime  # naive site wall-clock
    start: datetime  # UTC
    answer: datetime | None
    end: datetime
    duration_seconds: int
    tta_seconds: int | None
    ring_seconds: int
    talk_seconds: int
    direction: Direction
    calling: str
    called: str
    dialled_digits: str
    extension: str
    trunk: str
    third_party: str
    account_code: str
    ani: str
    dnis: str
    answered: bool
    completion: Completion
    completion_letter: str
    transferred: bool
    conference: bool
    attendant: bool
    unsupervised: bool


@dataclass(slots=True)
class _Draft:
    """The chosen values of one call before it is formatted."""

    scenario: str
    direction: Direction
    calling: str
    called: str
    digits: str = ""
    duration: int = 0
    tta: int | None = None
    never_answered: bool = False
    letter: str = ""
    transfer: str = ""
    third_party: str = ""
    account_code: str = ""
    attendant: bool = False
    meter_pulses: str = ""


def generate_calls(
    *,
    count: int,
    seed: int,
    start: datetime,
    layout: str | LayoutFlags = "standard",
    tz: str | ZoneInfo = "UTC",
    clock: str = "24h",
    system_id: str = DEFAULT_SYSTEM_ID,
    mean_gap_seconds: float = DEFAULT_MEAN_GAP_SECONDS,
) -> list[SimCall]:
    """``count`` calls starting around ``start`` (site wall-clock if naive), in emission order.

    ``clock`` is ``24h`` or ``12h`` (hours 1-12, ``P`` in the AM/PM column for the afternoon,
    blank in the morning, as in Mitel's examples).
    """
    flags = LayoutFlags.parse(layout) if isinstance(layout, str) else layout
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    rng = random.Random(seed)
    local = start.astimezone(zone).replace(tzinfo=None) if start.tzinfo else start
    scenarios = list(SCENARIOS)
    weights = list(SCENARIOS.values())
    calls: list[SimCall] = []
    for number in range(count):
        local += timedelta(seconds=max(1, int(rng.expovariate(1 / mean_gap_seconds))))
        begin = (
            local.replace(microsecond=0)
            if flags.seconds
            else local.replace(second=0, microsecond=0)
        )
        draft = _draft(rng.choices(scenarios, weights)[0], rng, flags)
        calls.append(_finish(draft, begin, number, rng, flags, zone, clock, system_id))
    calls.sort(key=lambda call: call.received_at)
    return calls


def _draft(scenario: str, rng: random.Random, flags: LayoutFlags) -> _Draft:
    station = rng.choice(STATIONS)
    other = rng.choice([s for s in STATIONS if s != station])
    trunk = _trunk(rng, flags)
    talk = int(rng.triangular(8, 900, 60))
    if scenario in ("outgoing_answered", "outgoing_account_code", "long_call"):
        if scenario == "long_call":
            talk = rng.choice((rng.randrange(300, 600), rng.randrange(600, 1800)))
            talk = rng.choice((talk, rng.randrange(1800, 3 * 3600)))
        return _Draft(
            scenario,
            Direction.OUT,
            station,
            trunk,
            digits=_external_number(rng),
            duration=talk,
            letter="A",
            account_code=rng.choice(ACCOUNT_CODES) if scenario == "outgoing_account_code" else "",
            meter_pulses=f"{talk // 60 + 1:05d}" if flags.meter_pulses else "",
        )
    if scenario == "outgoing_unsupervised":
        return _Draft(scenario, Direction.OUT, station, trunk, _external_number(rng), talk)
    if scenario == "outgoing_unanswered":
        return _Draft(scenario, Direction.OUT, station, trunk, _external_number(rng), 0)
    if scenario in ("incoming_answered", "incoming_transferred"):
        draft = _Draft(
            scenario, Direction.IN, trunk, station, rng.choice(DID_DIGITS), talk, rng.randint(1, 30)
        )
        if scenario == "incoming_transferred":
            draft.transfer = rng.choice("TX")
            draft.third_party = other
        return draft
    if scenario == "incoming_unanswered":
        return _Draft(
            scenario, Direction.IN, trunk, station, rng.choice(DID_DIGITS), never_answered=True
        )
    if scenario == "incoming_busy":
        return _Draft(
            scenario,
            Direction.IN,
            trunk,
            station,
            rng.choice(DID_DIGITS),
            never_answered=True,
            letter="B",
        )
    if scenario == "attendant":
        # the attendant answered the trunk call and transferred it to a station
        return _Draft(
            scenario,
            Direction.IN,
            trunk,
            ATTENDANT,
            rng.choice(DID_DIGITS),
            talk,
            rng.randint(2, 20),
            transfer="T",
            third_party=station,
            attendant=True,
        )
    if scenario == "conference":
        return _Draft(
            scenario,
            Direction.OUT,
            station,
            trunk,
            _external_number(rng),
            talk,
            letter="A",
            transfer="C",
            third_party=other,
        )
    if scenario == "internal":
        return _Draft(scenario, Direction.INTERNAL, station, other, duration=talk)
    if scenario == "tandem":
        return _Draft(
            scenario,
            Direction.TANDEM,
            trunk,
            _trunk(rng, flags),
            _external_number(rng),
            talk,
            letter="A",
        )
    raise ValueError(f"unknown scenario {scenario!r}")


def _trunk(rng: random.Random, flags: LayoutFlags) -> str:
    width = 4 if flags.extended_digits else 3
    return f"{rng.choice('TTTX')}{rng.randrange(1, 100):0{width}d}"


def _finish(
    draft: _Draft,
    begin: datetime,
    number: int,
    rng: random.Random,
    flags: LayoutFlags,
    zone: ZoneInfo,
    clock: str,
    system_id: str,
) -> SimCall:
    """Apply formats.md §2.3-2.4 to the draft and format its line."""
    incoming = draft.direction in (Direction.IN, Direction.TANDEM) and draft.tta is not None
    unsupervised = draft.direction is Direction.OUT and not draft.letter
    if draft.letter == "B":
        completion = Completion.BUSY
    elif draft.never_answered or draft.duration == 0:
        completion = Completion.NO_ANSWER
    else:
        completion = Completion.ANSWERED
    answered = completion is Completion.ANSWERED
    start = begin.replace(tzinfo=zone).astimezone(UTC)
    if answered and incoming:
        assert draft.tta is not None
        ring, answer_after, end_after = draft.tta, draft.tta, draft.tta + draft.duration
    elif answered:
        ring, answer_after, end_after = 0, 0, draft.duration
    else:
        ring, answer_after, end_after = draft.duration, None, draft.duration
    end = start + timedelta(seconds=end_after)
    ani = _caller_id(rng) if flags.ani_dnis and draft.direction is Direction.IN else ""
    dnis = f"613555{draft.digits}" if ani else ""
    line = _format(draft, begin, number, flags, clock, system_id, ani, dnis)
    trunk = draft.calling if draft.direction in (Direction.IN, Direction.TANDEM) else ""
    trunk = draft.called if draft.direction is Direction.OUT else trunk
    extension = {Direction.IN: draft.called, Direction.OUT: draft.calling}.get(
        draft.direction, draft.calling if draft.direction is Direction.INTERNAL else ""
    )
    return SimCall(
        line=line,
        scenario=draft.scenario,
        received_at=end + timedelta(seconds=EMIT_DELAY_SECONDS),
        start_local=begin,
        start=start,
        answer=None if answer_after is None else start + timedelta(seconds=answer_after),
        end=end,
        duration_seconds=draft.duration,
        tta_seconds=draft.tta,
        ring_seconds=ring,
        talk_seconds=draft.duration if answered else 0,
        direction=draft.direction,
        calling=draft.calling,
        called=draft.called,
        dialled_digits=draft.digits,
        extension=extension,
        trunk=trunk,
        third_party=draft.third_party,
        account_code=draft.account_code,
        ani=ani,
        dnis=dnis,
        answered=answered,
        completion=completion,
        completion_letter=draft.letter,
        transferred=draft.transfer in ("T", "X"),
        conference=draft.transfer == "C",
        attendant=draft.attendant,
        unsupervised=unsupervised,
    )


def _format(
    draft: _Draft,
    begin: datetime,
    number: int,
    flags: LayoutFlags,
    clock: str,
    system_id: str,
    ani: str,
    dnis: str,
) -> str:
    cmap = column_map(flags)
    columns = cmap.by_name()
    hours, rest = divmod(draft.duration, 3600)
    hour_width = columns["duration"].width - 6
    tta_width = columns["tta"].width
    if draft.never_answered:
        tta = "*" * tta_width
    elif draft.tta is not None:
        tta = f"{draft.tta:0{tta_width}d}"
    else:
        tta = ""
    hour, am_pm = begin.hour, ""
    if clock == "12h":
        am_pm = "P" if hour >= 12 else ""
        hour = hour % 12 or 12
    time_text = f"{hour:02d}:{begin.minute:02d}" + (f":{begin.second:02d}" if flags.seconds else "")
    values = {
        "long_call": _long_call_flag(draft.duration),
        "date": f"{begin.month:02d}/{begin.day:02d}",
        "start_time": time_text,
        "am_pm": am_pm,
        "duration": f"{hours:0{hour_width}d}:{rest // 60:02d}:{rest % 60:02d}",
        "calling": draft.calling,
        "attendant": "*" if draft.attendant else "",
        "tta": tta,
        "digits": draft.digits,
        "completion": draft.letter,
        "called": draft.called,
        "transfer": draft.transfer,
        "third_party": draft.third_party,
        "account_code": draft.account_code,
        "system_id": system_id,
    }
    if flags.meter_pulses:
        values["meter_pulses"] = draft.meter_pulses
    if flags.ani_dnis:
        values["ani"] = ani
        values["dnis"] = dnis
    if flags.oli:
        values["oli_call_id"] = f"1{system_id}{number % 10000:04d}1"
        values["oli_associated_call_id"] = f"1{system_id}{number % 10000:04d}"
    return format_record(flags, values)


def _long_call_flag(seconds: int) -> str:
    if seconds >= 30 * 60:
        return "+"
    if seconds >= 10 * 60:
        return "%"
    if seconds >= 5 * 60:
        return "-"
    return ""


# --- the PBX's SMDR port ----------------------------------------------------------------------


class SmdrSimulatorServer:
    """Streams SMDR lines to connected collectors, buffering while none is connected.

    ``sent`` counts lines written to at least one client; ``wait_until_sent(n)`` blocks until
    then. ``connections`` counts connections accepted. ``release_all()`` makes every remaining
    line due at once (a test that needed a slow stream for a while, then wants the rest).
    ``spans()`` says which lines went down which connection (a kill test's lost lines must be
    the tail of one).
    """

    def __init__(
        self,
        lines: Iterable[str | SimCall],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_per_second: float = 0.0,
        drop_after_lines: int | None = None,
        line_ending: str = "\r\n",
        live: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        items = list(lines)
        if live and not all(isinstance(item, SimCall) for item in items):
            raise ValueError("live mode needs SimCall values: their received_at says when to send")
        # Live: line i is due once the clock reaches its call's record time (sorted, as
        # generate_calls returns them).
        self._due_at = (
            sorted(i.received_at for i in items if isinstance(i, SimCall)) if live else None
        )
        self._clock = clock
        self._data: Sequence[bytes] = [
            (item.line if isinstance(item, SimCall) else item).encode("latin-1")
            + line_ending.encode("ascii")
            for item in items
        ]
        self._rate = rate_per_second
        self._drop_after = drop_after_lines
        self._changed = threading.Condition()
        self._spans: list[tuple[int, int]] = []  # per connection: (first line, end) written
        self._delivered = 0  # lines written to some client: the PBX buffer holds the rest
        self._started_at = 0.0
        self._server = PbxServer(self._handle, host=host, port=port)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def sent(self) -> int:
        with self._changed:
            return self._delivered

    @property
    def connections(self) -> int:
        return self._server.connections_accepted

    @property
    def total(self) -> int:
        return len(self._data)

    def start(self) -> SmdrSimulatorServer:
        self._started_at = time.monotonic()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def wait_until_sent(self, count: int | None = None, *, timeout: float | None = 10.0) -> bool:
        """Block until ``count`` lines (all by default) were sent; False on timeout."""
        goal = self.total if count is None else count
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._delivered < goal:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(WAIT_POLL_SECONDS * 20 if remaining is None else remaining)
        return True

    def __enter__(self) -> SmdrSimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def spans(self) -> list[range]:
        """The line indices written on each connection, in the order they were accepted."""
        with self._changed:
            return [range(first, end) for first, end in self._spans]

    def release_all(self) -> None:
        """From now on every line is due: the rest are sent as fast as the client reads."""
        self._due_at = None
        self._rate = 0.0
        with self._changed:
            self._changed.notify_all()

    def _due(self) -> int:
        """How many lines the PBX has produced by now (all of them at rate 0)."""
        if self._due_at is not None:
            return bisect_right(self._due_at, self._clock())
        if self._rate <= 0:
            return len(self._data)
        produced = int((time.monotonic() - self._started_at) * self._rate) + 1
        return min(len(self._data), produced)

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(SEND_TIMEOUT_SECONDS)
        with self._changed:
            cursor = self._delivered  # a new client first gets what the buffer holds
            span = len(self._spans)
            self._spans.append((cursor, cursor))
        sent_here = 0
        while not stop.is_set():
            if self._drop_after is not None and sent_here >= self._drop_after:
                return  # PbxServer closes the connection
            if cursor >= len(self._data):
                stop.wait(WAIT_POLL_SECONDS)  # the PBX stays connected, waiting for calls
                continue
            if cursor >= self._due():
                stop.wait(
                    WAIT_POLL_SECONDS if self._rate <= 0 else min(WAIT_POLL_SECONDS, 1 / self._rate)
                )
                continue
            conn.sendall(self._data[cursor])
            cursor += 1
            sent_here += 1
            with self._changed:
                self._delivered = max(self._delivered, cursor)
                self._spans[span] = (self._spans[span][0], cursor)
                self._changed.notify_all()
