"""Several acquirers feeding one sink at once (IP SMDR local and push mode together).

Contract: ``AcquirerGroup.run`` starts each member in its own thread with a shared stop event
and returns once ``stop`` is set and every member has returned. If a member raises (a failing
journal must stop the source), the others are stopped too and the first exception is raised
again from ``run``. The sink must be thread-safe (the pipeline's ``deliver`` takes a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from edge_agent.sources.base import Acquirer, UnitSink

WATCH_SECONDS = 1.0  # how soon a failed member stops the others; idle agents wake this often
JOIN_SECONDS = 30.0


class AcquirerGroup:
    """Runs ``members`` side by side until stopped."""

    def __init__(self, members: Sequence[Acquirer], *, names: Sequence[str] = ()) -> None:
        self.members = list(members)
        self._names = list(names) or [f"acquirer-{i}" for i in range(len(self.members))]
        self._errors: list[BaseException] = []

    def run(self, sink: UnitSink, stop: threading.Event) -> None:
        inner = threading.Event()
        threads = [
            threading.Thread(target=self._member, args=(m, sink, inner), name=name, daemon=True)
            for m, name in zip(self.members, self._names, strict=True)
        ]
        for thread in threads:
            thread.start()
        try:
            while not stop.wait(WATCH_SECONDS):
                if self._errors or not any(t.is_alive() for t in threads):
                    break
        finally:
            inner.set()
            for thread in threads:
                thread.join(JOIN_SECONDS)
        if self._errors:
            raise self._errors[0]

    def _member(self, member: Acquirer, sink: UnitSink, stop: threading.Event) -> None:
        try:
            member.run(sink, stop)
        except BaseException as exc:  # handed to run(), which raises it in the caller's thread
            self._errors.append(exc)
