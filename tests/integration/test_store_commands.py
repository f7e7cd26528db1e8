"""The admin commands through click's CliRunner, on both backends: init, tenant, agent, user, ingest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from datacenter.cli import main
from datacenter.store.engine import open_store, write_transaction
from datacenter.store.tables.core import calls
from datacenter.store.tables.core import users as users_table
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_batch

PASSWORD = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "datacenter.toml"
    # gen_batch writes plain CCB1 files; the CMS flow is in tests/integration/test_keys_command.py
    unprotected = "[ingest]\naccept_unprotected = true\n"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{store_url}"\n{unprotected}'
    )
    return path


def run(config: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)], input=input)


def ok(config: Path, *args: str, input: str | None = None) -> str:
    result = run(config, *args, input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.usefixtures("cheap_passwords")
def test_admin_flow_from_empty_store(config: Path, tmp_path: Path, store_url: str) -> None:
    refused = run(config, "tenant", "list")
    assert refused.exit_code == 8 and "run `datacenter init`" in refused.output  # StoreError

    assert "migrated from empty to revision" in ok(config, "init")
    assert "up to date" in ok(config, "init")
    assert (tmp_path / "data" / "secret_key").exists()

    ok(config, "tenant", "add", "acme", "--name", "Acme Ltd", "--timezone", "Europe/London")
    landing = tmp_path / "data" / "landing" / "acme"
    assert sorted(p.name for p in landing.iterdir()) == [
        "archive",
        "heartbeats",
        "incoming",
        "quarantine",
        "receipts",
        "recordings",
    ]
    assert "acme\t1\tEurope/London\tAcme Ltd" in ok(config, "tenant", "list")

    ok(config, "agent", "add", "--tenant", "acme", "edge-1", "--name", "Leeds")
    assert "acme\tedge-1\t-\tnever\t-\t-\tLeeds" in ok(config, "agent", "list")

    ok(config, "user", "add", "it@acme.example", "--role", "tenant", "--tenant", "acme",
       "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    ok(
        config,
        "user",
        "add",
        "ops@example.com",
        "--role",
        "admin",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    users = ok(config, "user", "list")
    assert "it@acme.example\ttenant\tacme\tnever\tenabled" in users
    assert "ops@example.com\tadmin\t-\tnever\tenabled" in users
    ok(config, "user", "add", "boss@acme.example", "--role", "tenant_admin", "--tenant", "acme",
       "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    engine = open_store(store_url)
    try:
        with write_transaction(engine) as conn:
            conn.execute(users_table.update().where(users_table.c.email == "it@acme.example")
                         .values(locked_at=datetime.now(UTC)))  # fmt: skip
    finally:
        engine.dispose()
    assert "it@acme.example\ttenant\tacme\tnever\tlocked" in ok(config, "user", "list")
    assert "unlocked it@acme.example" in ok(config, "user", "unlock", "it@acme.example")
    assert "was not locked" in ok(config, "user", "unlock", "it@acme.example")
    assert "boss@acme.example\ttenant_admin\tacme" in ok(config, "user", "list")

    name, data = gen_batch([gen_outgoing_call(n) for n in range(3)], sequence=4)
    (landing / "incoming" / name).write_bytes(data)
    assert "1 file(s): 1 stored" in ok(config, "ingest", "--once")
    assert "acme\tedge-1\t4\t" in ok(config, "agent", "list", "--tenant", "acme")
    engine = open_store(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(calls)).scalar_one() == 3
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        (("tenant", "add", "Bad Slug", "--name", "X"), None, "not a tenant slug"),
        (("tenant", "add", "acme", "--name", "X", "--timezone", "Nowhere/Town"), None, "IANA"),
        (("tenant", "add", "acme", "--name", "Again"), None, "already exists"),
        (("agent", "add", "--tenant", "nope", "edge-1"), None, "datacenter tenant add nope"),
        (("user", "add", "a@example.com", "--role", "admin", "--password-stdin"), "short\n",
         "use at least 10"),
        (("user", "add", "a@example.com", "--role", "tenant", "--password-stdin"), PASSWORD + "\n",
         "needs a tenant"),
        (("user", "add", "a@example.com", "--role", "tenant", "--tenant", "zzz", "--password-stdin"),
         PASSWORD + "\n", "no tenant 'zzz'"),
        (("ingest", "--once", "--watch"), None, "not both"),
    ],
)  # fmt: skip
def test_errors_are_one_sentence(
    config: Path, args: tuple[str, ...], input: str | None, message: str
) -> None:
    ok(config, "init")
    ok(config, "tenant", "add", "acme", "--name", "Acme")
    result = run(config, *args, input=input)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[web]\nworkers = 0\n")
    result = run(path, "init")
    assert result.exit_code == 2  # ConfigError
    assert "config key 'web.workers'" in result.output and "Fix:" in result.output


def test_unreachable_postgres_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "pg.toml"
    path.write_text(
        f'data_dir = "{tmp_path}"\n[store]\nurl = "postgresql+psycopg://nobody@127.0.0.1:1/x"\n'
    )
    result = run(path, "tenant", "list")
    assert result.exit_code == 8  # StoreError
    assert "cannot reach the store at postgresql+psycopg://nobody@127.0.0.1:1/x" in result.output
