"""Ingest of CMS batches on both store backends: agent-sealed files in, signed receipts out.

The agent side is the real one (``Batcher`` with ``shared.cms.protect``, ``Uplink`` to the real
sshd, ``ReceiptInbox``); the data centre is ``datacenter.ingest.worker.ingest_once`` with its keys
loaded from the settings' paths, as the worker does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.accounts.agents import enroll_agent
from datacenter.health.missing_batches import MissingRange, missing_batches
from datacenter.ingest import receipts as ingest_receipts
from datacenter.ingest.worker import IngestReport, ingest_once
from datacenter.settings import Settings, StoreSettings, settings_for_data_dir
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import calls, landed_files
from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.receipts import ReceiptInbox, ReceiptStatus
from edge_agent.delivery.retention import resend
from edge_agent.delivery.uplink import Uplink
from edge_agent.spool import BatchStatus, Spool
from shared import cms, keys
from shared.envelope import batch_file_name, seal
from shared.errors import ConfigError
from shared.icdr import ICDR
from shared.receipts import Receipt, verify_receipt
from tests.factories import gen_outgoing_call
from tests.fixtures.sshd import SshdServer
from tests.fixtures.store import gen_tenant

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "demo"  # the sshd fixture's landing folder is <root>/demo
AGENT = "edge-1"
DC = keys.new_datacentre_keys("dc.test")
OTHER_DC = keys.new_datacentre_keys("other-dc.test")
SIGNER = keys.new_agent_identity(AGENT)
IMPOSTOR = keys.new_agent_identity(AGENT)  # same agent id, a key the data centre never saw
STRANGER = keys.new_agent_identity("edge-9")


def write_dc_keys(settings: Settings) -> None:
    paths = settings.keys
    keys.write_private_key(paths.envelope_key, DC.envelope_key)
    keys.write_private_key(paths.receipts_key, DC.receipts_key)
    keys.write_public_file(paths.certificates, DC.certificates.to_pem())


@pytest.fixture
def settings(store: sa.Engine, tmp_path: Path) -> Settings:
    """CMS only (the default), keys on disk where the settings say, tenant and agent enrolled."""
    base = settings_for_data_dir(tmp_path / "data")
    url = store.url.render_as_string(hide_password=False)
    landing = dataclasses.replace(base.landing, root=tmp_path / "sshd" / "landing")
    settings = dataclasses.replace(base, store=StoreSettings(url=url), landing=landing)
    assert settings.ingest.accept_unprotected is False
    write_dc_keys(settings)
    gen_tenant(store, TENANT)
    with write_transaction(store) as conn:
        enroll_agent(conn, TENANT, AGENT, certificate=SIGNER.certificate)
    return settings


def protected(
    records: list[ICDR],
    *,
    sequence: int,
    agent_id: str = AGENT,
    signer: keys.AgentIdentity = SIGNER,
    recipient: keys.DatacentreKeys = DC,
) -> tuple[str, bytes]:
    """A batch file exactly as an agent with protection "cms" writes it."""
    content = seal(records, agent_id=agent_id, tenant=TENANT, sequence=sequence, created_at=T0)
    data = cms.protect(content, signer=signer, recipient=recipient.certificates.envelope)
    return batch_file_name(agent_id, sequence), data


def land(settings: Settings, name: str, data: bytes) -> Path:
    incoming = settings.landing.tenant_dir(TENANT, "incoming")
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / name
    path.write_bytes(data)
    return path


def receipt_of(settings: Settings, name: str) -> Receipt:
    path = settings.landing.tenant_dir(TENANT, "receipts") / f"{name}.receipt"
    return verify_receipt(path.read_bytes(), certificate=DC.certificates.receipts)


def receipts(settings: Settings) -> list[str]:
    folder = settings.landing.tenant_dir(TENANT, "receipts")
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def stored_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(calls.c.record_id)).scalars())


def statuses(report: IngestReport) -> list[tuple[str, str, int, int]]:
    return [(o.file_name, o.status, o.inserted, o.duplicates) for o in report.outcomes]


def missing(engine: sa.Engine) -> list[MissingRange]:
    with engine.connect() as conn:
        tenant_id = conn.execute(sa.select(landed_files.c.tenant_id).limit(1)).scalar_one()
        return missing_batches(conn, tenant_id, AGENT)


def calls_for(numbers: range) -> list[ICDR]:
    return [gen_outgoing_call(n, agent_id=AGENT) for n in numbers]


# --- the real agent over the real sshd ----------------------------------------------------------


@dataclasses.dataclass
class Appliance:
    spool: Spool
    batcher: Batcher
    uplink: Uplink
    next_call: int = 1

    def seal(self, count: int = 3) -> str:
        numbers = range(self.next_call, self.next_call + count)
        self.next_call += count
        self.spool.store("pbx", [(n, gen_outgoing_call(n, agent_id=AGENT)) for n in numbers], [],
                         cursor=None, now=T0)  # fmt: skip
        (batch,) = self.batcher.seal_ready(T0, force=True)
        return batch.file_name

    def statuses(self) -> list[BatchStatus]:
        return [b.status for b in self.spool.batches()]


@pytest.fixture
def appliance(tmp_path: Path, sshd: SshdServer, settings: Settings) -> Iterator[Appliance]:
    assert sshd.landing == settings.landing.tenant_dir(TENANT, "incoming").parent
    state = tmp_path / "state"
    uplink_settings = UplinkSettings(
        host="127.0.0.1", port=sshd.port, username=sshd.username, private_key=sshd.client_key,
        known_hosts=sshd.known_hosts, connect_timeout_seconds=5, transfer_timeout_seconds=10,
    )  # fmt: skip
    (sshd.landing / "receipts").mkdir()
    with Spool.open(state, quota_bytes=64 * 2**20) as spool:
        batcher = Batcher(spool, state_dir=state, agent_id=AGENT, tenant=TENANT,
                          protect=lambda c: cms.protect(c, signer=SIGNER,
                                                        recipient=DC.certificates.envelope))  # fmt: skip
        inbox = ReceiptInbox(spool, agent_id=AGENT, certificate=DC.certificates.receipts,
                             clock=lambda: T0)  # fmt: skip
        uplink = Uplink(uplink_settings, spool=spool, batcher=batcher, clock=lambda: T0,
                        inbox=inbox)  # fmt: skip
        yield Appliance(spool, batcher, uplink)


@pytest.mark.sshd
def test_sealed_batches_are_stored_once_receipted_and_acknowledged(
    store: sa.Engine, settings: Settings, appliance: Appliance
) -> None:
    first, second = appliance.seal(), appliance.seal()
    appliance.uplink.deliver()

    report = ingest_once(store, settings)

    assert statuses(report) == [(first, "stored", 3, 0), (second, "stored", 3, 0)]
    assert len(stored_ids(store)) == 6
    sent = {b.file_name: b.sha256 for b in appliance.spool.batches()}
    receipt = receipt_of(settings, first)
    assert (receipt.batch, receipt.sequence, receipt.records, receipt.inserted) == (
        first, 1, 3, 3)  # fmt: skip
    assert receipt.sha256 == sent[first]  # of the exact file the agent sent
    assert receipt.signer == keys.fingerprint(DC.certificates.receipts)

    delivered = appliance.uplink.deliver()

    assert [(r.receipt, r.status) for r in delivered.receipts] == [
        (f"{first}.receipt", ReceiptStatus.ACKNOWLEDGED),
        (f"{second}.receipt", ReceiptStatus.ACKNOWLEDGED)]  # fmt: skip
    assert appliance.statuses() == [BatchStatus.ACKNOWLEDGED] * 2
    assert receipts(settings) == []  # the agent deleted them after recording them


@pytest.mark.sshd
def test_resend_by_date_is_receipted_again_without_storing_a_call_twice(
    store: sa.Engine, settings: Settings, appliance: Appliance
) -> None:
    names = [appliance.seal(), appliance.seal()]
    appliance.uplink.deliver()
    ingest_once(store, settings)
    appliance.uplink.deliver()
    before = stored_ids(store)

    requeued = resend(appliance.spool, appliance.batcher, since=T0 - timedelta(days=1), until=None)
    assert [b.file_name for b in requeued] == names
    appliance.uplink.deliver()  # the same files, byte for byte
    report = ingest_once(store, settings)

    assert statuses(report) == [(name, "resent", 0, 0) for name in names]
    assert stored_ids(store) == before
    again = receipt_of(settings, names[0])
    assert (again.records, again.inserted, again.duplicates) == (3, 0, 3)
    assert [r.status for r in appliance.uplink.deliver().receipts] == [
        ReceiptStatus.ACKNOWLEDGED] * 2  # fmt: skip
    assert appliance.statuses() == [BatchStatus.ACKNOWLEDGED] * 2


# --- what is refused -----------------------------------------------------------------------------


def _tampered(data: bytes) -> bytes:
    """The last ciphertext byte flipped: the padding no longer checks out."""
    return data[:-1] + bytes([data[-1] ^ 0x01])


def _tampered_file() -> tuple[str, bytes]:
    name, data = protected(calls_for(range(3)), sequence=1)
    return name, _tampered(data)


def _plain_file() -> tuple[str, bytes]:
    return batch_file_name(AGENT, 1), seal(calls_for(range(3)), agent_id=AGENT, tenant=TENANT,
                                           sequence=1)  # fmt: skip


def _stranger_file() -> tuple[str, bytes]:
    records = [gen_outgoing_call(n, agent_id="edge-9") for n in range(3)]
    return protected(records, sequence=1, agent_id="edge-9", signer=STRANGER)


REFUSALS = [
    ("tampered", _tampered_file, "envelope does not decrypt (file damaged or altered)"),
    ("wrong signer", lambda: protected(calls_for(range(3)), sequence=1, signer=IMPOSTOR),
     f"signed by certificate {keys.fingerprint(IMPOSTOR.certificate)} (CN='edge-1'), "
     "which is not enrolled"),
    ("wrong recipient", lambda: protected(calls_for(range(3)), sequence=1, recipient=OTHER_DC),
     "not encrypted to this data centre's envelope certificate"),
    ("unenrolled", _stranger_file,
     "agent edge-9 is not enrolled for tenant demo: run `datacenter agent add --tenant demo "
     "edge-9` with --certificate"),
    ("unprotected", _plain_file, "unprotected batch refused"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "reason"), [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS]
)
def test_refused_files_are_quarantined_with_the_reason_and_get_no_receipt(
    store: sa.Engine, settings: Settings, make: Callable[[], tuple[str, bytes]], reason: str
) -> None:
    name, data = make()
    land(settings, name, data)

    [outcome] = ingest_once(store, settings).outcomes

    assert outcome.status == "quarantined"
    assert reason in outcome.reason
    quarantine = settings.landing.tenant_dir(TENANT, "quarantine")
    assert (quarantine / name).read_bytes() == data
    assert reason in (quarantine / f"{name}.reason").read_text()
    with store.connect() as conn:
        row = conn.execute(sa.select(landed_files.c.status, landed_files.c.reason)).one()
    assert (row.status, reason in row.reason) == ("quarantined", True)
    assert stored_ids(store) == []
    assert receipts(settings) == []


def test_an_agent_without_a_pinned_certificate_is_told_how_to_pin_one(
    store: sa.Engine, settings: Settings
) -> None:
    with write_transaction(store) as conn:
        enroll_agent(conn, TENANT, "edge-2")
    identity = keys.new_agent_identity("edge-2")
    land(settings, *protected(calls_for(range(2)), sequence=1, agent_id="edge-2", signer=identity))

    [outcome] = ingest_once(store, settings).outcomes

    assert outcome.status == "quarantined"
    assert "run `datacenter agent certificate --tenant demo edge-2 agent.crt`" in outcome.reason


def test_without_keys_the_worker_refuses_to_start_unless_plain_files_are_accepted(
    store: sa.Engine, settings: Settings
) -> None:
    shutil.rmtree(settings.keys.envelope_key.parent)  # the three files of write_dc_keys
    land(settings, *protected(calls_for(range(2)), sequence=1))
    with pytest.raises(ConfigError, match="datacenter keys init"):
        ingest_once(store, settings)

    transition = dataclasses.replace(
        settings, ingest=dataclasses.replace(settings.ingest, accept_unprotected=True)
    )
    plain = seal(calls_for(range(2, 4)), agent_id=AGENT, tenant=TENANT, sequence=2)
    land(transition, batch_file_name(AGENT, 2), plain)
    report = ingest_once(store, transition)

    assert [(o.status, o.inserted) for o in report.outcomes] == [("quarantined", 0), ("stored", 2)]
    assert "no envelope key configured" in report.outcomes[0].reason
    assert receipts(settings) == []  # nothing to sign with


# --- crashes and gaps ----------------------------------------------------------------------------


def test_a_receipt_that_could_not_be_written_is_written_on_the_next_pass(
    store: sa.Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, data = protected(calls_for(range(3)), sequence=1)
    path = land(settings, name, data)

    def disk_full(*_args: object, **_kwargs: object) -> Path:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(ingest_receipts, "write_receipt", disk_full)
        first = ingest_once(store, settings)
    assert statuses(first) == [(name, "stored", 3, 0)]
    assert path.exists() and receipts(settings) == []  # kept for the retry, not archived

    second = ingest_once(store, settings)

    assert statuses(second) == [(name, "resent", 0, 0)]
    assert not path.exists()
    receipt = receipt_of(settings, name)
    assert (receipt.records, receipt.inserted, receipt.duplicates) == (3, 0, 3)
    assert receipt.sha256 == hashlib.sha256(data).hexdigest()
    assert len(stored_ids(store)) == 3


def test_a_missing_batch_is_visible_and_its_resend_fills_the_gap_without_duplicates(
    store: sa.Engine, settings: Settings
) -> None:
    # Batch 2 overlaps batch 3 by one call (an agent's re-read window): it must be stored once.
    batches = {1: calls_for(range(0, 3)), 2: calls_for(range(3, 7)), 3: calls_for(range(6, 9))}
    files = {seq: protected(records, sequence=seq) for seq, records in batches.items()}
    land(settings, *files[1])
    land(settings, *files[3])
    ingest_once(store, settings)
    assert missing(store) == [MissingRange(2, 2)]

    name, data = files[2]
    land(settings, name, _tampered(data))  # it arrives damaged: still missing
    assert ingest_once(store, settings).outcomes[0].status == "quarantined"
    assert missing(store) == [MissingRange(2, 2)]

    land(settings, name, data)  # the re-send
    report = ingest_once(store, settings)

    assert statuses(report) == [(name, "stored", 3, 1)]
    assert missing(store) == []
    assert stored_ids(store) == sorted(r.record_id for r in calls_for(range(9)))
    assert receipt_of(settings, name).sha256 == hashlib.sha256(data).hexdigest()
