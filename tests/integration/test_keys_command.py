"""`datacenter init` / `keys init|show` make the keys; `agent add --certificate` pins an agent.

Then the whole data-centre side through its commands, on both backends: a CMS batch sealed
for the bundle `init` published is ingested, and its receipt verifies against that bundle.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from datacenter.cli import main
from shared import cms, keys
from shared.envelope import batch_file_name, seal
from shared.receipts import verify_receipt
from tests.factories import gen_outgoing_call

AGENT = "edge-1"


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{store_url}"\n')
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def ok(config: Path, *args: str) -> str:
    result = run(config, *args)
    assert result.exit_code == 0, result.output
    return result.output


def fails(config: Path, *args: str) -> str:
    result = run(config, *args)
    assert result.exit_code != 0, result.output
    return result.output


def write_certificate(path: Path, identity: keys.AgentIdentity) -> Path:
    keys.write_public_file(path, keys.certificate_pem(identity.certificate))
    return path


def test_init_makes_the_keys_once_and_says_where_the_bundle_is(
    config: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "data" / "keys"
    first = ok(config, "init")
    bundle = keys.load_datacentre_certificates(folder / "datacentre-certificates.pem")
    envelope = keys.fingerprint(bundle.envelope)
    assert f"created {folder / 'envelope.key'}" in first
    assert f"certificate bundle for agents: {folder / 'datacentre-certificates.pem'}" in first
    assert f"envelope {envelope}" in first
    for name in ("envelope.key", "receipts.key"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    again = ok(config, "keys", "init")
    assert "created" not in again and f"envelope {envelope}" in again  # never replaced

    shown = ok(config, "keys", "show")
    assert [keys.fingerprint(c) for c in x509.load_pem_x509_certificates(shown.encode())] == [
        envelope, keys.fingerprint(bundle.receipts)]  # fmt: skip

    (folder / "receipts.key").unlink()
    refused = fails(config, "keys", "init")
    assert "keys are incomplete" in refused and "receipts.key missing" in refused
    assert "incomplete" in fails(config, "init")
    assert not (folder / "receipts.key").exists()  # nothing was made to fill the hole


def test_agent_certificates_are_checked_pinned_and_replaced(config: Path, tmp_path: Path) -> None:
    ok(config, "init")
    ok(config, "tenant", "add", "acme", "--name", "Acme Ltd")
    other = write_certificate(tmp_path / "other.crt", keys.new_agent_identity("edge-7"))
    bundle = tmp_path / "data" / "keys" / "datacentre-certificates.pem"
    assert "made for agent 'edge-7', not 'edge-1'" in fails(
        config, "agent", "add", "--tenant", "acme", AGENT, "--certificate", str(other))  # fmt: skip
    assert "holds 2 certificates" in fails(
        config, "agent", "add", "--tenant", "acme", AGENT, "--certificate", str(bundle))  # fmt: skip

    first = keys.new_agent_identity(AGENT)
    path = write_certificate(tmp_path / "agent.crt", first)
    added = ok(config, "agent", "add", "--tenant", "acme", AGENT, "--certificate", str(path))
    assert f"pinned certificate {keys.fingerprint(first.certificate)}" in added
    listed = ok(config, "agent", "list")
    assert f"acme\t{AGENT}\t-\tnever\t-\t{keys.fingerprint(first.certificate)}\t" in listed

    second = keys.new_agent_identity(AGENT)
    new = write_certificate(tmp_path / "new.crt", second)
    replaced = ok(config, "agent", "certificate", "--tenant", "acme", AGENT, str(new))
    assert keys.fingerprint(second.certificate) in replaced
    assert keys.fingerprint(second.certificate) in ok(config, "agent", "list")
    unknown = write_certificate(tmp_path / "edge-8.crt", keys.new_agent_identity("edge-8"))
    assert "agent edge-8 is not enrolled for tenant acme" in fails(
        config, "agent", "certificate", "--tenant", "acme", "edge-8", str(unknown))  # fmt: skip


def test_the_data_centre_side_end_to_end_through_its_commands(config: Path, tmp_path: Path) -> None:
    ok(config, "init")
    ok(config, "tenant", "add", "acme", "--name", "Acme Ltd")
    identity = keys.new_agent_identity(AGENT)
    certificate = write_certificate(tmp_path / "agent.crt", identity)
    ok(config, "agent", "add", "--tenant", "acme", AGENT, "--certificate", str(certificate))
    landing = tmp_path / "data" / "landing" / "acme"
    bundle = keys.load_datacentre_certificates(
        tmp_path / "data" / "keys" / "datacentre-certificates.pem"
    )

    def deliver(sequence: int, numbers: range) -> str:
        records = [gen_outgoing_call(n, agent_id=AGENT) for n in numbers]
        content = seal(records, agent_id=AGENT, tenant="acme", sequence=sequence)
        name = batch_file_name(AGENT, sequence)
        data = cms.protect(content, signer=identity, recipient=bundle.envelope)
        (landing / "incoming" / name).write_bytes(data)
        return name

    first = deliver(1, range(3))
    third = deliver(3, range(3, 6))  # batch 2 never arrives
    assert "2 file(s): 2 stored" in ok(config, "ingest", "--once")
    receipt = verify_receipt(
        (landing / "receipts" / f"{first}.receipt").read_bytes(), certificate=bundle.receipts
    )
    assert (receipt.batch, receipt.inserted) == (first, 3)
    assert (landing / "receipts" / f"{third}.receipt").exists()
    assert f"acme\t{AGENT}\t3\t" in ok(config, "agent", "list")
    assert "\t2\tsha256:" in ok(config, "agent", "list")  # batch 2 is missing

    deliver(2, range(2, 8))  # the re-send: 2 of its calls are already stored
    assert "1 stored" in ok(config, "ingest", "--once")
    assert "\t-\tsha256:" in ok(config, "agent", "list")
