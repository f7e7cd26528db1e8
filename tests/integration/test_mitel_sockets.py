"""Mitel sources over real loopback sockets: the simulators play MCS and the MiVO250 PBX.

Each test runs a driver's real acquirer (from ``make_source``) against a simulator server or
pusher and records what it delivers; the units are then parsed with the source's parser.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from edge_agent.simulators import mcs_ipsmdr as ipsmdr_sim
from edge_agent.simulators import mivo250_oai as oai_sim
from edge_agent.simulators import mivo250_smdr as smdr_sim
from edge_agent.simulators.pbx_server import PbxServer, recv_exactly
from edge_agent.sources import registry
from edge_agent.sources.base import (
    ParseResult,
    Quarantined,
    RawUnit,
    Source,
    SourceContext,
)
from edge_agent.sources.mivo250_socket.framing import encode_frame
from edge_agent.sources.streams.acquirer_group import AcquirerGroup
from edge_agent.sources.streams.tcp import TcpListenerAcquirer
from shared.icdr import ICDR
from tests.fixtures.ports import free_port
from tests.fixtures.recording_sink import WAIT, RecordingSink, running

FAST = {"reconnect_min_seconds": 0.05, "reconnect_max_seconds": 0.2, "connect_timeout_seconds": 2}


def source(kind: str, **options: object) -> Source:
    ctx = SourceContext(agent_id="agent-1", source_id=kind, timezone=ZoneInfo("Europe/London"))
    return registry.make_source(kind, ctx, {**FAST, **options})


def parse(src: Source, units: Sequence[bytes]) -> list[ParseResult]:
    now = datetime.now(UTC)
    results: list[ParseResult] = []
    for seq, data in enumerate(units, start=1):
        results += src.parser.feed(RawUnit(src.ctx.source_id, seq, now, data))
    return results


# --- MiVoice Office 250 SMDR socket ---------------------------------------------------------------

SMDR_TEXTS = [record.text for record in smdr_sim.generate_records(count=25, seed=2)]


@pytest.mark.parametrize("split_writes", [False, True])
def test_smdr_login_and_records(split_writes: bool) -> None:
    server = smdr_sim.Mivo250SmdrServer(SMDR_TEXTS, password="s3cret", split_writes=split_writes)
    with server.server:
        src = source("mivo250-smdr", host="127.0.0.1", port=server.server.port, password="s3cret")
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: len(s.units) >= len(SMDR_TEXTS))
    assert sink.units == [text.encode() + b"\r\n" for text in SMDR_TEXTS]
    assert server.logins == [("s3cret", True)]
    results = parse(src, sink.units)
    assert len(results) == len(SMDR_TEXTS) and all(isinstance(r, ICDR) for r in results)


def test_smdr_wrong_password_is_reported_clearly() -> None:
    server = smdr_sim.Mivo250SmdrServer(SMDR_TEXTS, password="s3cret")
    with server.server:
        src = source("mivo250-smdr", host="127.0.0.1", port=server.server.port, password="guess")
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: len(s.reports) >= 2)
    assert sink.units == []
    ok, message = sink.reports[0]
    assert not ok
    assert "login to 127.0.0.1" in message
    assert "closed the SMDR connection within 2 s of login" in message
    assert "check the SMDR socket password" in message
    assert "guess" not in message


def test_smdr_framing_error_keeps_the_bytes_and_logs_in_again() -> None:
    logins = []

    def pbx(conn: socket.socket, stop: threading.Event) -> None:
        header = recv_exactly(conn, 4, stop)
        assert header is not None
        logins.append(recv_exactly(conn, int.from_bytes(header, "little"), stop))
        conn.sendall(encode_frame(SMDR_TEXTS[0].encode() + b"\r\n") + b"\xff\xff\x00\x00garbage")
        stop.wait()

    with PbxServer(pbx) as server:
        src = source("mivo250-smdr", host="127.0.0.1", port=server.port)
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: len(logins) >= 2 and s.reported("framing error"))
    assert sink.units[:2] == [SMDR_TEXTS[0].encode() + b"\r\n", b"\xff\xff\x00\x00garbage"]
    assert any(
        "length prefix 65535" in message and "reconnecting" in message
        for _, message in sink.reports
    )
    assert logins[0] == b"\x84\x00"
    bad = parse(src, sink.units[1:2])
    assert isinstance(bad[0], Quarantined)


# --- System OAI -----------------------------------------------------------------------------------

OAI_CALLS = oai_sim.generate_calls(count=8, seed=3)
OAI_FRAMES = oai_sim.interleave(OAI_CALLS, noise_every=5)


def test_oai_login_monitors_keepalives_and_calls() -> None:
    server = oai_sim.Mivo250OaiServer(OAI_FRAMES, password="")
    with server.server:
        src = source(
            "mivo250-oai", host="127.0.0.1", port=server.server.port, keepalive_seconds=0.1
        )
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: len(s.units) >= len(OAI_FRAMES) + 2)
            deadline = time.monotonic() + WAIT
            while (
                sum(c.startswith("_NO,") for c in server.commands) < 3
                and time.monotonic() < deadline
            ):
                time.sleep(0.05)
    assert server.logins == [("", "callcollect", True)]
    assert server.commands[:2] == ["_MS,1,,8", "_MS,2,,4"]
    assert sum(c.startswith("_NO,") for c in server.commands) >= 3
    assert not any(unit.startswith(b"CF,NO,") for unit in sink.units)  # keep-alive replies
    events = [u for u in sink.units if not u.startswith(b"CF,")]
    assert events == [frame for _, frame in OAI_FRAMES]
    records = [r for r in parse(src, sink.units) if isinstance(r, ICDR)]
    assert sorted(r.call_id for r in records) == sorted(c.call_id for c in OAI_CALLS)


def test_oai_wrong_password_is_reported_clearly() -> None:
    server = oai_sim.Mivo250OaiServer(OAI_FRAMES, password="s3cret")
    with server.server:
        src = source("mivo250-oai", host="127.0.0.1", port=server.server.port, password="nope")
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: s.reported("closed the OAI connection within 2 s"))
    assert sink.units == []
    assert server.logins[0] == ("nope", "callcollect", False)


def test_oai_ports_exceeded_is_journalled_reported_and_retried() -> None:
    server = oai_sim.Mivo250OaiServer(OAI_FRAMES, max_clients=0)
    with server.server:
        src = source("mivo250-oai", host="127.0.0.1", port=server.server.port)
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(
                lambda s: s.reported("PE (ports exceeded)") and len(server.logins) >= 2
            )
    assert sink.units[0] == b"PE,,1\r\n"
    (result,) = parse(src, sink.units[:1])
    assert isinstance(result, Quarantined) and result.reason == "not_a_call_event"


def test_oai_dead_link_is_dropped_after_unanswered_keepalives() -> None:
    def silent_pbx(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(encode_frame(b"NM,,1,1"))  # accepted: say something, then never answer
        while not stop.is_set() and recv_exactly(conn, 1, stop) is not None:
            pass

    with PbxServer(silent_pbx) as server:
        src = source(
            "mivo250-oai", host="127.0.0.1", port=server.port, keepalive_seconds=0.05,
            keepalive_missed_limit=2,
        )  # fmt: skip
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: server.connections_accepted >= 2)
    assert sink.reported("PBX closed the connection")


# --- MCS IP SMDR, local and push mode -------------------------------------------------------------

LOCAL_CALLS = ipsmdr_sim.generate_calls(count=10, seed=7, pad=" ")
PUSH_CALLS = ipsmdr_sim.generate_calls(
    count=10, seed=8, pad=" ", start=datetime(2026, 5, 14, 10, 0)
)
LOCAL_LINES = ipsmdr_sim.interleave(LOCAL_CALLS)
PUSH_LINES = ipsmdr_sim.interleave(PUSH_CALLS)


def test_ipsmdr_local_mode() -> None:
    server = ipsmdr_sim.IpSmdrServer(LOCAL_LINES)
    with server.server:
        src = source("mcs-ipsmdr", host="127.0.0.1", port=server.server.port, pad_character=" ")
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert sink.wait(lambda s: len(s.units) >= len(LOCAL_LINES))
    assert sink.units == [line.encode() for line in LOCAL_LINES]
    records = [r for r in parse(src, sink.units) if isinstance(r, ICDR)]
    assert {r.call_id.split("/")[0] for r in records} == {c.call_id for c in LOCAL_CALLS}


def test_ipsmdr_push_and_local_mode_at_once() -> None:
    """MCS sends the local feed to the agent's client and pushes to the agent's listener; the
    pushed feed is sent twice (MCS reconnects at will), the repeat is recognised."""
    server = ipsmdr_sim.IpSmdrServer(LOCAL_LINES)
    with server.server:
        src = source(
            "mcs-ipsmdr", mode="both", host="127.0.0.1", port=server.server.port,
            listen_host="127.0.0.1", listen_port=free_port(), pad_character=" ",
        )  # fmt: skip
        assert isinstance(src.acquirer, AcquirerGroup)
        listener = src.acquirer.members[1]
        assert isinstance(listener, TcpListenerAcquirer)
        sink = RecordingSink()
        with running(src.acquirer, sink):
            assert listener.listening.wait(WAIT) and listener.bound_port
            pusher = ipsmdr_sim.IpSmdrPusher(PUSH_LINES, host="127.0.0.1", port=listener.bound_port)
            assert pusher.push(chunk=50) == len(PUSH_LINES)
            assert pusher.push() == len(PUSH_LINES)
            total = len(LOCAL_LINES) + 2 * len(PUSH_LINES)
            assert sink.wait(lambda s: len(s.units) >= total)
    assert sorted(sink.units) == sorted(line.encode() for line in LOCAL_LINES + PUSH_LINES * 2)
    assert sink.reported("PBX connected from 127.0.0.1")
    results = parse(src, sink.units)
    calls = {r.call_id.split("/")[0] for r in results if isinstance(r, ICDR)}
    assert calls == {c.call_id for c in LOCAL_CALLS + PUSH_CALLS}
    reasons = {r.reason for r in results if isinstance(r, Quarantined)}
    assert reasons <= {"repeated_event", "late_event"}
    assert sum(isinstance(r, Quarantined) for r in results) == len(PUSH_LINES)


def test_ipsmdr_push_from_another_address_is_refused() -> None:
    src = source(
        "mcs-ipsmdr", mode="push", listen_host="127.0.0.1", listen_port=free_port(),
        push_allowed_peers=["127.0.0.2"],
    )  # fmt: skip
    assert isinstance(src.acquirer, TcpListenerAcquirer)
    sink = RecordingSink()
    with running(src.acquirer, sink):
        assert src.acquirer.listening.wait(WAIT) and src.acquirer.bound_port
        pusher = ipsmdr_sim.IpSmdrPusher(
            PUSH_LINES[:3], host="127.0.0.1", port=src.acquirer.bound_port
        )
        with contextlib.suppress(OSError):  # the agent may close before every line is written
            pusher.push()
        assert sink.wait(lambda s: s.reported("not an allowed peer"))
    assert sink.units == []
