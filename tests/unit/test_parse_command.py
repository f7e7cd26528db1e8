"""`edge-agent parse` on capture files, through click's CliRunner."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.simulators.mivb_smdr import generate_calls
from shared.icdr import ICDR

CALLS = generate_calls(
    count=12, seed=9, start=datetime(2026, 12, 31, 23, 0), layout="L2", tz="Europe/London"
)
BANNER = "MiVoice Business SMDR - buffer replay follows"


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "smdr-capture.txt"
    lines = [BANNER, *(call.line for call in CALLS[:6]), "", *(call.line for call in CALLS[6:])]
    path.write_bytes(b"\r\n".join(line.encode("latin-1") for line in lines) + b"\r\n")
    return path


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["parse", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_parses_a_capture_file(capture: Path) -> None:
    code, out, err = run(
        "mivb-smdr",
        "--timezone",
        "Europe/London",
        "--received-at",
        "2027-01-01T12:00:00Z",
        str(capture),
    )
    assert code == 0, err
    records = [ICDR.from_json(line) for line in out.splitlines()]
    assert [r.raw for r in records] == [call.line for call in CALLS]
    assert [r.start for r in records] == [call.start for call in CALLS]
    assert [r.source_id for r in records] == ["capture"] * len(CALLS)
    assert "quarantined unit 1: not_a_record: " in err
    assert json.dumps(BANNER) in err
    assert "quarantined unit 8: not_a_record: blank line" in err
    assert err.splitlines()[-1] == (
        f"{len(CALLS)} parsed, 2 quarantined (not_a_record: 2); detected layouts: L2 ({len(CALLS)} records)"
    )


def test_a_wrong_layout_quarantines_every_record_but_does_not_fail(capture: Path) -> None:
    code, out, err = run("mivb-smdr", "--layout", "standard", str(capture))
    assert code == 0
    assert out == ""
    assert err.splitlines()[-1] == (
        f"0 parsed, {len(CALLS) + 2} quarantined (layout_mismatch: {len(CALLS)}, not_a_record: 2)"
    )


def test_options_reach_the_parser(capture: Path) -> None:
    line = CALLS[0].line.encode()
    code, out, _ = run(
        "mivb-smdr",
        "--option",
        "layout=L2",
        "--option",
        "year_tolerance_days=0",
        "--received-at",
        "2027-06-01T00:00:00+02:00",
        "--source-id",
        "pbx-main",
        "-",
        stdin=line + b"\n",
    )
    assert code == 0
    rec = ICDR.from_json(out)
    assert rec.source_id == "pbx-main"
    assert rec.start.year == 2026 and "layout" not in rec.extra


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--option", "clock=36h"],
            "option clock: '36h' is not a clock. Fix: use auto, 12h or 24h",
        ),
        (["--layout", "A+Q"], "option layout: unknown layout option 'Q'"),
        (["--option", "nonsense"], "'nonsense' is not KEY=VALUE"),
        (["--option", "colour=blue"], "option colour: is not an option of this source kind"),
        (["--timezone", "Mars/Olympus"], "'Mars/Olympus' is not an IANA time zone"),
        (["--received-at", "yesterday"], "'yesterday' is not ISO 8601"),
    ],
)
def test_bad_options_fail_with_one_sentence(capture: Path, args: list[str], message: str) -> None:
    code, out, err = run("mivb-smdr", *args, str(capture))
    assert code != 0
    assert message in err
    assert "Traceback" not in err and out == ""


def test_an_unreadable_file_fails_clearly(tmp_path: Path) -> None:
    code, _, err = run("mivb-smdr", str(tmp_path / "missing.txt"))
    assert code == 2
    assert "missing.txt" in err and "No such file" in err


def test_an_unknown_kind_lists_the_known_ones(capture: Path) -> None:
    code, _, err = run("fax-log", str(capture))
    assert code == 2
    assert "mivb-smdr" in err


def test_help_names_the_kinds() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "KIND is a registered source kind:" in out and "mivb-smdr" in out
    assert "edge-agent parse mivb-smdr --layout auto" in out
