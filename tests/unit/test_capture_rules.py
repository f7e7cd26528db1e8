"""Recording rules: modes, list kinds, internal calls; the pause board."""

from __future__ import annotations

import pytest

from edge_agent.capture.rules import ALL, CallFacts, Mode, PauseBoard, RecordingRules
from shared.errors import ConfigError

EXT = CallFacts(extensions=frozenset({"2001"}), external_numbers=frozenset({"015551234"}))
INTERNAL = CallFacts(extensions=frozenset({"2001", "2002"}))
TRUNKED = CallFacts(extensions=frozenset({"2003"}), trunk="T7", account_code="99")


@pytest.mark.parametrize(
    ("rules", "facts", "recorded"),
    [
        (RecordingRules(), EXT, True),
        (RecordingRules(record_internal=False), INTERNAL, False),
        (RecordingRules(record_internal=False), EXT, True),
        (RecordingRules(mode=Mode.INCLUDE, extensions=frozenset({"2001"})), EXT, True),
        (RecordingRules(mode=Mode.INCLUDE, extensions=frozenset({"2001"})), TRUNKED, False),
        (RecordingRules(mode=Mode.INCLUDE, trunks=frozenset({"T7"})), TRUNKED, True),
        (RecordingRules(mode=Mode.INCLUDE, account_codes=frozenset({"99"})), TRUNKED, True),
        (RecordingRules(mode=Mode.EXCLUDE, external_numbers=frozenset({"015551234"})), EXT, False),
        (
            RecordingRules(mode=Mode.EXCLUDE, external_numbers=frozenset({"015551234"})),
            TRUNKED,
            True,
        ),
        (RecordingRules(mode=Mode.INCLUDE, trunks=frozenset({"T7"})), CallFacts(), False),
    ],
)
def test_decide(rules: RecordingRules, facts: CallFacts, recorded: bool) -> None:
    assert rules.decide(facts) is recorded


def test_from_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"capture\.rules\.mode"):
        RecordingRules.from_config(mode="some", entries={}, record_internal=True)
    rules = RecordingRules.from_config(
        mode="include", entries={"trunks": ["T1"]}, record_internal=False
    )
    assert rules.trunks == {"T1"} and rules.mode is Mode.INCLUDE


def test_pause_board() -> None:
    board = PauseBoard()
    board.pause("2001")
    assert board.is_paused(frozenset({"2001", "x"})) and not board.is_paused(frozenset({"2002"}))
    board.pause()
    assert board.is_paused(frozenset()) and board.snapshot() == {ALL, "2001"}
    board.resume()
    board.resume("2001")
    assert not board.is_paused(frozenset({"2001"}))
