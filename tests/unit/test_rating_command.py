"""`datacenter rate`: ICDRs in, rated JSON Lines out, no database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from datacenter.cli import main
from tests.unit.rating_factories import DEMO

LONDON_ARGS = [
    "rate", "--tariff", str(DEMO / "britline.toml"), "--dial-plan", str(DEMO / "london.toml"),
    "--carriers", str(DEMO / "london-routes.toml"),
]  # fmt: skip


def run(args: list[str], stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, args, input=stdin)


def test_rates_the_demo_calls_with_explanations() -> None:
    result = run([*LONDON_ARGS, str(DEMO / "london-calls.jsonl")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_line = {d["line"]: d for d in lines}
    assert len(lines) == len((DEMO / "london-calls.jsonl").read_text().splitlines())
    # line 2 is worked example 5: 1234 s to France mobile at 0.1500, 60/1, half-up
    assert (by_line[2]["cost"], by_line[2]["prefix"], by_line[2]["destination"]) == (
        "3.09", "336", "France mobile",
    )  # fmt: skip
    assert by_line[2]["explanation"]["raw"] == "3.0850"
    assert by_line[1]["bands"] == ["day", "evening"]  # 17:58:30 + 300 s crosses 18:00
    assert by_line[4]["tariff_version"] == "britline-2025-07"  # after the mid-month change
    assert by_line[5]["tariff_version"] == "britline-2025-01"
    assert (by_line[7]["zero_reason"], by_line[11]["zero_reason"]) == ("emergency", "internal")
    assert (by_line[12]["reason"], by_line[13]["reason"]) == ("AMBIGUOUS_NUMBER", "INVALID_NUMBER")
    assert "total 20.77 GBP" in result.stderr


def test_reads_stdin_and_reports_bad_lines_by_number() -> None:
    good = (DEMO / "toronto-calls.jsonl").read_text().splitlines()[0]
    args = [
        "rate",
        "--tariff",
        str(DEMO / "northtel.toml"),
        "--dial-plan",
        str(DEMO / "toronto.toml"),
    ]
    result = run(args, stdin=f'{good}\nnot json\n\n{{"record_id": "x"}}\n')
    assert result.exit_code == 3
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["line"], d.get("cost"), d.get("reason")) for d in lines] == [
        (1, "0.12", None), (2, None, "INVALID_ICDR"), (4, None, "INVALID_ICDR"),
    ]  # fmt: skip
    assert "not valid JSON" in lines[1]["detail"]
    assert "missing" in lines[2]["detail"]


def test_two_tariffs_need_a_route_map(tmp_path: Path) -> None:
    args = ["rate", "--tariff", str(DEMO / "britline.toml"), "--tariff", str(DEMO / "northtel.toml"),
            "--dial-plan", str(DEMO / "london.toml"), str(DEMO / "london-calls.jsonl")]  # fmt: skip
    result = run(args)
    assert result.exit_code == 2
    assert "add --carriers" in result.output


def test_a_bad_tariff_is_one_error_naming_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "deck.csv").write_text("prefix,destination,rate_per_minute\n33,France,0.1.5\n")
    (tmp_path / "plan.toml").write_text(
        'carrier = "x"\ncurrency = "EUR"\n[[version]]\nid = "a"\nvalid_from = "2025-01-01"\nrates = "deck.csv"\n'
    )
    result = run(["rate", "--tariff", str(tmp_path / "plan.toml"), "--dial-plan",
                  str(DEMO / "london.toml")], stdin="")  # fmt: skip
    assert result.exit_code == 3
    assert "deck.csv:2: column rate_per_minute" in result.output
    assert "Traceback" not in result.output


def test_help_lists_the_exit_codes_the_command_uses() -> None:
    result = run(["rate", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for code in ("0 success", "1 --compare found", "2 a bad dial plan", "3 a bad tariff"):
        assert code in text
    assert "docs/operations.md" in text


def test_a_bad_dial_plan_exits_with_the_config_error_code(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text('site = "x"\n')  # no country_code, no region
    result = run(["rate", "--tariff", str(DEMO / "britline.toml"), "--dial-plan",
                  str(tmp_path / "plan.toml")], stdin="")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


INVOICE_HEADER = "number,start,duration,direction,cost\n"
# worked example 5 (1234 s to France mobile, 3.09) and a 95 s London call: 0.0150 fee +
# 0.0200/min, 60/60 -> 120 s -> 0.0150 + 0.0400 = 0.0550 -> 0.06 (demo britline day rate)
EXAMPLE_5 = "+33612345678,2025-03-04T10:00:05Z,1234,out,3.09\n"
LONDON_95 = "020 7946 0123,2025-03-04T11:00:04Z,95,out,{cost}\n"


def test_a_calls_csv_is_rated_like_icdrs(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text(INVOICE_HEADER + EXAMPLE_5 + "+33612345678,yesterday,60,out,\n")
    result = run([*LONDON_ARGS, str(calls)])
    assert result.exit_code == 3, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert (lines[0]["line"], lines[0]["cost"], lines[0]["prefix"]) == (2, "3.09", "336")
    assert (lines[1]["line"], lines[1]["reason"]) == (3, "INVALID_CALL")
    assert "column start" in lines[1]["detail"]


def test_compare_exits_0_when_every_line_agrees(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(INVOICE_HEADER + EXAMPLE_5 + LONDON_95.format(cost="0.06"))
    result = run([*LONDON_ARGS, "--compare", str(invoice)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "2 invoice lines compared: 2 equal, 0 differ" in result.stderr
    assert "carrier 3.15, ours 3.15, difference 0.00" in result.stderr


def test_compare_reports_each_difference_and_exits_1(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(INVOICE_HEADER + EXAMPLE_5 + LONDON_95.format(cost="0.10"))
    result = run([*LONDON_ARGS, "--compare", str(invoice)])
    assert result.exit_code == 1, result.output
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert (line["line"], line["carrier_cost"], line["our_cost"], line["difference"]) == (
        3, "0.10", "0.06", "-0.04",
    )  # fmt: skip
    assert line["billed_seconds"] == 120
    assert "carrier 3.19, ours 3.15, difference -0.04" in result.stderr


def test_compare_needs_a_cost_on_every_line(tmp_path: Path) -> None:
    invoice = tmp_path / "invoice.csv"
    invoice.write_text(INVOICE_HEADER + LONDON_95.format(cost=""))
    result = run([*LONDON_ARGS, "--compare", str(invoice)])
    assert result.exit_code == 3
    assert "column cost: is empty" in result.stdout


def test_a_calls_csv_with_a_wrong_header_is_one_validation_error(tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text("dialled,when,seconds\n1,2,3\n")
    result = run([*LONDON_ARGS, str(calls)])
    assert result.exit_code == 3
    assert "missing: number, start, duration" in result.output
    assert "Traceback" not in result.output
