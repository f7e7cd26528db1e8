"""The agent installs and runs from `.[agent]` alone, without the data centre's libraries.

Builds this repository's wheel and the agent's dependency wheels once per session (from pip's
cache or the index), installs `callcollect[agent]` into a throwaway venv with ``--no-index``,
then runs the agent's commands and imports every driver there. About 30 s.
"""

from __future__ import annotations

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

pytestmark = [pytest.mark.install, pytest.mark.timeout(180)]


@pytest.fixture(scope="session")
def agent_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of callcollect and of everything `callcollect[agent]` needs."""
    source = tmp_path_factory.mktemp("source")  # build a copy: setuptools writes build/ in-tree
    for part in SOURCE_PARTS:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, source / part,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        else:
            shutil.copy2(ROOT / part, source / part)
    wheels = tmp_path_factory.mktemp("wheels")
    pip(sys.executable, "wheel", "--wheel-dir", str(wheels), f"{source}[agent]")
    return wheels


@pytest.fixture(scope="session")
def agent_venv(agent_wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("agent-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip(python, "install", "--no-index", "--find-links", str(agent_wheels), "callcollect[agent]")
    return venv


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
    probe = (
        "import importlib.util as u, json; "
        f"print(json.dumps([m for m in {DATACENTER_LIBRARIES!r} if u.find_spec(m)]))"
    )
    result = run(agent_venv, "python", "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert run(agent_venv, "python", "-c", "import paramiko, pyodbc").returncode == 0


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
