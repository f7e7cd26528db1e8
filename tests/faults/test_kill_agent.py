"""kill -9 of the agent at random moments, 20 times, while the PBX streams calls and batches flow.

Every kill lands somewhere in the agent's work: starting up, journalling, spooling, sealing,
uploading, reading receipts. After the last restart the agent must deliver everything it took
in, once: the store holds exactly the calls the agent journalled, with the record ids the
journal numbering gives, and the batch numbers have no gap.

A MiVB SMDR PBX gets no acknowledgement (formats.md §2): bytes in the agent's socket buffer, or
read but not yet journalled, when it dies are gone, and the PBX's next line into the dead
connection is lost too. The test measures that loss exactly (simulator lines missing from the
journal) and requires the lines lost at each kill to be one run of lines sent on the
connection the kill ended (or into it before the agent reconnected): the tail the agent had not
journalled yet, however far behind a loaded machine had let it fall. A line lost anywhere else,
or a gap inside what one connection delivered, fails the test.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.faults.site import (
    ExpectedCall,
    Site,
    assert_exactly_once,
    expected_call,
    stored_count,
)

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

KILLS = 20
SEED = 20260302
RUN_MIN_SECONDS = 0.3  # the agent needs ~0.7 s to start: some kills land during start-up
RUN_MAX_SECONDS = 2.0
SAMPLE_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    sent: int
    connections: int


class Sampler:
    """Records the simulator's sent count and connections every ``SAMPLE_SECONDS``."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        sim = self.site.simulator
        while not self._stop.is_set():
            self.samples.append(Sample(time.monotonic(), sim.sent, sim.connections))
            self._stop.wait(SAMPLE_SECONDS)

    def window(self, killed_at: float) -> range:
        """Indices of the lines that may have been lost at a kill at ``killed_at``.

        From the first line sent on the connection the kill ended (the agent may have been
        any distance behind it: a loaded machine) to the last one sent before the agent
        connected again. ``lost_in_one_run`` then requires the lost ones to be one run.
        """
        at_kill = [s for s in self.samples if s.at <= killed_at]
        connections = at_kill[-1].connections if at_kill else 0
        opened = [s for s in self.samples if s.connections >= connections]
        low = opened[0].sent if opened and connections else 0
        reconnected = [s for s in self.samples if s.at > killed_at and s.connections > connections]
        high = reconnected[0].sent if reconnected else self.samples[-1].sent
        return range(low, high)


def lost_in_one_run(lost: list[int], windows: list[range]) -> list[str]:
    """What is wrong with the lost lines: outside every kill's window, or not one run in one."""
    problems = []
    outside = [index for index in lost if not any(index in window for window in windows)]
    if outside:
        problems.append(f"{len(outside)} lines lost away from any kill: {outside[:10]}")
    for window in windows:
        inside = sorted(index for index in lost if index in window)
        if inside and inside != list(range(inside[0], inside[-1] + 1)):
            problems.append(f"lines lost in more than one run at one kill: {inside[:20]}")
    return problems


def kill_repeatedly(site: Site, rng: random.Random, sampler: Sampler) -> list[float]:
    """Start and ``kill -9`` the agent ``KILLS`` times at random moments; the kill times."""
    killed_at: list[float] = []
    for _ in range(KILLS):
        site.agent.start()
        time.sleep(rng.uniform(RUN_MIN_SECONDS, RUN_MAX_SECONDS))
        assert site.agent.running, site.diagnosis("the agent died on its own before the kill")
        killed_at.append(time.monotonic())
        site.agent.kill9()
    return killed_at


def test_kill_9_agent_at_random_moments(make_site: Callable[..., Site]) -> None:
    site = make_site(calls=1600, rate_per_second=60.0, batch_max_records=40)
    site.start_ingest()
    began = time.monotonic()
    with Sampler(site) as sampler:
        killed_at = kill_repeatedly(site, random.Random(SEED), sampler)
        site.agent.start()
        site.wait_delivered(timeout=90)
    site.agent.stop()
    elapsed = time.monotonic() - began

    by_line = {call.line: (index, call) for index, call in enumerate(site.calls)}
    journalled = site.journalled()
    strangers = [line for _, line in journalled if line not in by_line]
    assert not strangers, f"the journal holds lines the PBX never sent: {strangers[:3]}"
    expected: list[ExpectedCall] = [
        expected_call(by_line[line][1], seq) for seq, line in journalled
    ]
    result = assert_exactly_once(site.engine, expected)

    taken = {line for _, line in journalled}
    lost = [index for index, call in enumerate(site.calls) if call.line not in taken]
    problems = lost_in_one_run(lost, [sampler.window(at) for at in killed_at])
    assert not problems, site.diagnosis(
        "the agent lost records it should have kept: " + "; ".join(problems)
    )
    sequences = site.batch_sequences()
    assert sequences == list(range(1, len(sequences) + 1)), (
        f"batch numbers have gaps at the data centre: {sequences}"
    )
    replays = site.agent_log.read_text().count("replayed")
    print(
        f"\nkill -9 x{KILLS}: {result.calls} calls journalled and stored once, 0 lost by the "
        f"agent, 0 duplicated; {len(lost)} lines lost on the PBX link at the kills (TCP SMDR "
        f"has no acknowledgement); {len(sequences)} batches, no gap; {replays} journal replays; "
        f"{elapsed:.1f} s"
    )
    assert stored_count(site.engine) == len(journalled)
