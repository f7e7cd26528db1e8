"""SIP and SDP parsing: compact and folded headers, SDP streams, SRTP offers, TCP framing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.capture.sip import TcpSipFramer, parse_sdp, parse_sip, tag, user_part
from tests.capture_factories import sdp, sip_request, sip_response


def test_invite_with_sdp() -> None:
    message = parse_sip(sip_request("INVITE", call_id="abc@x", body=sdp("198.18.0.1", 40000)))
    assert message is not None
    assert (message.method, message.call_id, message.cseq_method) == ("INVITE", "abc@x", "INVITE")
    assert message.has_sdp
    (media,) = parse_sdp(message.body)
    assert (media.address, media.port, media.payload_types) == ("198.18.0.1", 40000, [0, 8, 101])
    assert media.codec_name(101) == "TELEPHONE-EVENT"
    assert not media.encrypted


def test_response_compact_and_folded_headers() -> None:
    raw = (
        b"SIP/2.0 200 OK\r\ni: c1\r\nf: <sip:100@a>;tag=x\r\nt: <sip:200@b>\r\n ;tag=y\r\n"
        b"CSeq: 2 INVITE\r\nl: 0\r\n\r\n"
    )
    message = parse_sip(raw)
    assert message is not None
    assert (message.status, message.call_id, message.method) == (200, "c1", None)
    assert tag(message.header("to")) == "y"
    assert user_part(message.header("from")) == "100"


def test_session_level_connection_and_savp() -> None:
    body = b"v=0\r\nc=IN IP4 198.18.0.9\r\nm=audio 5004 RTP/SAVP 0\r\nm=video 6000 RTP/AVP 96\r\nc=IN IP4 198.18.0.77\r\n"
    (media,) = parse_sdp(body)
    assert (media.address, media.port, media.encrypted) == ("198.18.0.9", 5004, True)
    assert parse_sdp(sdp("198.18.0.1", 1, crypto=True))[0].encrypted


def test_user_parts() -> None:
    assert user_part('"Bob" <sip:+4930123@gw;user=phone>;tag=1') == "+4930123"
    assert user_part("tel:015551234;phone-context=x") == "015551234"
    assert user_part("sip:pbx.example.com") == ""


def test_not_sip() -> None:
    assert parse_sip(b"GET / HTTP/1.1\r\n\r\n") is None
    assert parse_sip(b"\x80\x00garbage") is None
    assert parse_sip(b"") is None


def test_tcp_framer_splits_and_joins() -> None:
    first = sip_request("INVITE", call_id="t1", body=sdp("198.18.0.1", 40000))
    second = sip_response(200, call_id="t1", body=sdp("198.18.0.2", 40002))
    stream = first + b"\r\n" + second
    framer = TcpSipFramer()
    got = []
    for i in range(0, len(stream), 37):
        got += framer.feed(stream[i : i + 37])
    assert [(m.method, m.status) for m in got] == [("INVITE", None), (None, 200)]
    assert parse_sdp(got[1].body)[0].port == 40002


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_sip_parse_never_crashes(data: bytes) -> None:
    message = parse_sip(data)
    if message is not None:
        parse_sdp(message.body)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_framer_and_sdp_never_crash(chunks: list[bytes]) -> None:
    framer = TcpSipFramer()
    for chunk in chunks:
        framer.feed(b"INVITE sip:a SIP/2.0\r\nContent-Length: 5\r\n\r\n" + chunk)
        parse_sdp(chunk)


@given(st.text(max_size=300))
def test_sip_text_never_crashes(text: str) -> None:
    parse_sip(("INVITE sip:x SIP/2.0\r\n" + text).encode())
    user_part(text)
    tag(text)
