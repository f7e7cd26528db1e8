"""Agent footprint: RSS and CPU of a real `edge-agent run` with three simulated PBXs.

    .venv/bin/python benchmarks/agent_footprint.py [--quick] [--rate CALLS_PER_S]

Starts an OpenSSH landing area on loopback (the uplink), three PBX simulators on loopback
(MiVoice Business SMDR, MCS IP SMDR in local mode, MiVoice Office 250 SMDR with its login) and
`edge-agent run` in a subprocess with a config written to a temporary directory. Each simulator
holds its calls back until the feed starts, so the agent first sits connected and idle.

Figures, read from /proc/PID/status (VmRSS, VmHWM) and /proc/PID/stat (utime + stime):

- baseline: a bare ``python -c 'import time; time.sleep(...)'``, the floor any Python process pays;
- core: the same agent with no source configured (what the agent costs before sources start);
- idle: the agent with its three sources connected, after a warm-up, no calls;
- feed: ``--rate`` calls per second (100 by default) spread over the three sources.

Targets (issue #11): RSS <= 60 MB, idle CPU <= 0.5 % of one core. Each figure is printed with its
ratio to the baseline. At the end every fed call must have landed (counted from the batches).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_agent.simulators import mcs_ipsmdr, mivb_smdr, mivo250_smdr
from edge_agent.simulators.pbx_server import PbxServer, recv_exactly
from edge_agent.sources.mivo250_socket.framing import LENGTH_BYTES, encode_frame
from shared.envelope import open_batch
from tests.fixtures.sshd import SshdServer, make_sshd

TICKS = os.sysconf("SC_CLK_TCK")
RSS_TARGET_MB = 60.0
IDLE_CPU_TARGET_PERCENT = 0.5


@dataclass
class GatedPbx:
    """A PBX on loopback that accepts the agent, then sends nothing until ``feed`` is set."""

    kind: str
    items: Sequence[bytes]  # one call each, already framed for the wire
    calls_per_item: int = 1
    login: bool = False  # MiVO250 SMDR: read the login packet first
    rate: float = 1.0  # items per second once fed
    connected: threading.Event = field(default_factory=threading.Event)
    feed: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def __post_init__(self) -> None:
        self.server = PbxServer(self._handle)

    def _handle(self, conn: socket.socket, stop: threading.Event) -> None:
        if self.login:
            header = recv_exactly(conn, LENGTH_BYTES, stop)
            if header is None or recv_exactly(conn, int.from_bytes(header, "little"), stop) is None:
                return
        self.connected.set()
        while not self.feed.wait(0.5):
            if stop.is_set():
                return
        started = time.monotonic()
        for index, item in enumerate(self.items):
            delay = started + index / self.rate - time.monotonic()
            if delay > 0 and stop.wait(delay):
                return
            conn.sendall(item)
            self.sent += 1
        stop.wait()  # a PBX keeps the connection open


def make_pbxs(calls_each: int, rate_each: float) -> list[GatedPbx]:
    smdr = mivb_smdr.generate_calls(count=calls_each, seed=1, start=datetime(2026, 3, 2, 9, 0))
    mcs = mcs_ipsmdr.generate_calls(count=calls_each, seed=2)
    records = mivo250_smdr.generate_records(count=calls_each, seed=3)
    return [
        GatedPbx("mivb-smdr", [c.line.encode("latin-1") + b"\r\n" for c in smdr], rate=rate_each),
        GatedPbx(
            "mcs-ipsmdr",
            [b"".join(line.encode("latin-1") + b"\r\n" for line in c.lines) for c in mcs],
            rate=rate_each,
        ),
        GatedPbx(
            "mivo250-smdr",
            [encode_frame(r.text.encode("latin-1") + b"\r\n") for r in records],
            login=True,
            rate=rate_each,
        ),
    ]


def write_config(root: Path, sshd: SshdServer, pbxs: Sequence[GatedPbx], name: str) -> Path:
    lines = [
        "[agent]", f'id = "footprint-{name}"', 'tenant = "demo"', 'timezone = "Europe/London"',
        f'state_dir = "{root / name}"',
        "[spool]", "batch_max_records = 5000", "batch_max_age_seconds = 10",
        "[uplink]", 'host = "127.0.0.1"', f"port = {sshd.port}", f'username = "{sshd.username}"',
        f'private_key = "{sshd.client_key}"', f'known_hosts = "{sshd.known_hosts}"',
        "interval_seconds = 10",
        "[delivery]", 'protection = "none"',
    ]  # fmt: skip
    for pbx in pbxs:
        lines += ["[[sources]]", f'id = "{pbx.kind}"', f'kind = "{pbx.kind}"',
                  'host = "127.0.0.1"', f"port = {pbx.server.port}"]  # fmt: skip
    path = root / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class Sample:
    rss_kb: int
    hwm_kb: int
    cpu_ticks: int
    switches: int  # voluntary context switches over all threads: how often the agent wakes
    threads: int
    at: float


def sample(pid: int) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split()[1] for line in status if line.startswith("Vm")}
    stat = Path(f"/proc/{pid}/stat").read_text()
    after_name = stat[stat.rindex(")") + 2 :].split()
    ticks = int(after_name[11]) + int(after_name[12])  # utime, stime (fields 14, 15)
    switches, threads = 0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                switches += int(line.split()[1])
                threads += 1
    return Sample(
        int(fields["VmRSS"]), int(fields["VmHWM"]), ticks, switches, threads, time.monotonic()
    )


def wakeups(first: Sample, last: Sample) -> float:
    return (last.switches - first.switches) / (last.at - first.at)


def cpu_percent(first: Sample, last: Sample) -> float:
    return 100.0 * (last.cpu_ticks - first.cpu_ticks) / TICKS / (last.at - first.at)


def agent_command(config: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "edge-agent"), "run", "-c", str(config)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def baseline_rss(settle: float) -> int:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as bare:
        time.sleep(settle)
        rss = sample(bare.pid).rss_kb
        bare.kill()
    return rss


def core_rss(root: Path, sshd: SshdServer, settle: float) -> int:
    """The agent with no source: its own cost before any driver starts."""
    log = (root / "core.log").open("wb")
    with subprocess.Popen(agent_command(write_config(root, sshd, [], "core")), stderr=log) as agent:
        time.sleep(settle)
        rss = sample(agent.pid).rss_kb
        agent.terminate()
        agent.wait(20)
    return rss


def landed_records(sshd: SshdServer) -> int:
    return sum(
        len(open_batch(p.read_bytes()).records) for p in (sshd.landing / "incoming").glob("*.ccb")
    )


def mb(kb: int) -> str:
    return f"{kb / 1024:6.1f} MB"


def run(quick: bool, rate: float) -> int:
    warm, idle_window, feed_seconds = (5.0, 10.0, 10.0) if quick else (10.0, 30.0, 30.0)
    calls_each = int(rate * feed_seconds / 3)
    with tempfile.TemporaryDirectory(prefix="agent-footprint-") as tmp:
        root = Path(tmp)
        sshd = make_sshd(root / "sshd")
        sshd.start()
        pbxs = make_pbxs(calls_each, rate / 3)
        for pbx in pbxs:
            pbx.server.start()
        try:
            bare = baseline_rss(2.0)
            core = core_rss(root, sshd, warm)
            return measure(root, sshd, pbxs, bare, core, warm, idle_window, rate)
        finally:
            for pbx in pbxs:
                pbx.server.stop()
            sshd.stop()


def measure(
    root: Path, sshd: SshdServer, pbxs: Sequence[GatedPbx], bare: int, core: int,
    warm: float, idle_window: float, rate: float,
) -> int:  # fmt: skip
    log = (root / "agent.log").open("wb")
    with subprocess.Popen(
        agent_command(write_config(root, sshd, pbxs, "agent")), stderr=log
    ) as agent:
        try:
            wait_until(lambda: all(p.connected.is_set() for p in pbxs), 30, "three sources")
            time.sleep(warm)
            idle_start = sample(agent.pid)
            time.sleep(idle_window)
            idle_end = sample(agent.pid)
            for pbx in pbxs:
                pbx.feed.set()
            feed_start = sample(agent.pid)
            fed_calls = sum(len(p.items) for p in pbxs)
            wait_until(lambda: sum(p.sent for p in pbxs) >= sum(len(p.items) for p in pbxs),
                       idle_window * 10, "the feed")  # fmt: skip
            feed_end = sample(agent.pid)
            wait_until(lambda: landed_records(sshd) >= fed_calls * 0.9, 120, "the batches")
        finally:
            agent.terminate()
            agent.wait(30)
    report(bare, core, idle_start, idle_end, feed_start, feed_end, rate)
    print(f"delivered          {landed_records(sshd)} ICDRs from {fed_calls} fed calls")
    over = idle_end.rss_kb / 1024 > RSS_TARGET_MB or (
        cpu_percent(idle_start, idle_end) > IDLE_CPU_TARGET_PERCENT
    )
    return 1 if over else 0


def report(
    bare: int, core: int, idle_start: Sample, idle_end: Sample, feed_start: Sample,
    feed_end: Sample, rate: float,
) -> None:  # fmt: skip
    print(f"baseline (bare python)  RSS {mb(bare)}")
    print(f"agent, no sources       RSS {mb(core)}   {core / bare:4.1f}x baseline")
    print(f"agent, 3 sources idle   RSS {mb(idle_end.rss_kb)}   {idle_end.rss_kb / bare:4.1f}x "
          f"baseline   CPU {cpu_percent(idle_start, idle_end):5.2f} % of one core "
          f"over {idle_end.at - idle_start.at:.0f} s, {wakeups(idle_start, idle_end):.1f} "
          f"wake-ups/s, {idle_end.threads} threads")  # fmt: skip
    print(f"agent, {rate:.0f} calls/s      RSS {mb(feed_end.rss_kb)}   peak {mb(feed_end.hwm_kb)}"
          f"   {feed_end.hwm_kb / bare:4.1f}x baseline   CPU {cpu_percent(feed_start, feed_end):5.2f} "
          f"% over {feed_end.at - feed_start.at:.0f} s")  # fmt: skip
    print(f"targets                 RSS <= {RSS_TARGET_MB:.0f} MB, idle CPU <= "
          f"{IDLE_CPU_TARGET_PERCENT} %")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter warm-up and windows")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second in the feed")
    args = parser.parse_args()
    sys.exit(run(args.quick, args.rate))


if __name__ == "__main__":
    main()
