"""`edge-agent check | status | flush` as a technician runs them (run: see test_service.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from edge_agent.cli import main
from edge_agent.journal import Journal
from edge_agent.sources import registry
from shared.envelope import batch_file_name
from tests.fixtures.fake_source import call_line
from tests.fixtures.sshd import SshdServer, keygen

pytestmark = pytest.mark.sshd


@pytest.fixture(autouse=True)
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.DRIVERS, "fake", "tests.fixtures.fake_source")


def write_config(tmp_path: Path, sshd: SshdServer, **overrides: Any) -> Path:
    uplink = {"host": "127.0.0.1", "port": sshd.port, "username": sshd.username,
              "private_key": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
              "connect_timeout_seconds": 5.0}  # fmt: skip
    uplink.update(overrides)
    lines = ['[agent]', 'id = "agent-1"', 'tenant = "demo"', 'timezone = "Europe/London"',
             'state_dir = "state"', "[uplink]"]  # fmt: skip
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in uplink.items()]
    lines += ["[delivery]", 'protection = "none"']  # plain files: these tests read what lands
    lines += ["[[sources]]", 'id = "pbx-1"', 'kind = "fake"']
    path = tmp_path / "agent.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_check_prints_a_summary(tmp_path: Path, sshd: SshdServer) -> None:
    result = invoke("check", "-c", str(write_config(tmp_path, sshd)), "--connect")
    assert result.exit_code == 0, result.output
    assert "agent:   agent-1 (tenant demo), time zone Europe/London" in result.output
    assert f"uplink:  sftp://{sshd.username}@127.0.0.1:{sshd.port}/incoming/" in result.output
    assert "  - pbx-1 (fake)" in result.output
    assert "incoming/ holds 0 files" in result.output
    assert result.output.endswith("configuration OK\n")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"port": 70000}, "config key 'uplink.port': 70000 is out of range"),
        ({"private_key": "/nonexistent/key"}, "config key 'uplink.private_key': /nonexistent/key does not exist"),
        ({"known_hosts": "/nonexistent/kh"}, "config key 'uplink.known_hosts': /nonexistent/kh does not exist"),
        ({"intervall_seconds": 5}, "config key 'uplink.intervall_seconds': unknown key"),
    ],
)  # fmt: skip
def test_check_fails_with_exit_2_and_the_key(
    tmp_path: Path, sshd: SshdServer, overrides: dict[str, Any], message: str
) -> None:
    result = invoke("check", "-c", str(write_config(tmp_path, sshd, **overrides)))
    assert result.exit_code == 2
    assert f"Error: {message}" in result.output
    assert "Traceback" not in result.output


def test_check_refuses_known_hosts_without_our_host(tmp_path: Path, sshd: SshdServer) -> None:
    other = tmp_path / "kh"
    other.write_text(sshd.known_hosts.read_text().replace(str(sshd.port), "2222"))
    result = invoke("check", "-c", str(write_config(tmp_path, sshd, known_hosts=str(other))))
    assert result.exit_code == 2
    assert f"pins no key for [127.0.0.1]:{sshd.port}" in result.output


def test_check_runs_the_driver_option_checks(tmp_path: Path, sshd: SshdServer) -> None:
    path = write_config(tmp_path, sshd)
    path.write_text(path.read_text() + "bogus = 1\n")
    result = invoke("check", "-c", str(path))
    assert result.exit_code == 2
    assert "config key 'sources.pbx-1.bogus': unknown option" in result.output


def test_status_before_the_first_run(tmp_path: Path, sshd: SshdServer) -> None:
    result = invoke("status", "-c", str(write_config(tmp_path, sshd)))
    assert result.exit_code == 0
    assert "running: no" in result.output
    assert "spool: none yet" in result.output


def journal_calls(tmp_path: Path, count: int) -> None:
    """Units the agent journalled before it crashed, never parsed."""
    with Journal.open(tmp_path / "state" / "journal" / "pbx-1", source_id="pbx-1") as journal:
        units = [call_line(n) for n in range(1, count + 1)] + [b"not a call"]
        journal.append_many(units, received_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


def test_flush_parses_seals_and_uploads_then_status_shows_it(
    tmp_path: Path, sshd: SshdServer
) -> None:
    config = str(write_config(tmp_path, sshd))
    journal_calls(tmp_path, 7)
    result = invoke("flush", "-c", config)
    assert result.exit_code == 0, result.output
    name = batch_file_name("agent-1", 1)
    assert result.output.splitlines() == [
        f"sealed   {name} (7 records)",
        f"uploaded {name} ({(sshd.landing / 'incoming' / name).stat().st_size} bytes, uploaded)",
    ]
    assert invoke("flush", "-c", config).output == "nothing to upload\n"

    status = invoke("status", "-c", config)
    assert status.exit_code == 0
    lines = status.output.splitlines()
    header = next(line for line in lines if line.startswith("SOURCE"))
    row = lines[lines.index(header) + 1].split()
    assert header.split()[:3] == ["SOURCE", "KIND", "LAST"]
    assert row[:3] == ["pbx-1", "fake", "never"]  # no acquirer ran: nothing reported
    assert row[-5:-1] == ["8", "7", "0", "1"]  # cursor, spooled, unbatched, quarantined
    assert "batches: 0 sealed, 1 uploaded, 0 acknowledged" in status.output
    assert f"last uploaded: {name} at " in status.output


def test_flush_with_the_server_down_exits_6(tmp_path: Path, sshd: SshdServer) -> None:
    config = str(write_config(tmp_path, sshd))
    journal_calls(tmp_path, 2)
    sshd.stop()
    result = invoke("flush", "-c", config)
    assert result.exit_code == 6
    assert "connection refused" in result.output
    assert f"sealed   {batch_file_name('agent-1', 1)} (2 records)" in result.output


def test_flush_with_a_changed_host_key_exits_7(tmp_path: Path, sshd: SshdServer) -> None:
    config = str(write_config(tmp_path, sshd))
    journal_calls(tmp_path, 1)
    sshd.stop()
    sshd.rotate_host_key()
    sshd.start()
    result = invoke("flush", "-c", config)
    assert result.exit_code == 7
    assert "pins" in result.output and "Traceback" not in result.output


def test_flush_with_a_refused_key_exits_6(tmp_path: Path, sshd: SshdServer) -> None:
    stranger = keygen(tmp_path / "stranger")
    config = str(write_config(tmp_path, sshd, private_key=str(stranger)))
    journal_calls(tmp_path, 1)
    result = invoke("flush", "-c", config)
    assert result.exit_code == 6
    assert "refused key" in result.output
