"""Exponential back-off with jitter: how long to wait before trying a failed thing again.

- ``Backoff`` is the policy: ``min``, ``min·factor``, ... capped at ``max``, then up to
  ``jitter`` of that removed at random, so a fleet of agents that lost the same landing host (or
  sources that lost the same PBX) does not retry in step. The uplink uses the default half
  (each wait lies in [base/2, base]); the TCP sources take a fifth.
- ``Retries`` counts consecutive failures against a policy; a success resets it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential back-off: min, min*factor, ... capped at max, minus up to ``jitter`` of it."""

    min_seconds: float = 1.0
    max_seconds: float = 60.0
    factor: float = 2.0
    jitter: float = 0.5  # the fraction removed at random

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before retry number ``attempt`` (0 for the first retry)."""
        base = min(self.max_seconds, self.min_seconds * self.factor ** min(attempt, 64))
        return base * (1.0 - self.jitter * rng.random())


class Retries:
    """Consecutive failures spaced by a ``Backoff``: ``next_delay()`` per failure, ``reset()``."""

    def __init__(self, backoff: Backoff, *, rng: random.Random | None = None) -> None:
        self.backoff = backoff
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Count a failure and return how long to wait before the next attempt."""
        self.failures += 1
        return self.backoff.delay(self.failures - 1, self._rng)

    def reset(self) -> None:
        self.failures = 0
