"""The capture process: ring → frames → calls → recordings, apart from the rest of the agent.

``CaptureProcess(settings).start()`` runs ``run_capture`` in its own process (multiprocessing,
spawn), so a slow uplink, a database poll or the GIL of the main agent never makes the ring
overflow. It owns everything capture needs: the link (pyroute2), the packet ring with its BPF
filter, the call tracker, the recorder, and the compliance pause API (the pause board lives
where the media is dropped). It talks to the agent only through files under
``<state_dir>/capture/``::

    recordings/         finished recordings (recorder.py), picked up by delivery
    status.json         counters rewritten every second: kernel packets and drops, link, calls

``stop()`` sets an event; the loop drains open calls to recordings and exits.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path

from edge_agent.capture.api import serve_pause_api
from edge_agent.capture.bpf import PortRange, build_filter
from edge_agent.capture.calls import Call, CallTracker, FinishedCall
from edge_agent.capture.link import link_state, prepare_link
from edge_agent.capture.packets import FrameDecoder
from edge_agent.capture.recorder import RecorderSettings, write_recording
from edge_agent.capture.ring import PacketRing, RingGeometry
from edge_agent.capture.rules import PauseBoard

log = logging.getLogger(__name__)

STATUS_EVERY = 1.0
POLL_TIMEOUT = 0.2
STATUS_FILE = "status.json"
DROP_WINDOW = 60.0
RECORDINGS_DIR = "recordings"
SPILL_DIR = "open"  # unlinked files holding open calls' audio


@dataclass(frozen=True)
class CaptureSettings:
    """Everything the capture process needs; picklable, so it crosses the process boundary."""

    interface: str
    directory: Path  # <state_dir>/capture
    rtp_ports: tuple[PortRange, ...]
    sip_ports: tuple[int, ...] = (5060,)
    recorder: RecorderSettings | None = None
    jitter_window: float = 0.2
    idle_timeout: float = 10.0
    promiscuous: bool = True
    geometry: RingGeometry = field(default_factory=RingGeometry)
    api_host: str = "127.0.0.1"
    api_port: int | None = None  # None: no pause API

    @property
    def recordings(self) -> Path:
        return self.directory / RECORDINGS_DIR

    def recorder_settings(self) -> RecorderSettings:
        return self.recorder or RecorderSettings(self.recordings)


@dataclass
class CaptureCounters:
    """What status.json says; the agent's health reads it (health.py)."""

    interface: str = ""
    link_up: bool = False
    kernel_packets: int = 0
    kernel_drops: int = 0
    recent_drops: int = 0  # drops in the last DROP_WINDOW seconds: health's "dropping now"
    frames: int = 0
    not_rtp: int = 0
    open_calls: int = 0
    recordings: int = 0
    skipped_by_rules: int = 0
    write_errors: int = 0
    paused: list[str] = field(default_factory=list)
    error: str = ""
    updated_at: float = 0.0
    pid: int = 0


def write_status(directory: Path, counters: CaptureCounters) -> None:
    """Replace status.json (rename without fsync: it is rewritten every second)."""
    temp = directory / f".{STATUS_FILE}.{os.getpid()}"
    temp.write_text(json.dumps(asdict(counters)))
    temp.replace(directory / STATUS_FILE)


def _parties(call: Call, devices: dict[str, str]) -> frozenset[str]:
    found = {call.caller, call.called} | {
        devices[a] for a, _p in call.endpoints.values() if a in devices
    }
    return frozenset(found - {""})


class _Loop:
    """One run of the capture loop (state shared by its small steps)."""

    def __init__(self, settings: CaptureSettings, stop: Event) -> None:
        self.settings = settings
        self.stop = stop
        self.recorder = settings.recorder_settings()
        self.board = PauseBoard()
        devices = self.recorder.devices
        self.tracker = CallTracker(
            sip_ports=settings.sip_ports,
            idle_timeout=settings.idle_timeout,
            jitter_window=settings.jitter_window,
            paused=lambda call, _at: self.board.is_paused(_parties(call, devices)),
            spill_dir=settings.directory / SPILL_DIR,
        )
        self.counters = CaptureCounters(interface=settings.interface, pid=os.getpid())
        self._drop_history: list[tuple[float, int]] = []
        # one writer: WAV files are written in call order, and one at a time (each reads its
        # call's audio back into memory)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-writer")

    def run(self) -> None:
        settings = self.settings
        settings.recordings.mkdir(parents=True, exist_ok=True)
        (settings.directory / SPILL_DIR).mkdir(exist_ok=True)
        self.counters.link_up = prepare_link(
            settings.interface, promiscuous=settings.promiscuous
        ).up
        program = build_filter(list(settings.rtp_ports), list(settings.sip_ports))
        ring = PacketRing.open(settings.interface, program=program, geometry=settings.geometry)
        api = None
        if settings.api_port is not None:
            api = serve_pause_api(self.board, host=settings.api_host, port=settings.api_port)
        try:
            self._loop(ring)
        finally:
            self._finish(self.tracker.drain())
            self._writer.shutdown(wait=True)  # every recording on disk before the last status
            self._status(ring)
            ring.close()
            if api is not None:
                api.shutdown()

    def _loop(self, ring: PacketRing) -> None:
        decoder = FrameDecoder()
        next_status = 0.0
        while not self.stop.is_set():
            for frame, at in ring.frames(timeout=POLL_TIMEOUT):
                self.counters.frames += 1
                datagram = decoder.decode(frame, at)
                if datagram is not None:
                    self.tracker.feed(datagram, at)
            now = time.time()
            if now >= next_status:
                self._finish(self.tracker.expire(now))
                self._status(ring)
                next_status = now + STATUS_EVERY

    def _finish(self, finished: list[FinishedCall]) -> None:
        """Hand ended calls to the writer thread: reading the ring never waits for a WAV."""
        for item in finished:
            self._writer.submit(self._write, item)

    def _write(self, item: FinishedCall) -> None:
        try:
            written = write_recording(item.call, self.recorder)
        except Exception:  # one recording that cannot be written must not stop the others
            log.exception("capture: cannot write the recording of %s", item.call.key)
            self.counters.write_errors += 1
            return
        if written is None:
            self.counters.skipped_by_rules += 1
        else:
            self.counters.recordings += 1

    def _status(self, ring: PacketRing) -> None:
        stats = ring.statistics()
        counters = self.counters
        counters.kernel_packets, counters.kernel_drops = stats.packets, stats.drops
        now = time.time()
        self._drop_history = [(t, d) for t, d in self._drop_history if now - t <= DROP_WINDOW]
        self._drop_history.append((now, stats.drops))
        counters.recent_drops = stats.drops - self._drop_history[0][1]
        counters.not_rtp = self.tracker.not_rtp
        counters.open_calls = len(self.tracker.calls)
        counters.paused = sorted(self.board.snapshot())
        counters.link_up = link_state(self.settings.interface).up
        counters.updated_at = now
        write_status(self.settings.directory, counters)


def run_capture(settings: CaptureSettings, stop: Event) -> None:
    """The capture process's entry point; an expected failure is written to status.json."""
    loop = _Loop(settings, stop)
    try:
        loop.run()
    except Exception as exc:  # reported through status.json: the agent shows it in health
        loop.counters.error = str(exc)
        loop.counters.updated_at = time.time()
        settings.directory.mkdir(parents=True, exist_ok=True)
        write_status(settings.directory, loop.counters)
        log.error("capture stopped: %s", exc)


class CaptureProcess:
    """Starts and stops the capture process."""

    def __init__(self, settings: CaptureSettings) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self.process = context.Process(
            target=run_capture, args=(settings, self._stop), name="capture", daemon=True
        )

    def start(self) -> None:
        self.process.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        self._stop.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
