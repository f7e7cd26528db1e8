"""Calls from datagrams to recordings on disk: SIP-signalled, unsignalled, SRTP, rules, pause."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.capture.calls import Call, CallTracker
from edge_agent.capture.packets import UDP, Datagram
from edge_agent.capture.recorder import RecorderSettings, write_recording
from edge_agent.capture.rules import Mode, PauseBoard, RecordingRules
from tests.capture_factories import (
    FRAME,
    dominant_frequency,
    rtp,
    sdp,
    sip_request,
    sip_response,
    tone,
)

PHONE = ("198.18.0.1", 40000)
GATEWAY = ("198.18.0.2", 40002)
T0 = 1_800_000_000.0


def sip_datagram(payload: bytes, *, to_gateway: bool) -> Datagram:
    a, b = ("198.18.0.1", 5060), ("198.18.0.2", 5060)
    src, dst = (a, b) if to_gateway else (b, a)
    return Datagram(UDP, src[0], src[1], dst[0], dst[1], payload)


def media(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> Datagram:
    return Datagram(UDP, src[0], src[1], dst[0], dst[1], payload)


def feed_tones(
    tracker: CallTracker, seconds: float, *, start: float, payload_fn: object = None
) -> None:
    caller_audio, called_audio = tone(440, seconds), tone(1000, seconds)
    for i in range(round(seconds * 50)):
        at = start + i * 0.02
        chunk = slice(i * FRAME, (i + 1) * FRAME)
        tracker.feed(
            media(PHONE, GATEWAY, rtp(seq=i, ts=i * FRAME, ssrc=1, payload=caller_audio[chunk])), at
        )
        tracker.feed(
            media(
                GATEWAY,
                PHONE,
                rtp(seq=9 + i, ts=7 + i * FRAME, ssrc=2, payload=called_audio[chunk]),
            ),
            at + 0.001,
        )


def signalled_call(tracker: CallTracker, *, seconds: float = 2.0, crypto: bool = False) -> None:
    profile = "RTP/SAVP" if crypto else "RTP/AVP"
    tracker.feed(
        sip_datagram(
            sip_request("INVITE", call_id="c-1", body=sdp(*PHONE, profile=profile)), to_gateway=True
        ),
        T0,
    )
    tracker.feed(
        sip_datagram(
            sip_response(200, call_id="c-1", body=sdp(*GATEWAY, profile=profile)), to_gateway=False
        ),
        T0 + 1,
    )
    feed_tones(tracker, seconds, start=T0 + 1.1)
    tracker.feed(
        sip_datagram(sip_request("BYE", call_id="c-1", to_tag="b2", cseq=2), to_gateway=True),
        T0 + 1.1 + seconds,
    )


def read_wav(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return frames[0::2], frames[1::2], wav.getnframes() / 8000


def test_signalled_call_is_recorded_caller_left(tmp_path: Path) -> None:
    tracker = CallTracker()
    signalled_call(tracker)
    assert tracker.expire(T0 + 3.5) == []  # BYE seen, still lingering for the jitter window
    (finished,) = tracker.expire(T0 + 5)
    path = write_recording(finished.call, RecorderSettings(tmp_path))
    assert path is not None
    meta = json.loads(path.read_text())
    assert (meta["sip_call_id"], meta["caller"], meta["called"]) == ("c-1", "2001", "015551234")
    assert meta["sides"]["caller"]["status"] == "recorded"
    assert meta["invite_time"].startswith("2027-01-15T08:00:00")
    left, right, duration = read_wav(tmp_path / meta["wav"])
    assert abs(duration - 2.0) < 0.01 and meta["duration_seconds"] == round(duration, 3)
    assert abs(dominant_frequency(left.tobytes()) - 440) < 5
    assert abs(dominant_frequency(right.tobytes()) - 1000) < 5
    assert "INVITE sip:015551234" in (tmp_path / meta["sip"]).read_text()
    assert sorted(os.listdir(tmp_path)) == sorted([path.name, meta["wav"], meta["sip"]])


def test_srtp_by_sdp_is_reported_not_written(tmp_path: Path) -> None:
    tracker = CallTracker()
    signalled_call(tracker, crypto=True)
    (finished,) = tracker.drain()
    path = write_recording(finished.call, RecorderSettings(tmp_path))
    assert path is not None
    meta = json.loads(path.read_text())
    assert meta["wav"] is None
    assert {s["status"] for s in meta["sides"].values()} == {"encrypted_not_recordable"}


def test_srtp_by_payload_without_signalling(tmp_path: Path) -> None:
    tracker = CallTracker()
    rng = np.random.default_rng(7)
    for i in range(50):
        tracker.feed(
            media(PHONE, GATEWAY, rtp(seq=i, ts=i * FRAME, payload=rng.bytes(170))), T0 + i * 0.02
        )
    (finished,) = tracker.drain()
    path = write_recording(finished.call, RecorderSettings(tmp_path))
    assert path is not None
    meta = json.loads(path.read_text())
    assert meta["wav"] is None and meta["signalled"] is False
    assert meta["sides"]["caller"]["status"] == "encrypted_not_recordable"
    assert meta["sides"]["called"]["status"] == "not_seen"


def test_unsignalled_media_grouped_by_address_pair_and_idle_time(tmp_path: Path) -> None:
    tracker = CallTracker(idle_timeout=5)
    feed_tones(tracker, 1.0, start=T0)
    assert len(tracker.calls) == 1
    assert tracker.expire(T0 + 3) == []
    (finished,) = tracker.expire(T0 + 7)
    path = write_recording(
        finished.call, RecorderSettings(tmp_path, devices={"198.18.0.1": "2001"})
    )
    assert path is not None
    meta = json.loads(path.read_text())
    assert meta["sip_call_id"] is None and meta["extensions"] == ["2001"]
    left, right, _ = read_wav(tmp_path / meta["wav"])
    assert abs(dominant_frequency(left.tobytes()) - 440) < 5
    assert abs(dominant_frequency(right.tobytes()) - 1000) < 5


def test_exclude_rule_skips_the_call(tmp_path: Path) -> None:
    tracker = CallTracker()
    signalled_call(tracker, seconds=0.5)
    (finished,) = tracker.drain()
    rules = RecordingRules(mode=Mode.EXCLUDE, extensions=frozenset({"2001"}))
    assert write_recording(finished.call, RecorderSettings(tmp_path, rules=rules)) is None
    assert list(tmp_path.iterdir()) == []


def test_compliance_pause_drops_media_at_intake(tmp_path: Path) -> None:
    board = PauseBoard()
    window = (T0 + 1.6, T0 + 2.1)  # the card payment

    def paused(call: Call, at: float) -> bool:  # the local API toggles the board meanwhile
        if window[0] <= at < window[1]:
            board.pause(call.caller)
        else:
            board.resume(call.caller)
        return board.is_paused(frozenset({call.caller, call.called}))

    tracker = CallTracker(paused=paused)
    signalled_call(tracker, seconds=2.0)
    (finished,) = tracker.drain()
    path = write_recording(finished.call, RecorderSettings(tmp_path))
    assert path is not None
    meta = json.loads(path.read_text())
    assert meta["sides"]["caller"]["paused_packets"] == 25
    left, right, duration = read_wav(tmp_path / meta["wav"])
    assert abs(duration - 2.0) < 0.01
    quiet = slice(int(0.52 * 8000), int(0.98 * 8000))  # seconds into the media
    assert not left[quiet].any() and not right[quiet].any()
    assert left[: int(0.45 * 8000)].any() and right[int(1.05 * 8000) :].any()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([5060, 40000, 40002]),
            st.sampled_from([5060, 40000, 40002]),
            st.one_of(
                st.binary(max_size=300),
                st.builds(
                    lambda s, t, p: rtp(seq=s, ts=t, payload=p),
                    st.integers(0, 65535),
                    st.integers(0, 2**32 - 1),
                    st.binary(max_size=200),
                ),
                st.sampled_from(
                    [
                        sip_request("INVITE", call_id="h", body=sdp(*PHONE)),
                        sip_response(200, call_id="h", body=sdp(*GATEWAY)),
                        sip_request("BYE", call_id="h"),
                    ]
                ),
            ),
        ),
        max_size=30,
    )
)
def test_tracker_and_recorder_never_crash(
    tmp_path: Path, traffic: list[tuple[int, int, bytes]]
) -> None:
    tracker = CallTracker()
    for n, (sport, dport, payload) in enumerate(traffic):
        tracker.feed(
            Datagram(UDP, "198.18.0.1", sport, "198.18.0.2", dport, payload), T0 + n * 0.02
        )
    for finished in tracker.drain():
        path = write_recording(finished.call, RecorderSettings(tmp_path))
        assert path is not None and json.loads(path.read_text())["kind"] == "call_recording"


def test_a_long_ringing_call_is_not_cut_before_it_is_answered(tmp_path: Path) -> None:
    tracker = CallTracker(idle_timeout=5)
    tracker.feed(
        sip_datagram(sip_request("INVITE", call_id="r", body=sdp(*PHONE)), to_gateway=True), T0
    )
    assert tracker.expire(T0 + 60) == []  # 60 s of ringing: still the same call
    tracker.feed(
        sip_datagram(sip_response(200, call_id="r", body=sdp(*GATEWAY)), to_gateway=False), T0 + 60
    )
    tracker.feed(media(PHONE, GATEWAY, rtp(seq=1, ts=160)), T0 + 60.1)
    assert tracker.expire(T0 + 90) == []  # answered, then quiet (hold): kept
    (finished,) = tracker.expire(T0 + 60.1 + 121)  # but a lost BYE does not keep it for ever
    assert finished.call.key == "r" and finished.call.answer_time == T0 + 60
    finished.call.close()


def test_an_authentication_challenge_does_not_end_the_call(tmp_path: Path) -> None:
    tracker = CallTracker()
    invite = sip_request("INVITE", call_id="auth", body=sdp(*PHONE))
    tracker.feed(sip_datagram(invite, to_gateway=True), T0)
    tracker.feed(sip_datagram(sip_response(407, call_id="auth"), to_gateway=False), T0 + 0.1)
    tracker.feed(sip_datagram(invite.replace(b"CSeq: 1", b"CSeq: 2"), to_gateway=True), T0 + 0.2)
    tracker.feed(
        sip_datagram(
            sip_response(200, call_id="auth", body=sdp(*GATEWAY), cseq=2), to_gateway=False
        ),
        T0 + 1,
    )
    assert tracker.expire(T0 + 30) == []
    call = tracker.calls["auth"]
    assert (call.answer_time, call.end_time) == (T0 + 1, None)
    tracker.feed(sip_datagram(sip_response(486, call_id="auth", cseq=3), to_gateway=False), T0 + 2)
    assert call.end_time is None  # a failed re-INVITE does not end an answered call
    for finished in tracker.drain():
        finished.call.close()
