"""The enrolment request line and the landing bundle: round trips, and nothing but
``ValidationError`` for anything else (property tests: both are parsed from pasted text)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import keys
from shared.enrolment import (
    REQUEST_TAG,
    EnrolmentRequest,
    LandingBundle,
    parse_bundle,
    parse_request,
)
from shared.errors import ValidationError

IDENTITY = keys.new_agent_identity("edge-1")
DC = keys.new_datacentre_keys("dc.example")
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
REQUEST = EnrolmentRequest("acme", "edge-1", IDENTITY.certificate, SSH)
BUNDLE = LandingBundle(
    tenant="acme", agent_id="edge-1", account="cc_edge-1_abcdef", host="landing.example.net",
    port=2222, host_key=SSH, datacentre_certificates=DC.certificates.to_pem().decode(),
)  # fmt: skip


def test_a_request_round_trips_on_one_line() -> None:
    line = REQUEST.to_line()
    assert "\n" not in line and line.startswith(REQUEST_TAG)
    assert f"fingerprint={keys.fingerprint(IDENTITY.certificate)}" in line
    assert parse_request(line) == REQUEST


def test_an_altered_fingerprint_is_refused() -> None:
    other = keys.fingerprint(keys.new_agent_identity("edge-1").certificate)
    line = REQUEST.to_line().replace(REQUEST.fingerprint, other)
    with pytest.raises(ValidationError, match="does not match the certificate"):
        parse_request(line)


def test_a_bundle_round_trips_and_pins_the_host_key() -> None:
    assert parse_bundle(BUNDLE.to_json()) == BUNDLE
    assert BUNDLE.known_hosts_line() == f"[landing.example.net]:2222 {SSH}"
    assert BUNDLE.host_key_fingerprint.startswith("SHA256:")
    document = json.loads(BUNDLE.to_json())
    document["host_key_fingerprint"] = "SHA256:forged"
    with pytest.raises(ValidationError, match="does not match host_key"):
        parse_bundle(json.dumps(document))


@given(st.text(max_size=400))
def test_any_request_text_parses_or_names_the_problem(text: str) -> None:
    with contextlib.suppress(ValidationError):
        parsed = parse_request(text)
        assert text.split()[0] == REQUEST_TAG and parsed.fingerprint in text


@given(st.lists(st.sampled_from(REQUEST.to_line().split()), max_size=8).map(" ".join))
def test_shuffled_request_words_parse_or_name_the_problem(text: str) -> None:
    with contextlib.suppress(ValidationError):
        assert parse_request(text) == REQUEST  # any order of the words, or refused


@given(st.dictionaries(st.sampled_from([*json.loads(BUNDLE.to_json()), "x"]),
                       st.none() | st.integers() | st.text(max_size=20), max_size=12))  # fmt: skip
def test_any_bundle_document_parses_or_names_the_problem(document: dict[str, object]) -> None:
    merged = {**json.loads(BUNDLE.to_json()), **document}
    with contextlib.suppress(ValidationError):
        parsed = parse_bundle(json.dumps(merged))
        assert {name: getattr(parsed, name) for name in LandingBundle.__dataclass_fields__} == {
            name: merged[name] for name in LandingBundle.__dataclass_fields__
        }
