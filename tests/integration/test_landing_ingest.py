"""Ingest from each agent's own landing account: attribution by folder, signed heartbeats,
the tenant's older shared folder still read, receipts in the account, certificate rotation."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.accounts.agents import enroll_agent, rotate_agent_certificate, trusted_signers
from datacenter.health.facts import collect_site_facts
from datacenter.health.heartbeats import ingest_heartbeats, record_heartbeat
from datacenter.health.model import HealthPolicy, State, assess
from datacenter.ingest.keys import ensure_keys
from datacenter.ingest.worker import ingest_once
from datacenter.landing.approve import ApproveOptions, approve
from datacenter.landing.users import current_owner
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import landed_files
from shared import cms, keys
from shared.enrolment import EnrolmentRequest, LandingBundle
from shared.heartbeat import HEARTBEAT_FOLDER, Heartbeat, heartbeat_file_name
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_batch, gen_tenant, land

NOW = datetime.now(UTC).replace(microsecond=0)
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
IDENTITIES = {name: keys.new_agent_identity(name) for name in ("edge-1", "edge-2")}


def approve_agent(store: sa.Engine, settings: Settings, agent_id: str) -> LandingBundle:
    request = EnrolmentRequest("acme", agent_id, IDENTITIES[agent_id].certificate, SSH_KEY)
    options = ApproveOptions(
        landing_root=settings.landing.root, host="127.0.0.1", port=2222, host_key=SSH_KEY,
        datacentre_certificates="", service=current_owner(), system_users=False,
    )  # fmt: skip
    with write_transaction(store) as conn:
        return approve(conn, request, options)


@pytest.fixture
def accounts(store: sa.Engine, dc_settings: Settings) -> dict[str, str]:
    gen_tenant(store, "acme")
    return {a: approve_agent(store, dc_settings, a).account for a in ("edge-1", "edge-2")}


def heartbeat(sent_at: datetime, agent_id: str = "edge-1") -> Heartbeat:
    return Heartbeat(agent_id=agent_id, tenant="acme", sent_at=sent_at, agent_version="0.1.0",
                     started_at=sent_at - timedelta(hours=1), interval_seconds=60)  # fmt: skip


def land_heartbeat(folder: Path, hb: Heartbeat, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / heartbeat_file_name(hb.agent_id, hb.sent_at)
    path.write_bytes(data)
    os.utime(path, (hb.sent_at.timestamp(), hb.sent_at.timestamp()))
    return path


def site_state(store: sa.Engine) -> State:
    with store.connect() as conn:
        facts = collect_site_facts(conn, now=NOW, policy=HealthPolicy(), agent_id="edge-1")
    (site,) = [assess(f, NOW, HealthPolicy()) for f in facts]
    return site.state


def test_a_forged_heartbeat_cannot_bring_a_down_site_back(
    store: sa.Engine, dc_settings: Settings, accounts: dict[str, str]
) -> None:
    root = dc_settings.landing.root
    old = heartbeat(NOW - timedelta(hours=2))
    signed = cms.sign(old.to_json(), signer=IDENTITIES["edge-1"])
    land_heartbeat(root / accounts["edge-1"] / HEARTBEAT_FOLDER, old, signed)
    assert ingest_heartbeats(store, dc_settings).stored == 1
    assert site_state(store) is State.AGENT_DOWN
    fresh = heartbeat(NOW - timedelta(seconds=30))
    forgeries = [
        (root / "acme" / HEARTBEAT_FOLDER, fresh.to_json()),  # the tenant's old shared folder
        (root / accounts["edge-2"] / HEARTBEAT_FOLDER,  # another agent's account, its own key
         cms.sign(fresh.to_json(), signer=IDENTITIES["edge-2"])),
        (root / accounts["edge-1"] / HEARTBEAT_FOLDER,  # the victim's folder, a stranger's key
         cms.sign(fresh.to_json(), signer=keys.new_agent_identity("edge-1"))),
        (root / accounts["edge-1"] / HEARTBEAT_FOLDER, fresh.to_json()),  # unsigned
    ]  # fmt: skip
    for folder, data in forgeries:
        land_heartbeat(folder, fresh, data)
        report = ingest_heartbeats(store, dc_settings)
        assert (report.stored, len(report.rejected)) == (0, 1), report.rejected
        assert site_state(store) is State.AGENT_DOWN
    quarantined = root / "acme" / "quarantine" / HEARTBEAT_FOLDER
    reasons = [p.read_text() for p in sorted(quarantined.glob("*.reason"))]
    assert reasons and any("unsigned" in r for r in reasons)
    # the same document signed with the enrolled key is accepted: the check is the signature
    land_heartbeat(root / accounts["edge-1"] / HEARTBEAT_FOLDER, fresh,
                   cms.sign(fresh.to_json(), signer=IDENTITIES["edge-1"]))  # fmt: skip
    assert ingest_heartbeats(store, dc_settings).stored == 1
    assert site_state(store) is not State.AGENT_DOWN


def test_an_unsigned_heartbeat_for_an_agent_with_a_certificate_is_rejected(
    store: sa.Engine, dc_settings: Settings
) -> None:
    """The attack as reproduced on the shared tenant folder: an agent whose certificate is pinned
    is down; anyone with the tenant's SFTP login drops a plain heartbeat in its name."""
    gen_tenant(store, "acme")
    with write_transaction(store) as conn:
        enroll_agent(conn, "acme", "edge-1", certificate=IDENTITIES["edge-1"].certificate)
        record_heartbeat(conn, tenant_id=1, heartbeat=heartbeat(NOW - timedelta(hours=2)),
                         file_name="old.json", received_at=NOW - timedelta(hours=2))  # fmt: skip
    assert site_state(store) is State.AGENT_DOWN
    fresh = heartbeat(NOW - timedelta(seconds=30))
    land_heartbeat(dc_settings.landing.root / "acme" / HEARTBEAT_FOLDER, fresh, fresh.to_json())
    report = ingest_heartbeats(store, dc_settings)
    assert report.stored == 0 and len(report.rejected) == 1
    assert "unsigned" in report.rejected[0][1]
    assert site_state(store) is State.AGENT_DOWN


def test_a_batch_naming_another_agent_is_quarantined_unclaimed(
    store: sa.Engine, dc_settings: Settings, accounts: dict[str, str]
) -> None:
    root = dc_settings.landing.root
    name, data = gen_batch([gen_outgoing_call(1, agent_id="edge-2")], agent_id="edge-2")
    (root / accounts["edge-1"] / "incoming" / name).write_bytes(data)  # edge-1 pre-creates it
    (report_outcome,) = ingest_once(store, dc_settings, keys=None).outcomes
    assert report_outcome.status == "quarantined"
    assert "landed in agent edge-1's landing account" in report_outcome.reason
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(landed_files)).scalar() == 0
    # the real owner's batch of that name is then stored as if nothing happened
    (root / accounts["edge-2"] / "incoming" / name).write_bytes(data)
    (outcome,) = ingest_once(store, dc_settings, keys=None).outcomes
    assert (outcome.status, outcome.inserted) == ("stored", 1)


def test_receipts_go_to_the_agents_account_and_the_shared_folder_still_works(
    store: sa.Engine, dc_settings: Settings, accounts: dict[str, str]
) -> None:
    ensure_keys(dc_settings.keys)
    root = dc_settings.landing.root
    name, data = gen_batch([gen_outgoing_call(1)], sequence=1)
    (root / accounts["edge-1"] / "incoming" / name).write_bytes(data)
    old_name, old_data = gen_batch([gen_outgoing_call(2)], sequence=2)
    land(dc_settings, "acme", old_name, old_data)  # the layout before per-agent accounts
    report = ingest_once(store, dc_settings)
    assert sorted(o.status for o in report.outcomes) == ["stored", "stored"]
    assert not report.unknown_folders
    assert (root / accounts["edge-1"] / "receipts" / f"{name}.receipt").exists()
    assert (root / "acme" / "receipts" / f"{old_name}.receipt").exists()
    assert not (root / "acme" / "receipts" / f"{name}.receipt").exists()
    assert list((root / "acme" / "archive").rglob(name))  # archive: outside the chroot


def test_a_rotated_certificate_is_accepted_until_the_overlap_ends(
    store: sa.Engine, dc_settings: Settings, accounts: dict[str, str]
) -> None:
    old = keys.fingerprint(IDENTITIES["edge-1"].certificate)
    new_identity = keys.new_agent_identity("edge-1")
    new = keys.fingerprint(new_identity.certificate)
    until = NOW + timedelta(days=7)
    with write_transaction(store) as conn:
        rotate_agent_certificate(conn, "acme", "edge-1", new_identity.certificate,
                                 overlap_until=until)  # fmt: skip
        assert trusted_signers(conn, 1, "edge-1", now=NOW) == frozenset({old, new})
        assert trusted_signers(conn, 1, "edge-1", now=until + timedelta(seconds=1)) == frozenset(
            {new}
        )
    # during the overlap a heartbeat signed with either key is accepted
    folder = dc_settings.landing.root / accounts["edge-1"] / HEARTBEAT_FOLDER
    for n, identity in enumerate((IDENTITIES["edge-1"], new_identity)):
        hb = heartbeat(NOW - timedelta(minutes=n + 1))
        land_heartbeat(folder, hb, cms.sign(hb.to_json(), signer=identity))
    assert ingest_heartbeats(store, dc_settings).stored == 2
