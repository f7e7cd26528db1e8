"""`edge-agent simulate mivb-smdr`: the command line of the MiVB SMDR simulator."""

from __future__ import annotations

from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.sources.mivb_smdr.layout import LayoutFlags, column_map


def test_writes_a_capture_of_the_chosen_layout() -> None:
    args = ["simulate", "mivb-smdr", "--count", "25", "--layout", "A+L2+X", "--write", "-"]
    result = CliRunner().invoke(main, [*args, "--start", "2026-05-14T09:00", "--clock", "12h"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 25
    assert {len(line) for line in lines} == {column_map(LayoutFlags.parse("A+L2+X")).length}
    assert all(line[1:6] == "05/14" for line in lines)


def test_same_seed_same_capture() -> None:
    args = ["simulate", "mivb-smdr", "--count", "5", "--write", "-", "--start", "2026-01-01T08:00"]
    first = CliRunner().invoke(main, [*args, "--seed", "3"]).stdout
    assert first == CliRunner().invoke(main, [*args, "--seed", "3"]).stdout
    assert first != CliRunner().invoke(main, [*args, "--seed", "4"]).stdout


def test_bad_arguments_fail_with_one_sentence() -> None:
    result = CliRunner().invoke(main, ["simulate", "mivb-smdr", "--layout", "Q", "--write", "-"])
    assert result.exit_code == 2  # a usage error (docs/operations.md)
    assert "unknown layout option 'Q'" in result.stderr and "Traceback" not in result.stderr
    result = CliRunner().invoke(main, ["simulate", "mivb-smdr", "--timezone", "Nowhere/Town"])
    assert result.exit_code == 2 and "Europe/London" in result.stderr
