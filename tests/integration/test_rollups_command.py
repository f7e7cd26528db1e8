"""`datacenter rollups rebuild [--tenant] [--check]` through the real CLI, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datacenter.cli import main
from datacenter.store.engine import open_store
from datacenter.store.rollups import RollupMismatch
from datacenter.store.tables.rollups import rollup_route_days
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_batch


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{store_url}"\n'
        "[ingest]\naccept_unprotected = true\n"
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def test_check_finds_a_tampered_row_and_rebuild_repairs_it(
    config: Path, tmp_path: Path, store_url: str
) -> None:
    for args in (("init",), ("tenant", "add", "acme", "--name", "Acme"),
                 ("agent", "add", "--tenant", "acme", "edge-1")):  # fmt: skip
        assert run(config, *args).exit_code == 0
    incoming = tmp_path / "data" / "landing" / "acme" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    name, data = gen_batch([gen_outgoing_call(n, trunk=f"T{n % 2}") for n in range(6)])
    (incoming / name).write_bytes(data)
    assert run(config, "ingest", "--once").exit_code == 0
    checked = run(config, "rollups", "rebuild", "--check")
    assert checked.exit_code == 0, checked.output
    assert "acme: 0 difference(s)" in checked.output
    engine = open_store(store_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                rollup_route_days.update().where(rollup_route_days.c.trunk == "T1")
                .values(calls=rollup_route_days.c.calls + 1)
            ).rowcount  # fmt: skip
        assert changed == 1
        failed = run(config, "rollups", "rebuild", "--check", "--tenant", "acme")
        assert failed.exit_code == RollupMismatch.exit_code == 12
        assert "rollup_route_days" in failed.output and "calls=4" in failed.output
        assert "1 difference(s)" in failed.output and "Traceback" not in failed.output
        rebuilt = run(config, "rollups", "rebuild", "--tenant", "acme")
        assert rebuilt.exit_code == 0 and "rollup row(s) written" in rebuilt.output
        assert run(config, "rollups", "rebuild", "--check").exit_code == 0
    finally:
        engine.dispose()
