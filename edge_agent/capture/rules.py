"""Which calls are recorded, and the compliance pause.

- ``RecordingRules``: record all, only an include list, or all but an exclude list; list entries
  match an extension, an external number, a trunk or an account code; internal calls (both parties
  extensions) on or off. ``decide(facts)`` says whether a call is kept. A fact that is not known
  yet (trunk or account code before the ICDR is linked) cannot match, so an include list that
  names only trunks keeps nothing until the recording is linked; ``decide`` is applied again then.
- ``PauseBoard``: compliance pause/resume (a card payment is never recorded). A pause names an
  extension, or none for every call; while it is on, the capture drops that call's media at intake.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import ConfigError

ALL = "all"


class Mode(StrEnum):
    ALL = "all"
    INCLUDE = "include"
    EXCLUDE = "exclude"


@dataclass(frozen=True)
class CallFacts:
    """What is known of a call when its recording is judged."""

    extensions: frozenset[str] = frozenset()
    external_numbers: frozenset[str] = frozenset()
    trunk: str = ""
    account_code: str = ""

    @property
    def internal(self) -> bool:
        return bool(self.extensions) and not self.external_numbers and not self.trunk


@dataclass(frozen=True)
class RecordingRules:
    """The recording policy: mode, the list it uses, and whether internal calls are recorded."""

    mode: Mode = Mode.ALL
    extensions: frozenset[str] = frozenset()
    external_numbers: frozenset[str] = frozenset()
    trunks: frozenset[str] = frozenset()
    account_codes: frozenset[str] = frozenset()
    record_internal: bool = True

    @classmethod
    def from_config(
        cls, *, mode: str, entries: dict[str, list[str]], record_internal: bool
    ) -> RecordingRules:
        try:
            chosen = Mode(mode)
        except ValueError:
            raise ConfigError(
                "capture.rules.mode", f"'{mode}' is not a mode", "use all, include or exclude"
            ) from None
        return cls(
            mode=chosen,
            extensions=frozenset(entries.get("extensions", [])),
            external_numbers=frozenset(entries.get("external_numbers", [])),
            trunks=frozenset(entries.get("trunks", [])),
            account_codes=frozenset(entries.get("account_codes", [])),
            record_internal=record_internal,
        )

    def listed(self, facts: CallFacts) -> bool:
        return bool(
            facts.extensions & self.extensions
            or facts.external_numbers & self.external_numbers
            or (facts.trunk and facts.trunk in self.trunks)
            or (facts.account_code and facts.account_code in self.account_codes)
        )

    def decide(self, facts: CallFacts) -> bool:
        """True if a call with these facts is recorded."""
        if facts.internal and not self.record_internal:
            return False
        if self.mode is Mode.INCLUDE:
            return self.listed(facts)
        if self.mode is Mode.EXCLUDE:
            return not self.listed(facts)
        return True


class PauseBoard:
    """Compliance pauses in force, by extension (``ALL`` pauses every call).

    Writers (the local API's threads) take a lock and replace the frozen set; the capture loop
    reads the current set without locking, once per packet.
    """

    def __init__(self) -> None:
        self._paused: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def pause(self, extension: str = ALL) -> None:
        with self._lock:
            self._paused = self._paused | {extension or ALL}

    def resume(self, extension: str = ALL) -> None:
        with self._lock:
            self._paused = self._paused - {extension or ALL}

    def snapshot(self) -> frozenset[str]:
        return self._paused

    def is_paused(self, parties: frozenset[str]) -> bool:
        paused = self._paused
        return bool(paused) and (ALL in paused or bool(parties & paused))
