"""`datacenter cost-alarms rules set|show|check`, `secret`, `run`, `list` through the real CLI,
on both backends: a rules file set for a tenant, a call ingested, one pass, the alarm listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datacenter.cli import main
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_batch

RULES = '[[rules]]\nid = "long"\nkind = "long_call"\nminutes = 10\n'


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{store_url}"\n'
        "[ingest]\naccept_unprotected = true\n"
    )
    return path


def run(config: Path | None, *args: str, input: str | None = None) -> Result:
    extra = ["--config", str(config)] if config else []
    return CliRunner().invoke(main, [*args, *extra], input=input)


def test_rules_set_then_a_pass_raises_and_lists_the_alarm(config: Path, tmp_path: Path) -> None:
    for args in (("init",), ("tenant", "add", "acme", "--name", "Acme"),
                 ("agent", "add", "--tenant", "acme", "edge-1")):  # fmt: skip
        assert run(config, *args).exit_code == 0
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    saved = run(config, "cost-alarms", "rules", "set", "--tenant", "acme", str(rules))
    assert saved.exit_code == 0 and "saved 1 rule(s) for acme" in saved.output
    assert run(config, "cost-alarms", "rules", "show", "--tenant", "acme").output == RULES
    secret = run(config, "cost-alarms", "secret", "--tenant", "acme").output.strip()
    assert len(secret) == 64
    rotated = run(config, "cost-alarms", "secret", "--tenant", "acme", "--rotate").output.strip()
    assert len(rotated) == 64 and rotated != secret
    incoming = tmp_path / "data" / "landing" / "acme" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    calls = [gen_outgoing_call(0, start=start, talk_seconds=601),
             gen_outgoing_call(1, start=start, talk_seconds=600)]  # fmt: skip
    name, data = gen_batch(calls)
    (incoming / name).write_bytes(data)
    assert run(config, "ingest", "--once").exit_code == 0
    passed = run(config, "cost-alarms", "run")
    assert passed.exit_code == 0, passed.output
    assert "2 call(s) evaluated, 1 call(s) newly in an alarm" in passed.output
    listed = run(config, "cost-alarms", "list", "--tenant", "acme")
    [line] = listed.output.splitlines()
    assert line.split("\t")[1:] == ["long", calls[0].extension, "2026-03-02", "1", "open"]


def test_a_bad_document_is_refused_with_its_key_and_exit_code_3(
    config: Path, tmp_path: Path
) -> None:
    assert run(config, "init").exit_code == 0
    assert run(config, "tenant", "add", "acme", "--name", "Acme").exit_code == 0
    bad = '[[rules]]\nkind = "long_call"\nminutes = "ten"\n'
    refused = run(config, "cost-alarms", "rules", "set", "--tenant", "acme", "-", input=bad)
    assert refused.exit_code == 3 and "rules[0].minutes" in refused.output
    assert "Traceback" not in refused.output
    assert run(config, "cost-alarms", "rules", "show", "--tenant", "acme").output == ""
    checked = run(None, "cost-alarms", "rules", "check", "-", input=RULES)
    assert checked.exit_code == 0 and "ok: 1 rule(s): long" in checked.output
    unknown = run(config, "cost-alarms", "rules", "show", "--tenant", "nope")
    assert unknown.exit_code == 2 and "no tenant 'nope'" in unknown.output
