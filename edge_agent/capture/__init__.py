"""Call recording from a mirrored switch port (formats.md §6; docs/capture.md).

packets.py    Ethernet/VLAN/IPv4/IPv6 frames to UDP/TCP payloads
rtp.py        RTP header parsing; one SSRC's packets reassembled into placed PCM
g711.py       µ-law and A-law decoding, tables built from the G.711 formulas
sip.py        SIP messages and SDP bodies, tolerant; TCP framing by Content-Length
srtp.py       is a stream encrypted (SDP or payload evidence)?
calls.py      datagrams grouped into calls (SIP dialogs, or address pair and time)
rules.py      record all / include / exclude, internal calls, compliance pause
wav.py        stereo WAV: caller left, called right, aligned on capture time
recorder.py   a finished call to WAV + SIP + metadata JSON in the capture folder
"""
