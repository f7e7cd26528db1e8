"""A phone and a gateway for the namespace tests: SIP over UDP, then G.711 tones both ways.

Run inside a namespace (``ip netns exec NS python -m tests.netns_voip ROLE ...``):

- ``gateway LOCAL_IP``: answers one INVITE with 200 OK + SDP, sends a 1000 Hz tone to the
  phone's media address until BYE, answers BYE, prints what it sent as JSON and exits;
- ``phone LOCAL_IP GATEWAY_IP SECONDS``: INVITE with SDP, ACK, a 440 Hz tone for SECONDS, BYE;
  prints what it sent as JSON.

Packets are paced on an absolute 20 ms schedule; RTP timestamps advance 160 per packet.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time

from tests.capture_factories import FRAME, rtp, sdp, sip_request, sip_response, tone

SIP_PORT = 5060
PHONE_MEDIA = 40000
GATEWAY_MEDIA = 40002
CALL_ID = "netns-call-1@198.18.10.1"
CALLER = "2001"
CALLED = "015551234"
INVITE_PADDING = 40  # ~2.4 kB of SDP: the INVITE is sent as IPv4 fragments over a 1500 MTU


def stream(sock: socket.socket, target: tuple[str, int], frequency: float, stop: threading.Event,
           ssrc: int, seconds: float | None = None) -> int:  # fmt: skip
    """Send a tone until ``stop`` (or ``seconds``); returns the packets sent."""
    audio = tone(frequency, 1.0)  # one second, looped (whole periods for 440 and 1000 Hz)
    start, sent = time.monotonic(), 0
    while not stop.is_set() and (seconds is None or sent < seconds * 50):
        at = (sent % 50) * FRAME
        sock.sendto(
            rtp(seq=sent, ts=sent * FRAME, ssrc=ssrc, payload=audio[at : at + FRAME]), target
        )
        sent += 1
        delay = start + sent * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return sent


def gateway(local: str) -> None:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((local, SIP_PORT))
    sip.settimeout(60)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((local, GATEWAY_MEDIA))
    invite, phone = sip.recvfrom(65535)
    phone_media = (phone[0], PHONE_MEDIA)
    sip.sendto(sip_response(200, call_id=CALL_ID, body=sdp(local, GATEWAY_MEDIA)), phone)
    stop = threading.Event()
    result: dict[str, int] = {}
    sender = threading.Thread(
        target=lambda: result.update(sent=stream(media, phone_media, 1000, stop, 0xBBBB))
    )
    sender.start()
    while True:  # ACK, then BYE
        message, peer = sip.recvfrom(65535)
        if message.startswith(b"BYE"):
            stop.set()
            sip.sendto(sip_response(200, call_id=CALL_ID, method="BYE", cseq=2), peer)
            break
    sender.join()
    print(json.dumps({"role": "gateway", "packets": result["sent"], "invite_bytes": len(invite)}))


def phone(local: str, gateway_ip: str, seconds: float) -> None:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind((local, SIP_PORT))
    sip.settimeout(30)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((local, PHONE_MEDIA))
    target = (gateway_ip, SIP_PORT)
    invite_at = time.time()
    sip.sendto(
        sip_request(
            "INVITE",
            call_id=CALL_ID,
            caller=CALLER,
            called=CALLED,
            body=sdp(local, PHONE_MEDIA, padding=INVITE_PADDING),
        ),
        target,
    )
    sip.recvfrom(65535)  # 200 OK
    sip.sendto(
        sip_request("ACK", call_id=CALL_ID, caller=CALLER, called=CALLED, to_tag="b2"), target
    )
    sent = stream(media, (gateway_ip, GATEWAY_MEDIA), 440, threading.Event(), 0xAAAA, seconds)
    bye_at = time.time()
    sip.sendto(
        sip_request("BYE", call_id=CALL_ID, caller=CALLER, called=CALLED, to_tag="b2", cseq=2),
        target,
    )
    sip.recvfrom(65535)  # 200 OK to BYE
    print(json.dumps({"role": "phone", "packets": sent, "invite_at": invite_at, "bye_at": bye_at}))


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "gateway":
        gateway(args[0])
    else:
        phone(args[0], args[1], float(args[2]))
