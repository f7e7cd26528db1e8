"""Rating throughput: calls/s on one core against a 50,000-prefix tariff, vs a dict-lookup floor.

Two rows: the same calls rated against a tariff of simple rows (rate, fee, a/b increments, cap)
and against a tariff mix of the same prefixes using the richer shapes (first blocks, duration
tiers, free seconds before and after rounding, a long-call surcharge, rounding steps; see
docs/rating.md, "Tariff shapes"). It prints both, their ratio, and each one's ratio to the floor.

    .venv/bin/python benchmarks/rating.py            # 1,000,000 calls
    .venv/bin/python benchmarks/rating.py --quick    # 50,000 calls, a few seconds
    .venv/bin/python benchmarks/rating.py --profile  # cProfile of the quick run, top 25
    .venv/bin/python benchmarks/rating.py --freeze   # gc.freeze() after set-up (see below)

Set-up (not timed): a UK site dial plan; one carrier with two versions (the second starts
mid-month), a peak/off-peak/weekend calendar in Europe/London and 50,000 destination prefixes
(a CSV rate deck parsed by the real importer, so its load time is printed too); 20,000 distinct
valid numbers in 60 countries; a pool of calls with random start times over two months,
durations 0-2 h, 10 % unanswered, rated in a cycle until the call count is reached.

Timed (CPU time of this process, so other load on the machine does not count): ``rate_call``
for every call, in batches of 5,000 ICDRs built just before they are rated (as ingest rates a
batch it has just decoded; building them is not timed) and kept until the batch is done; cold
caches (first sight of a number, an hour of the calendar) included. The floor is the least
work any rater must do per call, measured on the same call sequence: one dict probe keyed on
the number. The ratio says how many dict probes a whole rating costs.

The garbage collector runs with Python's defaults and nothing is frozen: what the collector
costs is part of the figure (the rating library leaves the collector alone). ``--freeze`` shows
what a process owner gains by ``gc.freeze()`` once its tariffs are loaded, as a long-running
worker may choose to. The pool of calls stands in for batch files on disk, so it is held as
plain tuples of strings, numbers and datetimes, which the collector does not track (a worker
never holds 100,000 decoded calls; as 100,000 dicts the pool would be rescanned by every full
collection and weigh on the figure as if it were rating's own).

The number mix is generous to caches: each number is dialled about 50 times, uniformly. Real
traffic has a long tail of numbers seen once, so the run also rates calls to numbers it has
never seen (fresh E.164 numbers, the same tariff) and prints that cold rate on its own: the
rate for any share ``c`` of first sights is ``1 / ((1 - c) / all + c / cold)``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datacenter.rating.bands import Calendar, calendar_from_dict
from datacenter.rating.carriers import single_carrier
from datacenter.rating.engine import RatedCall, RatingResult, rate_call
from datacenter.rating.money import RoundingMode
from datacenter.rating.numbering import DialPlan, dial_plan_from_dict
from datacenter.rating.tariffs import TariffPlan, TariffVersion, parse_rates_csv
from shared.icdr import ICDR, Direction

FULL_CALLS = 1_000_000
QUICK_CALLS = 50_000
PREFIXES = 50_000
DISTINCT_NUMBERS = 20_000
POOL = 100_000
QUICK_POOL = 20_000
TARGET = 100_000  # calls/s
SHAPED_OVERHEAD = 0.15  # the shaped tariff may cost at most this much more CPU per call
COLD_CALLS = 5_000  # calls to numbers never seen (a fifth of it with --quick)
BATCH = 5_000  # calls rated and kept at a time, like one ingest batch
SEED = 20250715
REGIONS = [
    "GB",
    "FR",
    "DE",
    "ES",
    "IT",
    "NL",
    "BE",
    "IE",
    "PT",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "CZ",
    "AT",
    "CH",
    "HU",
    "RO",
    "GR",
    "TR",
    "US",
    "CA",
    "MX",
    "BR",
    "AR",
    "CL",
    "CO",
    "PE",
    "AU",
    "NZ",
    "JP",
    "KR",
    "CN",
    "HK",
    "SG",
    "IN",
    "PK",
    "BD",
    "TH",
    "VN",
    "MY",
    "ID",
    "PH",
    "ZA",
    "NG",
    "KE",
    "EG",
    "MA",
    "AE",
    "SA",
    "IL",
    "QA",
    "KW",
    "UA",
    "RS",
    "HR",
    "SK",
    "BG",
]
CALENDAR = {
    "weekday": {"00:00": "offpeak", "08:00": "peak", "18:00": "offpeak"},
    "weekend": {"00:00": "weekend"},
    "holidays": ["2025-08-25"],
}


def valid_numbers(
    rng: random.Random, count: int, *, avoid: frozenset[str] = frozenset()
) -> list[str]:
    """Distinct E.164 numbers libphonenumber accepts, varied from each region's examples."""
    seeds: list[str] = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                seeds.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[1:]
                )
    found: set[str] = set()
    while len(found) < count:
        seed = rng.choice(seeds)
        candidate = seed[:-4] + f"{rng.randrange(10_000):04d}"
        if (
            candidate not in found
            and candidate not in avoid
            and phonenumbers.is_valid_number(phonenumbers.parse("+" + candidate))
        ):
            found.add(candidate)
    return sorted(found)


def deck_prefixes(rng: random.Random, numbers: list[str]) -> list[str]:
    """50,000 prefixes: every number's leading 2-7 digits, then random fillers."""
    prefixes: set[str] = set()
    for number in numbers:
        for length in range(2, 8):
            prefixes.add(number[:length])
            if len(prefixes) >= PREFIXES // 2:
                break
    while len(prefixes) < PREFIXES:
        prefixes.add(rng.choice(numbers)[:3] + str(rng.randrange(10 ** rng.randrange(1, 6))))
    return sorted(prefixes)


def rate_deck(rng: random.Random, prefixes: list[str]) -> str:
    """Simple rows: a rate per band, a fee on some, a/b increments, a cap."""
    lines = [
        "prefix,destination,band,rate_per_minute,connection_fee,initial_increment,subsequent_increment,max_cost"
    ]
    for prefix in prefixes:
        a, b = rng.choice(((60, 60), (30, 6), (1, 1), (60, 1)))
        fee = rng.choice(("0", "0", "0.0150"))
        for band in ("peak", "offpeak", "weekend"):
            rate = f"0.{rng.randrange(1, 5000):04d}"
            lines.append(f"{prefix},Dest {prefix},{band},{rate},{fee},{a},{b},25.0000")
    return "\n".join(lines) + "\n"


# The shapes a shaped row draws from (columns after max_cost, docs/rating.md "Tariff shapes"):
# first_block_seconds, first_block_price, tiers, free_seconds, free_seconds_rounding, surcharge,
# surcharge_after, step_rounding.
SHAPES = (
    (60, "0.2500", "", "", "", "", "", ""),  # a first block, then the row's rate
    ("", "", "60={rate}/6", "", "", "", "", ""),  # 20 s blocks for a minute, then 6 s
    ("", "", "600=0.0100/60", "", "", "", "", ""),  # the first 10 minutes, then cheaper
    ("", "", "", 10, "before", "", "", ""),  # 10 free seconds before rounding
    ("", "", "", 10, "after", "", "", ""),  # ... and after
    ("", "", "", "", "", "0.5000", 3600, ""),  # a surcharge past an hour
    ("", "", "", "", "", "", "", "charge:4:half_up; subtotal:2:down"),  # two rounding steps
)


def shaped_deck(rng: random.Random, prefixes: list[str]) -> str:
    """The same prefixes; every row uses one of the shapes, with increments that fit it."""
    lines = [
        "prefix,destination,band,rate_per_minute,connection_fee,initial_increment,"
        "subsequent_increment,max_cost,first_block_seconds,first_block_price,tiers,free_seconds,"
        "free_seconds_rounding,surcharge,surcharge_after,step_rounding"
    ]
    for prefix in prefixes:
        shape = rng.choice(SHAPES)
        a, b = (20, 20) if "/6" in shape[2] else rng.choice(((60, 60), (30, 6), (1, 1), (60, 1)))
        if shape[2].startswith("600"):
            a, b = rng.choice(((60, 60), (1, 1), (60, 1)))  # 600 s is whole increments of these
        fee = rng.choice(("0", "0", "0.0150"))
        for band in ("peak", "offpeak", "weekend"):
            rate = f"0.{rng.randrange(1, 5000):04d}"
            cells = [str(c).format(rate=rate) for c in shape]
            lines.append(
                f"{prefix},Dest {prefix},{band},{rate},{fee},{a},{b},25.0000,{','.join(cells)}"
            )
    return "\n".join(lines) + "\n"


# One call of the pool: start, answer, end, talk seconds, dialled digits, answered. Plain tuples
# of untracked values, so the pool costs the garbage collector nothing (see the docstring).
Call = tuple[datetime, datetime | None, datetime, int, str, bool]
CALL_CONSTANTS: dict[str, Any] = {
    "agent_id": "a", "source_id": "lcs", "source_kind": "lcscdr", "direction": Direction.OUT,
    "trunk": "T1",
}  # fmt: skip


@dataclass(frozen=True)
class Workload:
    """What the run rates: the two rate decks, the pool of calls cycled through, cold calls.

    The decks are kept as text: each row parses its own when it starts and drops it when done,
    so only one 50,000-prefix tariff is in memory (and rescanned by the collector) at a time.
    """

    simple_deck: str
    shaped_deck: str  # the same prefixes, every row using one of the shapes
    calendar: Calendar
    pool: list[Call]
    cold: list[Call]  # one call to each of numbers the pool never dials


@dataclass
class Row:
    """One row's figures: CPU seconds rating, and the floor measured on the same batches."""

    seconds: float = 0.0
    floor_seconds: float = 0.0
    load_seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)


def build(calls: int) -> Workload:
    """The tariff, and the distinct calls the run cycles through."""
    rng = random.Random(SEED)
    quick = calls <= QUICK_CALLS
    numbers = valid_numbers(rng, DISTINCT_NUMBERS // 4 if quick else DISTINCT_NUMBERS)
    prefixes = deck_prefixes(rng, numbers)
    simple = rate_deck(rng, prefixes)
    # its own generator, so the pool of calls is the one the simple row always had
    shaped = shaped_deck(random.Random(SEED + 1), prefixes)
    pool = [_call(rng, rng.choice(numbers)) for _ in range(QUICK_POOL if quick else POOL)]
    fresh = valid_numbers(rng, COLD_CALLS // 5 if quick else COLD_CALLS, avoid=frozenset(numbers))
    cold = [_call(rng, number) for number in fresh]
    return Workload(simple, shaped, calendar_from_dict(CALENDAR), pool, cold)


def _plan(deck: str, calendar: Calendar) -> tuple[dict[str, TariffPlan], float]:
    """The deck parsed by the real importer (timed) into a plan with two versions."""
    started = time.perf_counter()
    destinations = parse_rates_csv(deck, file="bench.csv", currency="GBP", bands=calendar.bands)
    load_seconds = time.perf_counter() - started
    mid_month = datetime(2025, 7, 15, tzinfo=UTC)
    versions = tuple(
        TariffVersion(
            carrier="bench",
            version=name,
            valid_from=start,
            valid_to=end,
            currency="GBP",
            decimals=2,
            rounding=RoundingMode.HALF_UP,
            destinations=destinations,
            calendar=calendar,
        )
        for name, start, end in (
            ("v1", datetime(2025, 1, 1, tzinfo=UTC), mid_month),
            ("v2", mid_month, None),
        )
    )
    return {"bench": TariffPlan("bench", versions)}, load_seconds


def _call(rng: random.Random, number: str) -> Call:
    base = datetime(2025, 7, 1, tzinfo=UTC)
    dialled = "0" + number[2:] if number.startswith("44") else "00" + number
    start = base + timedelta(seconds=rng.randrange(60 * 86400))
    answered = rng.random() > 0.1
    talk = int(rng.expovariate(1 / 180)) % 7200 if answered else 0
    answer = start + timedelta(seconds=rng.randrange(3, 20)) if answered else None
    end = (answer or start) + timedelta(seconds=talk or rng.randrange(5, 30))
    return (start, answer, end, talk, dialled, answered)


def icdrs(pool: list[Call], first: int, stop: int) -> list[ICDR]:
    """Calls ``first``..``stop - 1`` of the cycle, as freshly decoded ICDRs."""
    batch = []
    for i in range(first, stop):
        start, answer, end, talk, dialled, answered = pool[i % len(pool)]
        batch.append(ICDR(
            record_id=f"r{i}", start=start, answer=answer, end=end, talk_seconds=talk,
            dialled_digits=dialled, answered=answered, **CALL_CONSTANTS,
        ))  # fmt: skip
    return batch


def fresh_dial_plan() -> DialPlan:
    """A new dial plan per row: its memo starts cold, as the row's tariff index does."""
    return dial_plan_from_dict({
        "site": "bench", "timezone": "Europe/London", "country_code": "44", "region": "GB",
        "national_prefix": "0", "international_prefix": "00", "national_number_length": 10,
        "local_area_codes": ["20"],
    })  # fmt: skip


def rate_row(
    work: Workload,
    deck: str,
    calls: int,
    *,
    profiler: cProfile.Profile | None,
    freeze: bool,
    cold: bool = False,
) -> tuple[Row, float]:
    """Parse ``deck``, rate ``calls`` calls of the pool against it; the cold rate if asked."""
    plans, load_seconds = _plan(deck, work.calendar)
    if freeze:  # the process owner's choice, never the library's: set-up objects live forever
        gc.collect()
        gc.freeze()
    dial_plan, carriers = fresh_dial_plan(), single_carrier("bench")

    def rate_batch(batch: list[ICDR]) -> tuple[list[RatingResult], float]:
        started = time.process_time()
        results = [
            rate_call(c, dial_plan=dial_plan, tariffs=plans, carriers=carriers) for c in batch
        ]
        return results, time.process_time() - started

    row = Row(load_seconds=load_seconds)
    floor_index = {call[4]: i for i, call in enumerate(work.pool)}
    for first in range(0, calls, BATCH):
        # Like ingest: a batch of freshly decoded ICDRs (not timed), then rated (timed).
        batch = icdrs(work.pool, first, min(first + BATCH, calls))
        started = time.process_time()
        hits = [floor_index.get(c.dialled_digits) for c in batch]
        row.floor_seconds += time.process_time() - started
        if profiler is not None:
            profiler.enable()
        results, spent = rate_batch(batch)
        row.seconds += spent
        if profiler is not None:
            profiler.disable()
        row.outcomes.update(_outcome(r) for r in results)
        del hits, results
    cold_rate = 0.0
    if cold:
        cold_results, cold_seconds = rate_batch(icdrs(work.cold, 0, len(work.cold)))
        if not all(isinstance(r, RatedCall) for r in cold_results):
            raise AssertionError("a cold call was not rated: the workload is broken")
        cold_rate = len(work.cold) / cold_seconds
    if freeze:
        gc.unfreeze()
    return row, cold_rate


def run(calls: int, *, profile: bool, freeze: bool = False) -> int:
    work = build(calls)
    profiler = cProfile.Profile() if profile else None
    # One row after the other, each with only its own tariff loaded and cold caches.
    simple, cold_rate = rate_row(
        work, work.simple_deck, calls, profiler=profiler, freeze=freeze, cold=True
    )
    gc.collect()
    shaped, _ = rate_row(work, work.shaped_deck, calls, profiler=profiler, freeze=freeze)
    if shaped.outcomes != simple.outcomes:
        raise AssertionError(f"the shaped tariff decided differently: {shaped.outcomes}")
    outcomes = simple.outcomes
    rated, zero, unrated = outcomes["priced"], outcomes["zero"], outcomes["unrated"]
    rate, shaped_rate = calls / simple.seconds, calls / shaped.seconds
    floor_rate = calls / simple.floor_seconds
    shaped_floor = calls / shaped.floor_seconds
    distinct = len({call[4] for call in work.pool})
    print(f"tariff: {PREFIXES:,} prefixes x 3 bands parsed in {simple.load_seconds:.2f} s; "
          f"{distinct:,} distinct numbers in {len(work.pool):,} distinct calls, cycled")  # fmt: skip
    print(f"rated {calls:,} calls in {simple.seconds:.2f} s of CPU: {rate:,.0f} calls/s "
          f"({rated:,} priced, {zero:,} zero-cost, {unrated:,} unrated; cold caches included)")  # fmt: skip
    print(f"dict-lookup floor: {floor_rate:,.0f} lookups/s; rating = {rate / floor_rate:.3f} x floor "
          f"({floor_rate / rate:.0f} dict lookups per rated call)")  # fmt: skip
    print(f"shaped tariff ({len(SHAPES)} shapes mixed, parsed in {shaped.load_seconds:.2f} s): "
          f"the same {calls:,} calls in {shaped.seconds:.2f} s of CPU: {shaped_rate:,.0f} calls/s")  # fmt: skip
    print(f"dict-lookup floor in that row: {shaped_floor:,.0f} lookups/s; shaped rating = "
          f"{shaped_rate / shaped_floor:.3f} x floor ({shaped_floor / shaped_rate:.0f} dict "
          f"lookups per rated call)")  # fmt: skip
    extra = shaped.seconds / simple.seconds - 1
    # Each row's multiple of its own floor (measured batch by batch beside it) cancels the
    # other load on a shared machine, which moves between the rows; the target is judged on it.
    relative = (shaped_floor / shaped_rate) / (floor_rate / rate) - 1
    print(f"shaped / simple: {shaped_rate / rate:.3f} x the simple rate ({extra:+.1%} CPU per "
          f"call); against each row's floor the shapes cost {relative:+.1%} "
          f"(target <= +{SHAPED_OVERHEAD:.0%}: {'met' if relative <= SHAPED_OVERHEAD else 'NOT met'})")  # fmt: skip
    print(f"first sight of a number: {len(work.cold):,} calls to numbers never seen before, "
          f"{cold_rate:,.0f} calls/s ({1e6 / cold_rate:.0f} us per call)")  # fmt: skip
    collector = "set-up frozen (--freeze)" if freeze else "Python's default, nothing frozen"
    print(f"garbage collector: {collector}")
    print(f"target {TARGET:,} calls/s: {'met' if rate >= TARGET else 'NOT met'}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


def _outcome(result: RatedCall | object) -> str:
    if isinstance(result, RatedCall):
        return "zero" if result.zero_reason else "priced"
    return "unrated"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CALLS:,} calls")
    parser.add_argument("--profile", action="store_true", help="cProfile the quick run")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after set-up")
    args = parser.parse_args()
    calls = QUICK_CALLS if args.quick or args.profile else FULL_CALLS
    return run(calls, profile=args.profile, freeze=args.freeze)


if __name__ == "__main__":
    sys.exit(main())
