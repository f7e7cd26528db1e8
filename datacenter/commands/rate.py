"""`datacenter rate`: rate calls from a file or stdin against tariff files, without a database.

The technician's check before importing a tariff: the same engine the pipeline uses, fed from
files (ICDR JSON Lines, or a plain CSV of calls), printing one JSON object per call (the rated
call with its explanation, or the unrated reason) so the output can be read, diffed or piped
into ``jq``. ``--compare`` rates a carrier's invoice lines and reports where our cost differs.

Exit codes are the shared error classes' codes (docs/operations.md): 0 success; 1 (the code of
``CallCollectError``) ``--compare`` found differences; 2 (``ConfigError``) a bad dial plan or
route map, or a usage error; 3 (``ValidationError``) a bad tariff, or input lines that are not
calls.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click

from datacenter.rating.calls_csv import CallRow, CallRowError, CallsHeaderError, read_calls_csv
from datacenter.rating.carriers import CarrierRules, load_carrier_rules, single_carrier
from datacenter.rating.engine import RatedCall, RatingResult, rate_call
from datacenter.rating.money import format_minor
from datacenter.rating.numbering import DialPlan, load_dial_plan
from datacenter.rating.tariffs import TariffPlan, load_tariff
from shared.errors import CallCollectError, ConfigError, ICDRValidationError, ValidationError
from shared.icdr import ICDR, format_time

# The shared error classes' codes (docs/operations.md, Exit codes), so `rate` agrees with them.
EXIT_DIFFERENCES = CallCollectError.exit_code  # 1: --compare found calls priced differently
EXIT_CONFIG = ConfigError.exit_code  # 2: bad dial plan or route map, or a usage error
EXIT_BAD_INPUT = ValidationError.exit_code  # 3: bad tariff, or input lines that are not calls

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
@click.option(
    "--format", "input_format", type=click.Choice(["auto", "jsonl", "csv"]), default="auto",
    show_default=True,
    help="CALLS as ICDR JSON Lines or a plain CSV (number,start,duration,direction); "
    "auto: csv for a file named *.csv.",
)  # fmt: skip
@click.option(
    "--compare", "invoice", type=_FILE, default=None,
    help="A carrier's invoice as calls CSV with a cost column: rate each line and report "
    "those where our cost differs (CALLS is then not read).",
)  # fmt: skip
@click.argument("calls", type=click.File("r", encoding="utf-8"), default="-")
def rate_command(
    tariff_files: tuple[Path, ...],
    dial_plan_file: Path,
    carriers_file: Path | None,
    input_format: str,
    invoice: Path | None,
    calls: IO[str],
) -> None:
    """Rate calls from CALLS or stdin and print each result as JSON Lines.

    CALLS are ICDRs (JSON Lines) or a plain CSV of calls with the columns number, start,
    duration and optionally direction, id, trunk, route, cost (docs/rating.md, "Calls as CSV").

    Nothing is written anywhere: use it to check a new tariff or dial plan on real calls before
    importing it. Each output line is a rated call (cost, destination, tariff version and an
    `explanation` with every step and the arithmetic) or an unrated call with its reason code.
    A summary goes to stderr.

    Example, with the demo files shipped in datacenter/rating/demo:

    \b
        datacenter rate --tariff demo/britline.toml --dial-plan demo/london.toml \\
            --carriers demo/london-routes.toml demo/london-calls.jsonl

    Checking a tariff against a carrier's invoice (each invoice line is rated from its own
    number, start, duration and direction, and its cost column compared with ours):

    \b
        datacenter rate --tariff demo/britline.toml --dial-plan demo/london.toml \\
            --compare invoice.csv

    Exit status (the shared codes of docs/operations.md, "Exit codes"):

    \b
      0  success; with --compare: every line costs what the carrier charged
      1  --compare found lines that differ or that we cannot rate
      2  a bad dial plan or route map, or a usage error
      3  a bad tariff file, or input lines that are not calls (each is reported
         on stdout with its line number; the other lines are still rated)
    """
    plans = _load_plans(tariff_files)
    carriers = _carriers(carriers_file, plans)
    dial_plan = load_dial_plan(dial_plan_file)
    rater = _Rater(dial_plan, plans, carriers)
    if invoice is not None:
        with invoice.open(encoding="utf-8", newline="") as stream:
            sys.exit(_compare(rater, stream, dial_plan))
    as_csv = input_format == "csv" or (
        input_format == "auto" and getattr(calls, "name", "").lower().endswith(".csv")
    )
    if as_csv:
        _rate_csv(rater, calls, dial_plan)
    else:
        _rate_jsonl(rater, calls)
    _summary(rater.outcomes, rater.totals)
    if rater.outcomes["bad input"]:
        sys.exit(EXIT_BAD_INPUT)


class _Rater:
    """The engine with this run's configuration, counting outcomes and totals as it goes."""

    def __init__(
        self, dial_plan: DialPlan, plans: dict[str, TariffPlan], carriers: CarrierRules
    ) -> None:
        self.dial_plan, self.plans, self.carriers = dial_plan, plans, carriers
        self.outcomes: Counter[str] = Counter()
        self.totals: Counter[tuple[str, int]] = Counter()

    def rate(self, icdr: ICDR) -> RatingResult:
        result = rate_call(
            icdr, dial_plan=self.dial_plan, tariffs=self.plans, carriers=self.carriers
        )
        if isinstance(result, RatedCall):
            self.outcomes["zero-rated" if result.zero_reason else "rated"] += 1
            if result.currency:
                self.totals[(result.currency, result.decimals)] += result.cost
        else:
            self.outcomes[f"unrated {result.reason}"] += 1
        return result

    def bad(self, line: int, reason: str, detail: str) -> None:
        self.outcomes["bad input"] += 1
        _emit(sys.stdout, {"line": line, "rated": False, "reason": reason, "detail": detail})


def _rate_jsonl(rater: _Rater, calls: IO[str]) -> None:
    for number, line in enumerate(calls, start=1):
        if not line.strip():
            continue
        try:
            icdr = ICDR.from_json(line)
        except ICDRValidationError as exc:
            rater.bad(number, "INVALID_ICDR", str(exc))
            continue
        _emit(sys.stdout, {"line": number, **rater.rate(icdr).to_dict()})


def _csv_rows(stream: IO[str], dial_plan: DialPlan) -> Iterator[CallRow | CallRowError]:
    try:
        yield from read_calls_csv(stream, zone=dial_plan.zone())
    except CallsHeaderError as exc:
        raise ValidationError("calls CSV header", str(exc)) from exc


def _rate_csv(rater: _Rater, calls: IO[str], dial_plan: DialPlan) -> None:
    for row in _csv_rows(calls, dial_plan):
        if isinstance(row, CallRowError):
            rater.bad(row.line, "INVALID_CALL", str(row))
            continue
        _emit(sys.stdout, {"line": row.line, **rater.rate(row.icdr).to_dict()})


def _compare(rater: _Rater, invoice: IO[str], dial_plan: DialPlan) -> int:
    """Rate each invoice line and print those whose cost differs; the exit code."""
    equal = differ = 0
    theirs: defaultdict[str, Decimal] = defaultdict(Decimal)
    ours: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in _csv_rows(invoice, dial_plan):
        if isinstance(row, CallRowError):
            rater.bad(row.line, "INVALID_CALL", str(row))
            continue
        if row.carrier_cost is None:
            rater.bad(row.line, "INVALID_CALL", f"line {row.line}: column cost: is empty")
            continue
        result = rater.rate(row.icdr)
        currency = result.currency if isinstance(result, RatedCall) else ""
        our = (
            Decimal(result.cost).scaleb(-result.decimals) if isinstance(result, RatedCall) else None
        )
        theirs[currency or "?"] += row.carrier_cost
        if our is not None:
            ours[currency or "?"] += our
        if our is not None and our == row.carrier_cost:
            equal += 1
            continue
        differ += 1
        _emit(sys.stdout, _difference(row, result, our))
    money = ", ".join(
        f"{code}: carrier {theirs[code]}, ours {ours[code]}, difference {ours[code] - theirs[code]}"
        for code in sorted(theirs)
    )
    click.echo(
        f"{equal + differ} invoice lines compared: {equal} equal, {differ} differ"
        + (f", {rater.outcomes['bad input']} not calls" if rater.outcomes["bad input"] else "")
        + (f"; totals {money}" if money else ""),
        err=True,
    )
    if rater.outcomes["bad input"]:
        return EXIT_BAD_INPUT
    return EXIT_DIFFERENCES if differ else 0


def _difference(row: CallRow, result: RatingResult, our: Decimal | None) -> dict[str, Any]:
    icdr = row.icdr
    out: dict[str, Any] = {
        "line": row.line, "record_id": icdr.record_id,
        "number": icdr.dialled_digits or icdr.dnis, "start": format_time(icdr.start),
        "duration": icdr.talk_seconds, "carrier_cost": str(row.carrier_cost),
        "our_cost": None if our is None else str(our),
        "difference": None if our is None or row.carrier_cost is None
        else str(our - row.carrier_cost),
    }  # fmt: skip
    if isinstance(result, RatedCall):
        pricing = result.explanation.to_dict()
        out.update(
            currency=result.currency, destination=result.destination, prefix=result.prefix,
            billed_seconds=result.billed_seconds, arithmetic=pricing.get("arithmetic"),
        )  # fmt: skip
    else:
        out.update(reason=result.reason.value, detail=result.detail)
    return out


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
