"""Is a media stream encrypted (SRTP) and therefore not recordable?

Two kinds of evidence (formats.md §6.7, §6.8):

- signalling: the SDP offered ``RTP/SAVP``/``RTP/SAVPF`` or carried ``a=crypto`` lines;
- the packets themselves, when there is no signalling: G.711 payloads 4 or 10 bytes longer than
  a whole number of 10 ms frames (the SRTP authentication tag), or payload bytes close to
  uniformly distributed (G.711 speech and tones cluster on a subset of codes; ciphertext does
  not).

An encrypted stream is reported ``encrypted_not_recordable`` and never written as noise.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from edge_agent.capture.rtp import PT_PCMA, PT_PCMU

AUTH_TAG_LENGTHS = (4, 10)
G711_FRAME = 80  # bytes per 10 ms at 8 kHz
MIN_BYTES_FOR_ENTROPY = 2048
ENTROPY_THRESHOLD = 7.6  # bits per byte; ciphertext over 2 kB measures ~7.9, G.711 audio < 7.3
MIN_PACKETS = 5
ENCRYPTED = "encrypted_not_recordable"


def entropy_bits(data: bytes) -> float:
    """Shannon entropy of ``data`` in bits per byte (0 for empty input)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in Counter(data).values())


@dataclass
class SrtpDetector:
    """Collects a sample of one stream's payloads and judges whether it is encrypted."""

    sample: bytearray = field(default_factory=bytearray)
    packets: int = 0
    tagged: int = 0

    def observe(self, payload_type: int, payload: bytes) -> None:
        self.packets += 1
        if payload_type in (PT_PCMU, PT_PCMA) and len(payload) % G711_FRAME in AUTH_TAG_LENGTHS:
            self.tagged += 1
        if len(self.sample) < 4 * MIN_BYTES_FOR_ENTROPY:
            self.sample.extend(payload)

    @property
    def encrypted(self) -> bool:
        if self.packets < MIN_PACKETS:
            return False
        if self.tagged * 2 > self.packets:
            return True
        return (
            len(self.sample) >= MIN_BYTES_FOR_ENTROPY
            and entropy_bits(bytes(self.sample)) >= ENTROPY_THRESHOLD
        )
