"""`edge-agent enroll | resend` and the whole delivery loop with CMS, receipts and retention."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from edge_agent.cli import main
from edge_agent.config import load
from edge_agent.journal import Journal
from edge_agent.service import Service
from edge_agent.sources import registry
from edge_agent.spool import BatchStatus, Spool
from shared import keys
from shared.envelope import batch_file_name
from tests.fixtures.fake_source import call_line
from tests.fixtures.landing import ReceiptingLanding
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd
DC = keys.new_datacentre_keys("dc.example")


@pytest.fixture(autouse=True)
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.DRIVERS, "fake", "tests.fixtures.fake_source")


def write_config(tmp_path: Path, sshd: SshdServer, *, private_key: Path | None = None) -> Path:
    bundle = tmp_path / "datacentre-certificates.pem"
    if not bundle.exists():
        keys.write_public_file(bundle, DC.certificates.to_pem())
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nid = "agent-1"\ntenant = "demo"\ntimezone = "Europe/London"\n'
        'state_dir = "state"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {sshd.port}\nusername = "{sshd.username}"\n'
        f'private_key = "{private_key or sshd.client_key}"\nknown_hosts = "{sshd.known_hosts}"\n'
        "connect_timeout_seconds = 5.0\n"
        f'[delivery]\nprotection = "cms"\ndatacentre_certificates = "{bundle}"\n'
        '[[sources]]\nid = "pbx-1"\nkind = "fake"\n'
    )
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_enroll_makes_missing_keys_once_and_prints_the_public_items(
    tmp_path: Path, sshd: SshdServer
) -> None:
    ssh_key = tmp_path / "uplink_ed25519"
    config = write_config(tmp_path, sshd, private_key=ssh_key)
    first = invoke("enroll", "-c", str(config))
    assert first.exit_code == 0, first.output
    identity = tmp_path / "state" / "identity"
    for path in (ssh_key, identity / "agent.key"):
        assert f"created {path}" in first.output
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cert = keys.load_certificates(identity / "agent.crt")[0]
    assert keys.fingerprint(cert) in first.output and "BEGIN CERTIFICATE" in first.output
    assert (ssh_key.with_name("uplink_ed25519.pub").read_text().strip()) in first.output
    assert "datacenter agent add --tenant demo agent-1 --certificate agent.crt" in first.output
    assert f"receipts {keys.fingerprint(DC.certificates.receipts)}" in first.output
    again = invoke("enroll", "-c", str(config))
    assert again.exit_code == 0 and "nothing created: every key exists" in again.output
    assert keys.load_certificates(identity / "agent.crt")[0] == cert  # never replaced


def test_run_without_enrolment_says_what_to_do(tmp_path: Path, sshd: SshdServer) -> None:
    result = invoke("flush", "-c", str(write_config(tmp_path, sshd)))
    assert result.exit_code == 2
    assert "has no signing key" in result.output and "run `edge-agent enroll`" in result.output


def journal_calls(state: Path, numbers: range) -> None:
    with Journal.open(state / "journal" / "pbx-1", source_id="pbx-1") as journal:
        journal.append_many([call_line(n) for n in numbers], received_at=datetime.now(UTC))


def test_sealed_acknowledged_and_resent_without_a_duplicate(
    tmp_path: Path, sshd: SshdServer
) -> None:
    config = write_config(tmp_path, sshd)
    assert invoke("enroll", "-c", str(config)).exit_code == 0
    state = tmp_path / "state"
    cert = keys.load_certificates(state / "identity" / "agent.crt")[0]
    dc = ReceiptingLanding(sshd.landing, DC, {keys.fingerprint(cert)})
    journal_calls(state, range(1, 11))
    assert invoke("flush", "-c", str(config)).exit_code == 0  # sealed, signed, uploaded
    assert dc.ingest() == [batch_file_name("agent-1", 1)] and len(dc.stored) == 10
    result = Service(load(config)).flush()  # receipts come in
    assert [r.status for r in result.receipts] == ["acknowledged"]
    with Spool.open(state, quota_bytes=2**30) as spool:
        assert spool.batch_counts()[BatchStatus.ACKNOWLEDGED] == 1
    # a technician asks for a re-send of the day: the same bytes go again
    sent = (state / "sent" / batch_file_name("agent-1", 1)).read_bytes()
    today = result_day(state)
    resend = invoke("resend", "-c", str(config), "--since", today, "--until", today)
    assert resend.exit_code == 0, resend.output
    assert f"re-queued {batch_file_name('agent-1', 1)} (10 records" in resend.output
    assert invoke("flush", "-c", str(config)).exit_code == 0
    assert (sshd.landing / "incoming" / batch_file_name("agent-1", 1)).read_bytes() == sent
    dc.ingest()
    assert len(dc.stored) == 10  # stored once
    Service(load(config)).flush()
    with Spool.open(state, quota_bytes=2**30) as spool:
        assert spool.batches()[0].status is BatchStatus.ACKNOWLEDGED


def result_day(state: Path) -> str:
    with Spool.open(state, quota_bytes=2**30) as spool:
        created = spool.batches()[0].created
    return datetime.fromisoformat(created).astimezone(ZoneInfo("Europe/London")).date().isoformat()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is not a date"),
        (["--since", "2026-03-05", "--until", "2026-03-01"], "it is before --since"),
    ],
)
def test_resend_refuses_bad_dates(
    tmp_path: Path, sshd: SshdServer, args: list[str], message: str
) -> None:
    result = invoke("resend", "-c", str(write_config(tmp_path, sshd)), *args)
    assert result.exit_code == 2 and message in result.output


def test_resend_dry_run_changes_nothing(tmp_path: Path, sshd: SshdServer) -> None:
    config = write_config(tmp_path, sshd)
    assert invoke("enroll", "-c", str(config)).exit_code == 0
    result = invoke("resend", "-c", str(config), "--since", "2026-01-01", "--dry-run")
    assert result.exit_code == 0
    assert "no acknowledged batch kept on this appliance was sealed from 2026-01-01T00:00:00Z" in (
        result.output)  # fmt: skip
