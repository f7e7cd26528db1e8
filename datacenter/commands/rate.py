"""`datacenter rate`: rate ICDRs from a file or stdin against tariff files, without a database.

The technician's check before importing a tariff: the same engine the pipeline uses, fed from
files, printing one JSON object per call (the rated call with its explanation, or the unrated
reason) so the output can be read, diffed or piped into ``jq``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

import click

from datacenter.rating.carriers import CarrierRules, load_carrier_rules, single_carrier
from datacenter.rating.engine import RatedCall, rate_call
from datacenter.rating.money import format_minor
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.tariffs import TariffPlan, load_tariff
from shared.errors import ICDRValidationError
from shared.icdr import ICDR

EXIT_BAD_INPUT = 3  # some input lines were not valid ICDRs (each is reported, the rest rated)

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("rate")
@click.option(
    "--tariff", "tariff_files", type=_FILE, multiple=True, required=True,
    help="Tariff plan (TOML; its CSV rate decks beside it). Repeat for several carriers.",
)  # fmt: skip
@click.option(
    "--dial-plan", "dial_plan_file", type=_FILE, required=True, help="Site dial plan (TOML)."
)
@click.option(
    "--carriers", "carriers_file", type=_FILE, default=None,
    help="Route map (TOML). Optional with one --tariff: every call then uses that carrier.",
)  # fmt: skip
@click.argument("calls", type=click.File("r", encoding="utf-8"), default="-")
def rate_command(
    tariff_files: tuple[Path, ...], dial_plan_file: Path, carriers_file: Path | None, calls: IO[str]
) -> None:
    """Rate ICDRs (JSON Lines) from CALLS or stdin and print each result as JSON Lines.

    Nothing is written anywhere: use it to check a new tariff or dial plan on real calls before
    importing it. Each output line is a rated call (cost, destination, tariff version and an
    `explanation` with every step and the arithmetic) or an unrated call with its reason code.
    A summary goes to stderr.

    Example, with the demo files shipped in datacenter/rating/demo:

        datacenter rate --tariff demo/britline.toml --dial-plan demo/london.toml \\
            --carriers demo/london-routes.toml demo/london-calls.jsonl

    Exit status 0; 3 if some input lines were not valid ICDRs (each is reported on stdout with
    its line number, and the other lines are still rated) or a tariff plan has problems; 2 for
    a dial plan or route map with problems, a missing input file or a bad option. Every code is
    in docs/operations.md, "Exit codes".
    """
    plans = _load_plans(tariff_files)
    carriers = _carriers(carriers_file, plans)
    dial_plan = load_dial_plan(dial_plan_file)
    outcomes: Counter[str] = Counter()
    totals: Counter[tuple[str, int]] = Counter()
    out = sys.stdout
    for number, line in enumerate(calls, start=1):
        if not line.strip():
            continue
        try:
            icdr = ICDR.from_json(line)
        except ICDRValidationError as exc:
            outcomes["bad input"] += 1
            _emit(
                out, {"line": number, "rated": False, "reason": "INVALID_ICDR", "detail": str(exc)}
            )
            continue
        result = rate_call(icdr, dial_plan=dial_plan, tariffs=plans, carriers=carriers)
        if isinstance(result, RatedCall):
            outcomes["zero-rated" if result.zero_reason else "rated"] += 1
            if result.currency:
                totals[(result.currency, result.decimals)] += result.cost
        else:
            outcomes[f"unrated {result.reason}"] += 1
        _emit(out, {"line": number, **result.to_dict()})
    _summary(outcomes, totals)
    if outcomes["bad input"]:
        sys.exit(EXIT_BAD_INPUT)


def _load_plans(files: tuple[Path, ...]) -> dict[str, TariffPlan]:
    plans: dict[str, TariffPlan] = {}
    for path in files:
        plan = load_tariff(path)
        if plan.carrier in plans:
            raise click.BadParameter(
                f"two tariff files are for carrier {plan.carrier!r}; give one per carrier",
                param_hint="--tariff",
            )
        plans[plan.carrier] = plan
    return plans


def _carriers(path: Path | None, plans: dict[str, TariffPlan]) -> CarrierRules:
    if path is not None:
        return load_carrier_rules(path)
    if len(plans) != 1:
        raise click.UsageError(
            f"{len(plans)} tariffs given: add --carriers ROUTES.toml to say which carries each call"
        )
    return single_carrier(next(iter(plans)))


def _emit(out: IO[str], data: dict[str, Any]) -> None:
    out.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")


def _summary(outcomes: Counter[str], totals: Counter[tuple[str, int]]) -> None:
    parts = [f"{count} {what}" for what, count in sorted(outcomes.items())] or ["no calls"]
    money = [
        f"{format_minor(total, places)} {code}" for (code, places), total in sorted(totals.items())
    ]
    click.echo(", ".join(parts) + (f"; total {', '.join(money)}" if money else ""), err=True)
