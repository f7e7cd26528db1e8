"""Each part installs and runs alone: `.[agent]` without the data centre's libraries, and
`.[datacenter]` without the agent's ODBC, SSH and capture libraries.

Builds this repository's wheel and both parts' dependency wheels once per session (from pip's
cache or the index), installs each part into its own throwaway venv with ``--no-index``, then
runs its commands there. About 25 s on an idle machine.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.sources.registry import DRIVERS
from tests.fixtures.sshd import SshdServer

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PARTS = ["pyproject.toml", "README.md", "edge_agent", "datacenter", "shared"]
DATACENTER_LIBRARIES = ["flask", "flask_wtf", "gunicorn", "sqlalchemy", "alembic", "psycopg",
                        "argon2", "openpyxl", "phonenumbers", "requests"]  # fmt: skip
AGENT_LIBRARIES = ["paramiko", "pyodbc", "socks", "pyroute2", "systemd", "sqlite_utils"]

pytestmark = [pytest.mark.install, pytest.mark.timeout(180)]


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """Wheels of callcollect and of everything either part needs, built once per run.

    Shared by pytest-xdist workers (their temp folders have one parent): the first builds them
    under a lock, the others wait and reuse them.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # this run's, never an older one's
    folder = shared / "callcollect-wheels"
    with (shared / "callcollect-wheels.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "complete").exists():
            shutil.rmtree(folder, ignore_errors=True)
            build_wheels(folder, tmp_path_factory.mktemp("source"))
            (folder / "complete").touch()
    return folder


def build_wheels(folder: Path, source: Path) -> None:
    for part in SOURCE_PARTS:  # build a copy: setuptools writes build/ in the source tree
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, source / part,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        else:
            shutil.copy2(ROOT / part, source / part)
    pip(sys.executable, "wheel", "--wheel-dir", str(folder), f"{source}[agent,datacenter]")


def part_venv(part: str, wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp(f"{part}-venv")
    # no pip inside (ensurepip costs seconds): this interpreter's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip(sys.executable, "--python", str(venv / "bin" / "python"), "install", "--no-index",
        "--find-links", str(wheels), f"callcollect[{part}]")  # fmt: skip
    return venv


@pytest.fixture(scope="session")
def agent_venv(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return part_venv("agent", wheels, tmp_path_factory)


@pytest.fixture(scope="session")
def datacenter_venv(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return part_venv("datacenter", wheels, tmp_path_factory)


def importable(venv: Path, modules: list[str]) -> list[str]:
    probe = (
        "import importlib.util as u, json; "
        f"print(json.dumps([m for m in {modules!r} if u.find_spec(m)]))"
    )
    result = run(venv, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def pip(python: str, *args: str) -> None:
    result = subprocess.run(
        [python, "-m", "pip", "-q", "--disable-pip-version-check", *args],
        capture_output=True, text=True, cwd="/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def run(venv: Path, *command: str) -> subprocess.CompletedProcess[str]:
    program = venv / "bin" / command[0]
    return subprocess.run([str(program), *command[1:]], capture_output=True, text=True,
                          cwd="/", timeout=60)  # fmt: skip


def test_the_agent_venv_has_none_of_the_data_centre_libraries(agent_venv: Path) -> None:
    assert importable(agent_venv, DATACENTER_LIBRARIES) == []
    assert importable(agent_venv, ["paramiko", "pyodbc"]) == ["paramiko", "pyodbc"]


def test_the_data_centre_installs_and_runs_without_the_agent_libraries(
    datacenter_venv: Path,
) -> None:
    assert importable(datacenter_venv, AGENT_LIBRARIES) == []
    assert importable(datacenter_venv, ["flask", "sqlalchemy"]) == ["flask", "sqlalchemy"]
    listing = run(datacenter_venv, "datacenter", "--help")  # imports every command module
    assert listing.returncode == 0, listing.stderr
    assert "ingest" in listing.stdout and "serve" in listing.stdout


def test_edge_agent_runs_its_commands(agent_venv: Path) -> None:
    top = run(agent_venv, "edge-agent", "--help")
    assert top.returncode == 0, top.stderr
    assert "run" in top.stdout and "check" in top.stdout
    check = run(agent_venv, "edge-agent", "check", "--help")
    assert check.returncode == 0, check.stderr
    assert "--connect" in check.stdout


def test_edge_agent_check_builds_every_driver_and_logs_in(
    agent_venv: Path, sshd: SshdServer, tmp_path: Path
) -> None:
    """`check --connect` in the agent-only venv: each driver (lync-cdr: pyodbc), then SFTP."""
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[agent]\nid = "install-1"\ntenant = "demo"\ntimezone = "UTC"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {sshd.port}\nusername = "{sshd.username}"\n'
        f'private_key = "{sshd.client_key}"\nknown_hosts = "{sshd.known_hosts}"\n'
        '[delivery]\nprotection = "none"\n'
        + "".join(
            f'[[sources]]\nid = "{kind}"\nkind = "{kind}"\nhost = "127.0.0.1"\n'
            for kind in ["mivb-smdr", "mcs-ipsmdr", "mivo250-smdr", "mivo250-oai"]
        )
        + '[[sources]]\nid = "lync"\nkind = "lync-cdr"\n'
        'connection_string = "DRIVER={PostgreSQL Unicode};SERVER=127.0.0.1;DATABASE=none"\n'
    )
    result = run(agent_venv, "edge-agent", "check", "-c", str(config), "--connect")
    assert result.returncode == 0, result.stderr
    assert "logged in to 127.0.0.1" in result.stdout
    assert result.stdout.rstrip().endswith("configuration OK")


def test_every_agent_module_imports(agent_venv: Path) -> None:
    modules = ["edge_agent.service", "edge_agent.cli", "edge_agent.commands.service",
               *sorted(DRIVERS.values())]  # fmt: skip
    result = run(agent_venv, "python", "-c", f"import {', '.join(modules)}; print('imported')")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_a_command_whose_extra_is_missing_says_which_to_install(agent_venv: Path) -> None:
    """`simulate lync-cdr` needs psycopg (the `simulators` extra): one sentence, no traceback."""
    listing = run(agent_venv, "edge-agent", "simulate", "--help")
    assert listing.returncode == 0, listing.stderr
    assert "not installed: psycopg" in listing.stdout
    refused = run(agent_venv, "edge-agent", "simulate", "lync-cdr", "--dsn", "x")
    assert refused.returncode == 1
    assert "callcollect[agent,simulators]" in refused.stderr
    assert "Traceback" not in refused.stderr
