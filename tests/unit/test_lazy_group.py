"""Commands imported when used: every registered one resolves, and a missing extra is one sentence."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge_agent.cli import COMMANDS, main
from edge_agent.commands.simulate import simulate_command
from shared.lazy_group import LazyGroup

SIMULATOR_NAMES = {"mivb-smdr", "lync-cdr", "mcs-ipsmdr", "mivo250-smdr", "mivo250-oai"}


@pytest.mark.parametrize(
    ("group", "names"),
    [(main, sorted(COMMANDS)), (simulate_command, sorted(SIMULATOR_NAMES))],
    ids=["top", "sim"],
)
def test_every_registered_command_resolves_under_its_own_name(
    group: LazyGroup, names: list[str]
) -> None:
    ctx = click.Context(group)
    assert group.list_commands(ctx) == names
    for name in names:
        command = group.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name


@pytest.fixture
def module_needing_a_missing_package(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "needs_missing_pkg.py").write_text(
        "import callcollect_no_such_package\nimport click\ncmd = click.Command('x')\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield "needs_missing_pkg"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("needs_missing_pkg", None)


def test_a_command_whose_package_is_missing_is_listed_and_refuses_in_one_sentence(
    module_needing_a_missing_package: str,
) -> None:
    group = LazyGroup(
        "tool",
        lazy={"needy": f"{module_needing_a_missing_package}:cmd"},
        install_hint="pip install 'callcollect[extra]'",
    )
    listing = CliRunner().invoke(group, ["--help"])
    assert listing.exit_code == 0
    assert "(not installed: callcollect_no_such_package)" in listing.output
    refused = CliRunner().invoke(group, ["needy", "--any", "arg"])
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "Error: `needy` needs the Python package 'callcollect_no_such_package', which this "
        "installation lacks; install it with pip install 'callcollect[extra]'"
    )


def test_a_missing_module_of_our_own_is_a_bug_and_raises() -> None:
    group = LazyGroup("tool", lazy={"gone": "edge_agent.commands.no_such_module:cmd"})
    with pytest.raises(ModuleNotFoundError):
        group.get_command(click.Context(group), "gone")
