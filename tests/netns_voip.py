"""A phone and a gateway for the namespace tests: SIP over UDP (or TCP), then G.711 tones.

Run inside a namespace (``ip netns exec NS python -m tests.netns_voip ROLE ...``):

- ``gateway LOCAL_IP [tcp]``: answers one INVITE with 200 OK + SDP, sends a 1000 Hz tone to the
  phone's media address until BYE, answers BYE, prints what it sent as JSON and exits;
- ``phone LOCAL_IP GATEWAY_IP SECONDS [tcp]``: INVITE with SDP, ACK, a 440 Hz tone for SECONDS, BYE;
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


class SipChannel:
    """One SIP transport between the phone and the gateway: UDP datagrams or one TCP stream."""

    def __init__(self, sock: socket.socket, peer: tuple[str, int] | None, *, tcp: bool) -> None:
        self.sock, self.peer, self.tcp = sock, peer, tcp
        self._buffer = b""

    def send(self, message: bytes) -> None:
        if self.tcp:
            self.sock.sendall(message)
        else:
            assert self.peer is not None
            self.sock.sendto(message, self.peer)

    def receive(self) -> bytes:
        if not self.tcp:
            message, self.peer = self.sock.recvfrom(65535)
            return message
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._read()
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))  # fmt: skip
        while len(rest) < length:
            rest += self._read()
        self._buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def _read(self) -> bytes:
        chunk = self.sock.recv(65535)
        if not chunk:
            raise ConnectionError("the SIP peer closed the connection")
        return chunk


def gateway_channel(local: str, tcp: bool) -> SipChannel:
    if not tcp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((local, SIP_PORT))
        sock.settimeout(60)
        return SipChannel(sock, None, tcp=False)
    listener = socket.socket()
    listener.bind((local, SIP_PORT))
    listener.listen()
    listener.settimeout(60)
    connection, peer = listener.accept()
    listener.close()
    connection.settimeout(60)
    return SipChannel(connection, peer, tcp=True)


def phone_channel(local: str, gateway_ip: str, tcp: bool) -> SipChannel:
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind((local, SIP_PORT))
    sock.settimeout(30)
    if tcp:
        sock.connect((gateway_ip, SIP_PORT))
    return SipChannel(sock, (gateway_ip, SIP_PORT), tcp=tcp)


def gateway(local: str, tcp: bool) -> None:
    sip = gateway_channel(local, tcp)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((local, GATEWAY_MEDIA))
    invite = sip.receive()
    assert sip.peer is not None
    phone_media = (sip.peer[0], PHONE_MEDIA)
    sip.send(sip_response(200, call_id=CALL_ID, body=sdp(local, GATEWAY_MEDIA)))
    stop = threading.Event()
    result: dict[str, int] = {}
    sender = threading.Thread(
        target=lambda: result.update(sent=stream(media, phone_media, 1000, stop, 0xBBBB))
    )
    sender.start()
    while True:  # ACK, then BYE
        message = sip.receive()
        if message.startswith(b"BYE"):
            stop.set()
            sip.send(sip_response(200, call_id=CALL_ID, method="BYE", cseq=2))
            break
    sender.join()
    print(json.dumps({"role": "gateway", "packets": result["sent"], "invite_bytes": len(invite)}))


def phone(local: str, gateway_ip: str, seconds: float, tcp: bool) -> None:
    sip = phone_channel(local, gateway_ip, tcp)
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((local, PHONE_MEDIA))
    invite_at = time.time()
    sip.send(sip_request("INVITE", call_id=CALL_ID, caller=CALLER, called=CALLED,
                         body=sdp(local, PHONE_MEDIA, padding=INVITE_PADDING)))  # fmt: skip
    sip.receive()  # 200 OK
    sip.send(sip_request("ACK", call_id=CALL_ID, caller=CALLER, called=CALLED, to_tag="b2"))
    sent = stream(media, (gateway_ip, GATEWAY_MEDIA), 440, threading.Event(), 0xAAAA, seconds)
    bye_at = time.time()
    sip.send(sip_request("BYE", call_id=CALL_ID, caller=CALLER, called=CALLED, to_tag="b2", cseq=2))
    sip.receive()  # 200 OK to BYE
    print(json.dumps({"role": "phone", "packets": sent, "invite_at": invite_at, "bye_at": bye_at}))


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    over_tcp = args[-1] == "tcp"
    if role == "gateway":
        gateway(args[0], over_tcp)
    else:
        phone(args[0], args[1], float(args[2]), over_tcp)
