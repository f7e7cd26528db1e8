"""The two installable parts import only what their extras install (docs/architecture.md).

Statically (every import statement, at any depth, read with ``ast``): ``shared/`` imports only
the base dependencies, ``edge_agent/`` only those plus the ``agent`` extra (and ``systemd``),
``datacenter/`` only the base plus the ``datacenter`` extra. The allowed sets are read from
pyproject.toml, so a new import without its dependency, or a dependency moved to the wrong
part, fails here. At run time: importing the agent's CLI, service and every driver loads none
of the data centre's libraries.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.sources.registry import DRIVERS

ROOT = Path(__file__).resolve().parents[2]
OURS = {"edge_agent", "datacenter", "shared"}

# Distribution name -> the top-level modules it provides (where they differ, or it brings
# modules of its own dependencies that our code imports directly).
PROVIDES = {
    "pysocks": {"socks"},
    "g722": {"G722"},
    "argon2-cffi": {"argon2"},
    "systemd-python": {"systemd"},
    "flask": {"flask", "werkzeug", "markupsafe"},
    "flask-wtf": {"flask_wtf", "wtforms"},
    "python-dateutil": {"dateutil"},
    "tzdata": set(),  # zoneinfo reads it; nobody imports it
}
# A module that may import a package outside its part, and why.
EXCEPTIONS = {
    # `edge-agent simulate lync-cdr` fills a PostgreSQL stand-in; the `simulators` extra.
    ("edge_agent/simulators/lcscdr.py", "psycopg"),
    ("edge_agent/commands/simulate_lync.py", "psycopg"),
}
DATACENTER_ONLY = {"flask", "flask_wtf", "sqlalchemy", "alembic", "psycopg", "gunicorn"}
AGENT_ONLY = {"pyodbc", "pyroute2", "systemd", "paramiko", "socks"}


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def modules_of(requirements: list[str]) -> set[str]:
    """Top-level import names of pinned requirements (``name[extra]==1.2``)."""
    names: set[str] = set()
    for requirement in requirements:
        name = re.split(r"[\[=<>;]", requirement, maxsplit=1)[0].strip().lower()
        if name == "callcollect":
            continue
        names |= PROVIDES.get(name, {name.replace("-", "_")})
    return names


def allowed() -> dict[str, set[str]]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    extras = project["optional-dependencies"]
    base = modules_of(project["dependencies"])
    return {
        "shared": base,
        "edge_agent": base | modules_of(extras["agent"]) | modules_of(extras["systemd"]),
        "datacenter": base | modules_of(extras["datacenter"]),
    }


def third_party_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in OURS:
                yield top


def files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["shared", "edge_agent", "datacenter"])
def test_each_part_imports_only_its_own_dependencies(package: str) -> None:
    permitted = allowed()[package]
    strays = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in files(package)
        for module in third_party_imports(path)
        if module not in permitted and (str(path.relative_to(ROOT)), module) not in EXCEPTIONS
    )
    assert strays == [], f"imports outside the {package} part's dependencies"


def test_the_parts_do_not_share_their_own_libraries() -> None:
    """The data centre's stack is not in the agent's extra, nor the agent's in the data centre's."""
    parts = allowed()
    assert DATACENTER_ONLY.isdisjoint(parts["edge_agent"])
    assert AGENT_ONLY.isdisjoint(parts["datacenter"])
    assert (DATACENTER_ONLY | AGENT_ONLY).isdisjoint(parts["shared"])


def test_the_sides_do_not_import_each_other() -> None:
    crossings = [
        f"{path.relative_to(ROOT)}: {module}"
        for package, forbidden in [
            ("shared", {"edge_agent", "datacenter"}),
            ("edge_agent", {"datacenter"}),
            ("datacenter", {"edge_agent"}),
        ]
        for path in files(package)
        for module in own_imports(path)
        if module in forbidden
    ]
    assert crossings == []


def own_imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_the_agent_imports_paramiko_only_through_its_invoke_free_module() -> None:
    direct = [
        str(path.relative_to(ROOT))
        for path in files("edge_agent")
        if "paramiko" in third_party_imports(path)
    ]
    assert direct == ["edge_agent/delivery/ssh.py"]


def test_the_running_agent_loads_no_data_centre_library() -> None:
    """What `edge-agent run` and every driver load, transitively, in a fresh interpreter."""
    drivers = ", ".join(sorted(DRIVERS.values()))
    probe = (
        "import sys, edge_agent.cli, edge_agent.service, edge_agent.commands.service, "
        f"{drivers}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert "edge_agent" in loaded and "paramiko" in loaded  # the probe did import the agent
    assert loaded.isdisjoint(DATACENTER_ONLY | {"invoke"}), loaded & (DATACENTER_ONLY | {"invoke"})
