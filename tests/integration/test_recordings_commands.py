"""`datacenter recordings policy | permit | purge` through click's CliRunner, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.accounts.audit import events
from datacenter.store.engine import open_store
from tests.integration.test_store_commands import config, ok, run  # noqa: F401  (fixture)

PASSWORD = "correct horse battery"


@pytest.mark.usefixtures("cheap_passwords")
def test_policy_permissions_and_purge_from_the_command_line(config: Path, store_url: str) -> None:  # noqa: F811
    ok(config, "init")
    ok(config, "tenant", "add", "acme", "--name", "Acme Ltd")
    for email, role in (("al@acme.example", "tenant"), ("ad@acme.example", "tenant_admin")):
        ok(config, "user", "add", email, "--role", role, "--tenant", "acme", "--password-stdin",
           input=PASSWORD + "\n")  # fmt: skip

    assert "audio kept for ever; technicians may not" in ok(config, "recordings", "policy", "acme")
    out = ok(config, "recordings", "policy", "acme", "--retention-days", "90", "--technicians")
    assert "audio kept 90 days; technicians may play" in out
    out = ok(config, "recordings", "policy", "acme", "--no-technicians")
    assert "audio kept 90 days; technicians may not" in out  # the period is kept
    both = run(config, "recordings", "policy", "acme", "--retention-days", "9", "--keep-forever")
    assert both.exit_code == 2 and "not both" in both.output

    assert "al@acme.example has recordings\n" in ok(config, "recordings", "permit",
                                                    "al@acme.example")  # fmt: skip
    assert "(unchanged)" in ok(config, "recordings", "permit", "al@acme.example")
    out = ok(config, "recordings", "permit", "al@acme.example", "--revoke")
    assert "no longer has recordings" in out
    admin = run(config, "recordings", "permit", "ad@acme.example")
    assert admin.exit_code != 0 and "tenant admins may always play" in admin.output
    assert "Traceback" not in admin.output
    nobody = run(config, "recordings", "permit", "zed@acme.example")
    assert nobody.exit_code != 0 and "datacenter user add" in nobody.output

    assert "no recording past its retention period" in ok(config, "recordings", "purge")
    engine = open_store(store_url)
    try:
        with engine.connect() as conn:
            tenant_id = conn.scalar(sa.text("SELECT tenant_id FROM tenants WHERE slug = 'acme'"))
            kinds = [e.event for e in events(conn, tenant_id)]
    finally:
        engine.dispose()
    assert kinds.count("recording_policy_changed") == 2 and kinds.count("permission_changed") == 2
