"""Enrolment without shared secrets, end to end through both CLIs, and the envelope rotation.

`edge-agent enroll` prints a request, `datacenter agent approve --no-system-user` turns it into
an agent with its landing folders and a bundle, `edge-agent enroll --import` installs it. Then
the data centre rotates its envelope key: batches sealed for either key are stored during the
overlap, and one sealed for the old key after it is quarantined. Every step runs with logging
at DEBUG; no private key and no PEM ever reaches a log.
"""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datacenter.cli import main as datacenter_main
from edge_agent.cli import main as agent_main
from edge_agent.delivery.enrollment import identity_paths
from shared import cms, keys
from shared.enrolment import parse_bundle
from shared.envelope import batch_file_name, seal
from tests.factories import gen_outgoing_call
from tests.fixtures.sshd import keygen

AGENT, TENANT = "edge-1", "acme"
KEY_MATERIAL = ("-----BEGIN", "PRIVATE KEY")


def run(main: object, *args: str) -> Result:
    result = CliRunner().invoke(main, list(args))  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    return result


def setup_sites(tmp_path: Path) -> tuple[Path, Path, Path]:
    dc = tmp_path / "datacenter.toml"
    dc.write_text(f'data_dir = "{tmp_path / "dc"}"\n[store]\n'
                  f'url = "sqlite:///{tmp_path / "store.db"}"\n')  # fmt: skip
    run(datacenter_main, "init", "--config", str(dc))
    run(datacenter_main, "tenant", "add", TENANT, "--name", "Acme", "--config", str(dc))
    agent = tmp_path / "agent.toml"
    (tmp_path / "known_hosts").write_text("")
    agent.write_text(
        f'[agent]\nid = "{AGENT}"\ntenant = "{TENANT}"\ntimezone = "UTC"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        '[uplink]\nhost = "127.0.0.1"\nport = 2222\nusername = "pending"\n'
        f'private_key = "{tmp_path / "uplink_ed25519"}"\n'
        f'known_hosts = "{tmp_path / "known_hosts"}"\n'
        f'[delivery]\nprotection = "cms"\n'
        f'datacentre_certificates = "{tmp_path / "datacentre-certificates.pem"}"\n'
        '[[sources]]\nid = "pbx-1"\nkind = "mitel_smdr"\nhost = "127.0.0.1"\nport = 1752\n'
    )
    host_pub = keygen(tmp_path / "ssh_host_ed25519_key").with_suffix(".pub")
    return dc, agent, host_pub


def enrol(dc: Path, agent: Path, host_pub: Path, bundle: Path) -> str:
    request = run(agent_main, "enroll", "-c", str(agent)).stdout.strip().splitlines()[-1]
    approved = run(datacenter_main, "agent", "approve", request, "--landing-host", "127.0.0.1",
                   "--landing-port", "2222", "--host-key", str(host_pub), "--no-system-user",
                   "--bundle", str(bundle), "--config", str(dc))  # fmt: skip
    assert not any(marker in approved.output for marker in KEY_MATERIAL)
    return run(agent_main, "enroll", "-c", str(agent), "--import", str(bundle)).stdout


def sealed_for(tmp_path: Path, sequence: int) -> tuple[str, bytes]:
    """A batch as the agent seals it, to the certificates it has installed now."""
    identity = keys.load_agent_identity(*identity_paths(tmp_path / "state"))
    installed = keys.load_datacentre_certificates(tmp_path / "datacentre-certificates.pem")
    plain = seal([gen_outgoing_call(sequence, agent_id=AGENT)], agent_id=AGENT, tenant=TENANT,
                 sequence=sequence, created_at=datetime(2026, 3, 2, tzinfo=UTC))  # fmt: skip
    return batch_file_name(AGENT, sequence), cms.protect(
        plain, signer=identity, recipient=installed.envelope
    )


def test_enrol_approve_import_then_rotate_the_envelope_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dc, agent, host_pub = setup_sites(tmp_path)
    bundle_path = tmp_path / "edge-1.bundle"
    imported = enrol(dc, agent, host_pub, bundle_path)
    bundle = parse_bundle(bundle_path.read_text())
    assert f'username = "{bundle.account}"' in imported
    host_key = " ".join(host_pub.read_text().split()[:2])
    assert (tmp_path / "known_hosts").read_text() == f"[127.0.0.1]:2222 {host_key}\n"
    dc_bundle = tmp_path / "dc" / "keys" / "datacentre-certificates.pem"
    assert (tmp_path / "datacentre-certificates.pem").read_bytes() == dc_bundle.read_bytes()
    chroot = tmp_path / "dc" / "landing" / bundle.account
    modes = {name: stat.S_IMODE((chroot / name).stat().st_mode)
             for name in ("incoming", "heartbeats", "receipts")}  # fmt: skip
    assert modes == {"incoming": 0o770, "heartbeats": 0o770, "receipts": 0o2750}
    assert stat.S_IMODE(chroot.stat().st_mode) == 0o755
    ssh_pub = (tmp_path / "uplink_ed25519.pub").read_text().split()[:2]
    assert (tmp_path / "dc" / "landing" / ".keys" / bundle.account).read_text().split()[
        :2
    ] == ssh_pub

    old_name, old_batch = sealed_for(tmp_path, 1)
    rotated = run(datacenter_main, "keys", "rotate-envelope", "--overlap-days", "7",
                  "--config", str(dc))  # fmt: skip
    assert "accepted until" in rotated.output
    enrol(dc, agent, host_pub, bundle_path)  # approve again: a bundle with the new certificate
    assert (tmp_path / "datacentre-certificates.pem").read_bytes() == dc_bundle.read_bytes()
    new_name, new_batch = sealed_for(tmp_path, 2)
    (chroot / "incoming" / old_name).write_bytes(old_batch)
    (chroot / "incoming" / new_name).write_bytes(new_batch)
    stored = run(datacenter_main, "ingest", "--config", str(dc)).output
    assert "2 stored" in stored and "0 quarantined" in stored

    # after the overlap, a batch still sealed for the old key is refused
    (tmp_path / "dc" / "keys" / "previous-envelope.until").write_text(
        (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    )
    late = cms.protect(
        seal([gen_outgoing_call(3, agent_id=AGENT)], agent_id=AGENT, tenant=TENANT, sequence=3,
             created_at=datetime(2026, 3, 2, tzinfo=UTC)),
        signer=keys.load_agent_identity(*identity_paths(tmp_path / "state")),
        recipient=keys.load_certificates(tmp_path / "dc" / "keys" / "previous-envelope.pem")[0],
    )  # fmt: skip
    (chroot / "incoming" / batch_file_name(AGENT, 3)).write_bytes(late)
    refused = run(datacenter_main, "ingest", "--config", str(dc)).output
    assert "1 quarantined" in refused
    reason = next((tmp_path / "dc" / "landing" / TENANT / "quarantine").glob("*.reason"))
    assert "not encrypted to this data centre's envelope certificate" in reason.read_text()

    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert not any(marker in caplog.text for marker in KEY_MATERIAL)


def test_the_agent_key_rotates_with_an_overlap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dc, agent, host_pub = setup_sites(tmp_path)
    enrol(dc, agent, host_pub, tmp_path / "b.json")
    bundle = parse_bundle((tmp_path / "b.json").read_text())
    current_cert = tmp_path / "state" / "identity" / "agent.crt"
    enrolled = current_cert.read_bytes()
    incoming = tmp_path / "dc" / "landing" / bundle.account / "incoming"
    old_name, old_batch = sealed_for(tmp_path, 1)  # still in the outbox when the key changes
    prepared = run(agent_main, "enroll", "-c", str(agent), "--new-key").stdout
    assert "created: new signing key" in prepared
    next_cert = tmp_path / "state" / "identity" / "next" / "agent.crt"
    assert current_cert.read_bytes() == enrolled  # prepared, not used until the switch
    run(datacenter_main, "agent", "rotate", "--tenant", TENANT, AGENT, str(next_cert),
        "--overlap-days", "7", "--config", str(dc))  # fmt: skip
    switched = run(agent_main, "enroll", "-c", str(agent), "--use-new-key").stdout
    assert "now signs with" in switched
    new_name, new_batch = sealed_for(tmp_path, 2)
    incoming.joinpath(old_name).write_bytes(old_batch)
    incoming.joinpath(new_name).write_bytes(new_batch)
    stored = run(datacenter_main, "ingest", "--config", str(dc)).output
    assert "2 stored" in stored and "0 quarantined" in stored

    # a rotation with no overlap refuses the replaced key at once
    run(agent_main, "enroll", "-c", str(agent), "--new-key")
    run(datacenter_main, "agent", "rotate", "--tenant", TENANT, AGENT, str(next_cert),
        "--overlap-days", "0", "--config", str(dc))  # fmt: skip
    stale_name, stale_batch = sealed_for(tmp_path, 3)  # signed with the key just replaced
    incoming.joinpath(stale_name).write_bytes(stale_batch)
    refused = run(datacenter_main, "ingest", "--config", str(dc)).output
    assert "1 quarantined" in refused
    assert not any(marker in caplog.text for marker in KEY_MATERIAL)
