"""Call recording capacity: N concurrent G.711 calls through a mirror port, zero loss wanted.

    .venv/bin/python benchmarks/capture.py [--quick] [--calls 50,100,200,400] [--seconds 6]

Needs root (network namespaces). For each N, a "phone" and a "gateway" namespace each send N
RTP streams (one per call and direction, 50 packets/s, 172-byte G.711 packets) for SECONDS;
the gateway's interface is mirrored (tc mirred) to the agent's namespace, where the capture
loop (``python -m edge_agent.capture``: TPACKET_V3 ring, BPF filter, reassembly, WAV writing)
and, as the baseline, ``tcpdump`` listen on the same interface with the same port filter.

Printed per N: packets sent, packets tcpdump captured, packets the agent placed in recordings,
their ratio (agent / tcpdump), the kernel's ring drops, the agent's CPU (% of one core while
traffic flowed) and peak RSS. "Zero loss" means ratio 1.0, no ring drops and no gaps in any
recording. The largest zero-loss N is printed last. The senders are Python too and share the
two cores: their own lag is printed (late ticks), so a sender limit is not taken for ours.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.capture_factories import FRAME, tone
from tests.netns_lab import GATEWAY_IP, PHONE_IP, SPAN_IF, Lab, lab, python

ROOT = Path(__file__).resolve().parents[1]

PHONE_BASE = 20000
GATEWAY_BASE = 30000
PORTS = f"{PHONE_BASE}-{GATEWAY_BASE + 2 * 1000}"
TICK = 0.02


def send(role: str, calls: int, seconds: float) -> None:
    """One side's N streams on an absolute 20 ms schedule (runs inside a namespace)."""
    local, peer = (PHONE_IP, GATEWAY_IP) if role == "phone" else (GATEWAY_IP, PHONE_IP)
    mine, theirs = (PHONE_BASE, GATEWAY_BASE) if role == "phone" else (GATEWAY_BASE, PHONE_BASE)
    audio = tone(440 if role == "phone" else 1000, 1.0)
    sockets = []
    for i in range(calls):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((local, mine + 2 * i))
        sockets.append((sock, (peer, theirs + 2 * i)))  # unconnected: ICMP errors are ignored
    header = struct.Struct("!BBHII")
    ticks, late, sent = round(seconds / TICK), 0, 0
    start = time.monotonic() + 0.2
    for n in range(ticks):
        delay = start + n * TICK - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -TICK:
            late += 1
        at = (n % 50) * FRAME
        payload = audio[at : at + FRAME]
        for i, (sock, target) in enumerate(sockets):
            ssrc = (i << 1) | (role == "phone")
            sock.sendto(header.pack(0x80, 0, n & 0xFFFF, n * FRAME, ssrc) + payload, target)
            sent += 1
    print(json.dumps({"role": role, "sent": sent, "late_ticks": late}))


@dataclass
class Run:
    calls: int
    sent: int
    tcpdump: int
    tcpdump_drops: int
    agent: int
    gaps: int
    drops: int
    cpu_percent: float
    rss_mb: float
    late_ticks: int

    @property
    def ratio(self) -> float:
        return self.agent / self.tcpdump if self.tcpdump else 0.0

    @property
    def zero_loss(self) -> bool:
        """Every packet sent was placed in a recording; tcpdump's own drops do not count."""
        return self.agent == self.sent and self.drops == 0 and self.gaps == 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def wait_for_file(path: Path, budget: float = 30.0) -> None:
    deadline = time.monotonic() + budget
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"capture did not start: no {path}")
        time.sleep(0.1)


def tcpdump_count(stderr: str, what: str) -> int:
    found = re.search(rf"(\d+) packets? {what}", stderr)
    return int(found.group(1)) if found else 0


def one_run(net: Lab, calls: int, seconds: float, work: Path) -> Run:
    capture_dir = work / f"capture-{calls}"
    capture = net.spawn(net.agent, python(), "-m", "edge_agent.capture", SPAN_IF,
                        str(capture_dir), PORTS, "--idle-timeout", "3", cwd=str(ROOT))  # fmt: skip
    wait_for_file(capture_dir / "status.json")
    dump = net.spawn(net.agent, "tcpdump", "-i", SPAN_IF, "-n", "-q", "-B", "65536", "-w",
                     "/dev/null", "udp", "and", "portrange", PORTS.replace("-", "-"))  # fmt: skip
    time.sleep(1.0)  # tcpdump attaches its filter
    cpu_before = cpu_seconds(capture.pid)
    senders = [
        net.spawn(
            ns,
            python(),
            str(Path(__file__).resolve()),
            "--send",
            role,
            str(calls),
            str(seconds),
            cwd=str(ROOT),
        )
        for ns, role in ((net.phone, "phone"), (net.gateway, "gateway"))
    ]
    outputs = [s.communicate(timeout=seconds * 10 + 60) for s in senders]
    for (_out, err), sender in zip(outputs, senders, strict=True):
        if sender.returncode != 0:
            raise SystemExit(f"a sender failed: {err.strip()}")
    reports = [json.loads(out) for out, _err in outputs]
    traffic_time = seconds + 0.2
    time.sleep(0.5)
    cpu = cpu_seconds(capture.pid) - cpu_before
    rss = peak_rss_mb(capture.pid)
    dump.send_signal(signal.SIGINT)
    dump_err = dump.communicate(timeout=30)[1]
    capture.terminate()
    capture.communicate(timeout=120)
    status = json.loads((capture_dir / "status.json").read_text())
    placed = gaps = 0
    for meta_path in (capture_dir / "recordings").glob("*.json"):
        meta = json.loads(meta_path.read_text())
        for side in meta["sides"].values():
            placed += side.get("packets", 0)
            gaps += side.get("lost", 0) + side.get("late", 0)
    return Run(calls, sum(r["sent"] for r in reports), tcpdump_count(dump_err, "captured"),
               tcpdump_count(dump_err, "dropped by kernel"), placed, gaps,
               status["kernel_drops"], 100 * cpu / traffic_time, rss,
               sum(r["late_ticks"] for r in reports))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--send", nargs=3, metavar=("ROLE", "CALLS", "SECONDS"))
    args = parser.parse_args()
    if args.send:
        send(args.send[0], int(args.send[1]), float(args.send[2]))
        return
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, raw sockets)")
    steps = [20, 50] if args.quick else [int(n) for n in args.calls.split(",")]
    seconds = 3.0 if args.quick else args.seconds
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average before: {load} on {os.cpu_count()} cores")
    print(f"{'calls':>6} {'pkt/s':>7} {'sent':>8} {'tcpdump':>8} {'agent':>8} {'ratio':>7} "
          f"{'drops':>6} {'gaps':>5} {'cpu%':>6} {'rssMB':>6} {'late':>5} {'tcpdump drops':>13}")  # fmt: skip
    best = 0
    with tempfile.TemporaryDirectory() as tmp, lab() as net:
        for calls in steps:
            run = one_run(net, calls, seconds, Path(tmp))
            print(f"{run.calls:>6} {run.calls * 100:>7} {run.sent:>8} {run.tcpdump:>8} "
                  f"{run.agent:>8} {run.ratio:>7.4f} {run.drops:>6} {run.gaps:>5} "
                  f"{run.cpu_percent:>6.1f} {run.rss_mb:>6.1f} {run.late_ticks:>5} "
                  f"{run.tcpdump_drops:>13}", flush=True)  # fmt: skip
            if run.zero_loss:
                best = max(best, calls)
    print(f"largest N with zero loss: {best} calls ({best * 100} packets/s)")
    print(f"load average after: {Path('/proc/loadavg').read_text().split()[0]}")


if __name__ == "__main__":
    main()
