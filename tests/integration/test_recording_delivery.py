"""Recordings linked to spooled ICDRs, sealed in their own batches, uploaded after the records
over real SFTP (sshd on loopback), in their own folder and bandwidth share."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_agent.capture.calls import CallTracker
from edge_agent.capture.recorder import RecorderSettings, write_recording
from edge_agent.capture.rules import Mode, RecordingRules
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.recordings import OutboxSettings, RecordingOutbox
from edge_agent.delivery.uplink import Uplink, UplinkSession, UploadOutcome
from edge_agent.spool import Spool
from shared.icdr import ICDR
from tests.factories import gen_outgoing_call
from tests.fixtures.sshd import SshdServer
from tests.integration.test_uplink import uplink_settings
from tests.unit.test_capture_calls import T0, signalled_call

pytestmark = pytest.mark.sshd
CALL_START = datetime.fromtimestamp(T0, UTC)


def matching_icdr(**overrides: Any) -> ICDR:
    """The PBX's record of the call signalled_call() makes (answered at T0+1, ended T0+3.1)."""
    values = {
        "start": CALL_START, "answer": CALL_START + timedelta(seconds=1.5),
        "end": CALL_START + timedelta(seconds=3.5), "talk_seconds": 2,
        "calling": "2001", "called": "015551234", "trunk": "T1",
    }  # fmt: skip
    return gen_outgoing_call(7, **(values | overrides))


def record_call(state: Path) -> Path:
    tracker = CallTracker()
    signalled_call(tracker)
    (finished,) = tracker.drain()
    path = write_recording(finished.call, RecorderSettings(state / "capture" / "recordings"))
    assert path is not None
    return path


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool.open(tmp_path / "state", quota_bytes=64 * 1024 * 1024) as opened:
        yield opened


def outbox_for(spool: Spool, state: Path, **changes: Any) -> RecordingOutbox:
    settings = OutboxSettings(state_dir=state, agent_id="agent-1", tenant="demo", **changes)
    return RecordingOutbox(
        settings,
        recent=lambda since: [ICDR.from_json(b) for b in spool.bodies_spooled_since(since)],
    )


def test_linked_sealed_and_sent_after_the_records(
    tmp_path: Path, spool: Spool, sshd: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    recording = record_call(state)
    spool.store("pbx-1", [(1, matching_icdr())], [], cursor=1, now=CALL_START)
    outbox = outbox_for(spool, state, kbps=64)
    assert outbox.link_pending(CALL_START + timedelta(minutes=1)) == 1
    meta = json.loads(recording.read_text())
    assert meta["record_id"] == matching_icdr().record_id and meta["trunk"] == "T1"

    (sealed,) = outbox.seal_ready(CALL_START + timedelta(minutes=1))
    assert sealed.name == "agent-1-rec-0000000001.ccr"
    assert list(recording.parent.iterdir()) == []  # the batch holds them now
    with tarfile.open(fileobj=io.BytesIO(sealed.read_bytes())) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert names[0] == "manifest.json" and f"{meta['recording_id']}.wav" in names
    assert (manifest["kind"], manifest["sequence"]) == ("call_recordings", 1)
    assert manifest["recordings"][0]["record_id"] == meta["record_id"]

    calls: list[tuple[str, int | None]] = []
    original = UplinkSession.put_file

    def spy(self: UplinkSession, local: Path, name: str, **kwargs: Any) -> UploadOutcome:
        calls.append((name, kwargs.get("kbps")))
        return original(self, local, name, **kwargs)

    monkeypatch.setattr(UplinkSession, "put_file", spy)
    batcher = Batcher(spool, state_dir=state, agent_id="agent-1", tenant="demo")
    batcher.seal_ready(CALL_START, force=True)
    uplink = Uplink(uplink_settings(sshd), spool=spool, batcher=batcher, clock=lambda: CALL_START,
                    after_records=outbox.upload)  # fmt: skip
    uplink.deliver()
    assert calls == [("agent-1-0000000001.ccb", None), (sealed.name, 64)]
    landed = sshd.landing / "recordings" / sealed.name
    assert landed.read_bytes() == (state / "recordings-sent" / sealed.name).read_bytes()
    assert list((state / "recordings-outbox").glob("*.ccr")) == []


def test_a_recording_the_rules_exclude_once_linked_never_leaves(
    tmp_path: Path, spool: Spool
) -> None:
    state = tmp_path / "state"
    recording = record_call(state)
    spool.store("pbx-1", [(1, matching_icdr(trunk="T9"))], [], cursor=1, now=CALL_START)
    rules = RecordingRules(mode=Mode.EXCLUDE, trunks=frozenset({"T9"}))
    outbox = outbox_for(spool, state, rules=rules)
    assert outbox.link_pending(CALL_START + timedelta(minutes=1)) == 1
    assert not recording.exists() and list(recording.parent.iterdir()) == []
    assert outbox.seal_ready(CALL_START, force=True) == []


def test_unlinked_waits_then_goes_for_the_data_centre_to_link(tmp_path: Path, spool: Spool) -> None:
    state = tmp_path / "state"
    record_call(state)
    outbox = outbox_for(spool, state, link_wait=timedelta(minutes=5))
    assert outbox.link_pending(CALL_START + timedelta(minutes=1)) == 0
    assert outbox.seal_ready(CALL_START + timedelta(minutes=1)) == []
    (sealed,) = outbox.seal_ready(CALL_START + timedelta(minutes=6))
    with tarfile.open(fileobj=io.BytesIO(sealed.read_bytes())) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    (meta,) = manifest["recordings"]
    assert meta["record_id"] is None and meta["caller"] == "2001" and meta["answer_time"]
    assert outbox_for(spool, state).seal_ready(CALL_START, force=True) == []
    record_call(state)
    (second,) = outbox.seal_ready(CALL_START, force=True)
    assert second.name.endswith("0000000002.ccr")
