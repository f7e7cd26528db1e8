"""Tariff shapes beyond ``a/b`` increments: first blocks, tiers, free seconds, surcharges, steps.

A rate row (``tariffs.Rate``) prices a call as ``fee + rate x billed / 60`` with an initial and a
subsequent increment. Real price lists also use, per row (docs/rating.md, "Tariff shapes"):

- a **first block** priced on its own: the first N seconds cost a fixed price, whatever part of
  them was used; the rate and increments then apply from second N;
- **duration tiers**: from second S on, another per-minute rate in its own increments;
- **free seconds** deducted from the billed time, before or after rounding to increments;
- a one-off **surcharge** once a call lasts longer than N seconds;
- **rounding steps** before the call's one final rounding: per increment, per charge line, or
  on the subtotal, each to its own decimals and mode.

A ``Shape`` holds these for one row, with the row's time split into ``Segment`` values (first
block, base rate, tiers) computed once at load. ``price_shape`` prices a talk time against it,
all in integers (sixtieths of a micro-unit, as ``money``), and returns the lines and notes the
explanation shows. Rows without any of these keep ``shape = None`` and the engine's short path.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from enum import StrEnum

from datacenter.rating.money import (
    MICRO_PLACES,
    RoundingMode,
    format_micro,
    minor_denominator,
    parse_amount,
    round_to_minor,
)

OPEN = -1  # a segment without an end
NO_FIXED = -1  # a segment priced by its rate, not a fixed price
ROW_RATE = -1  # a segment priced at the row's own rate_per_minute (the base rate)


class Scope(StrEnum):
    """What a rounding step rounds (applied in this order, then the call's final rounding)."""

    INCREMENT = "increment"  # the price of each increment
    CHARGE = "charge"  # each charge line (first block, base rate, each tier)
    SUBTOTAL = "subtotal"  # fee + charges + surcharge, before minimum and maximum


_SCOPE_ORDER = {Scope.INCREMENT: 0, Scope.CHARGE: 1, Scope.SUBTOTAL: 2}


# A tier: from ``start`` seconds on, ``rate_per_minute`` (micro-units) in ``increment`` blocks.
# Plain tuples of ints (as ``Segment`` below): CPython stops tracking such tuples in its garbage
# collector, so a large shaped deck does not make every collection of a rating worker slower.
Tier = tuple[int, int, int]  # start, rate_per_minute, increment


@dataclass(frozen=True, slots=True)
class StepRounding:
    scope: Scope
    decimals: int
    mode: RoundingMode


# One stretch of chargeable time and how it is priced: first second (offset into the chargeable
# time), end (exclusive, or OPEN), micro-units per 60 s (0 for a fixed block), first increment,
# later increments, micro-units for the whole segment (or NO_FIXED), and its label ("first
# block", "base rate", "tier from 600 s").
Segment = tuple[int, int, int, int, int, int, str]


@dataclass(frozen=True, slots=True)
class Shape:
    """The shapes one rate row uses; ``segments`` is derived at load from them and the row."""

    segments: tuple[Segment, ...]
    first_block_seconds: int = 0
    first_block_price: int = 0
    tiers: tuple[Tier, ...] = ()
    free_seconds: int = 0
    free_after_rounding: bool = False
    surcharge: int = 0
    surcharge_after: int = 0
    steps: tuple[StepRounding, ...] = ()
    # derived once, so pricing a call does no set-up (the rating hot path)
    by_increment: StepRounding | None = field(init=False, compare=False, repr=False)
    by_charge: StepRounding | None = field(init=False, compare=False, repr=False)
    by_subtotal: StepRounding | None = field(init=False, compare=False, repr=False)
    notes: tuple[str, ...] = field(init=False, compare=False, repr=False)
    surcharge_note: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        scopes = {step.scope: step for step in self.steps}
        set_ = object.__setattr__
        set_(self, "by_increment", scopes.get(Scope.INCREMENT))
        set_(self, "by_charge", scopes.get(Scope.CHARGE))
        set_(self, "by_subtotal", scopes.get(Scope.SUBTOTAL))
        notes = []
        if self.free_seconds:
            when = "after" if self.free_after_rounding else "before"
            notes.append(f"{self.free_seconds} free seconds taken {when} rounding to increments")
        for step in self.steps:
            what = {Scope.INCREMENT: "each increment", Scope.CHARGE: "each charge line",
                    Scope.SUBTOTAL: "the subtotal"}[step.scope]  # fmt: skip
            notes.append(f"{what} rounded {step.mode.value} to {step.decimals} decimals")
        set_(self, "notes", tuple(notes))
        set_(
            self, "surcharge_note", f"surcharge: the call lasted more than {self.surcharge_after} s"
        )


# One charge line of a shaped call, in the engine's charge layout: band, UTC epoch second of the
# line's first billed second, billed seconds charged, increments, rate per minute (micro-units;
# 0 for a fixed block), amount (sixtieths of a micro-unit, after increment and charge rounding),
# label ("first block", "base rate", "tier from 600 s").
LineParts = tuple[str, int, int, int, int, int, str]
# billed seconds, lines, sum of the lines, surcharge (sixtieths of a micro-unit), notes
Priced = tuple[int, tuple[LineParts, ...], int, int, tuple[str, ...]]


@functools.lru_cache(maxsize=4096)  # rows with the same shape share one object (see ``Tier``)
def build_shape(
    *,
    initial: int,
    subsequent: int,
    first_block_seconds: int = 0,
    first_block_price: int = 0,
    tiers: tuple[Tier, ...] = (),
    free_seconds: int = 0,
    free_after_rounding: bool = False,
    surcharge: int = 0,
    surcharge_after: int = 0,
    steps: tuple[StepRounding, ...] = (),
) -> Shape | str | None:
    """The row's shape; None if it uses none of them; a str says what is inconsistent."""
    if not (first_block_seconds or tiers or free_seconds or surcharge or steps):
        return None
    problem = _check(first_block_seconds, initial, subsequent, tiers, free_after_rounding, steps)
    if problem:
        return problem
    segments: list[Segment] = []
    if first_block_seconds:
        segments.append((
            0, first_block_seconds, 0, first_block_seconds, first_block_seconds,
            first_block_price, "first block",
        ))  # fmt: skip
    ends = [t[0] for t in tiers] + [OPEN]
    segments.append(
        (first_block_seconds, ends[0], ROW_RATE, initial, subsequent, NO_FIXED, "base rate")
    )
    for (start, rate, step), end in zip(tiers, ends[1:], strict=True):
        segments.append((start, end, rate, step, step, NO_FIXED, f"tier from {start} s"))
    return Shape(
        tuple(segments), first_block_seconds, first_block_price, tiers, free_seconds,
        free_after_rounding, surcharge, surcharge_after,
        steps,  # parse_steps gives them in order, shared between rows
    )  # fmt: skip


def _check(
    first_block: int,
    initial: int,
    subsequent: int,
    tiers: tuple[Tier, ...],
    free_after: bool,
    steps: tuple[StepRounding, ...],
) -> str:
    starts = [first_block] + [t[0] for t in tiers]
    if any(b <= a for a, b in itertools.pairwise(starts)):
        return "tiers must start after the first block and each after the one before"
    # every closed segment must be whole increments, so rounding never runs past its end
    closed = [(first_block, starts[1] if len(starts) > 1 else None, initial, subsequent)]
    closed += [
        (t[0], starts[i + 2] if i + 2 < len(starts) else None, t[2], t[2])
        for i, t in enumerate(tiers)
    ]
    for lo, hi, first, step in closed:
        if hi is not None and (hi - lo < first or (hi - lo - first) % step):
            return (
                f"the stretch {lo}-{hi} s is not a whole number of {first}/{step} s increments; "
                "move the tier start or change its increments"
            )
    scopes = [s.scope for s in steps]
    if len(set(scopes)) != len(scopes):
        return "each rounding step scope may appear once"
    if free_after and Scope.INCREMENT in scopes:
        return "free seconds after rounding cannot be combined with per-increment rounding"
    return ""


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """``"600=0.0500/60; 1200=0.0300/1"`` -> tiers. ValueError with the reason."""
    tiers: list[Tier] = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        start, sep, rest = item.partition("=")
        rate, sep2, step = rest.partition("/")
        if not (sep and sep2 and start.strip().isdigit() and step.strip().isdigit()):
            raise ValueError(f"{item!r} must be START=RATE/INCREMENT, e.g. 600=0.0500/60")
        if int(step) < 1 or int(start) < 1:
            raise ValueError(f"{item!r}: start and increment must be >= 1")
        tiers.append((int(start), parse_amount(rate), int(step)))
    return tuple(tiers)


def tiers_text(tiers: tuple[Tier, ...]) -> str:
    return "; ".join(f"{start}={format_micro(rate)}/{step}" for start, rate, step in tiers)


@functools.lru_cache(maxsize=256)  # a deck repeats a few step texts: rows share their objects
def parse_steps(text: str) -> tuple[StepRounding, ...]:
    """``"charge:4:half_up; subtotal:2:up"`` -> rounding steps. ValueError with the reason."""
    steps: list[StepRounding] = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        parts = [p.strip() for p in item.split(":")]
        try:
            scope, places, mode = parts
            step = StepRounding(Scope(scope), int(places), RoundingMode(mode))
        except ValueError as exc:
            raise ValueError(
                f"{item!r} must be SCOPE:DECIMALS:MODE with SCOPE increment, charge or subtotal "
                "and MODE half_up, up, half_even or down, e.g. charge:4:half_up"
            ) from exc
        if not 0 <= step.decimals <= MICRO_PLACES:
            raise ValueError(f"{item!r}: decimals must be 0-{MICRO_PLACES}")
        steps.append(step)
    return tuple(sorted(steps, key=lambda step: _SCOPE_ORDER[step.scope]))


def steps_text(steps: tuple[StepRounding, ...]) -> str:
    return "; ".join(f"{s.scope.value}:{s.decimals}:{s.mode.value}" for s in steps)


def _round60(amount60: int, step: StepRounding) -> int:
    """Round sixtieths of a micro-unit to ``step.decimals`` and give it back in sixtieths."""
    denominator = minor_denominator(step.decimals)
    return round_to_minor(amount60, denominator, step.mode) * denominator


def price_shape(
    shape: Shape,
    row_rate: int,
    duration: int,
    band: str,
    start: int,
    *,
    lines_too: bool = True,
) -> Priced:
    """Bill ``duration`` talk seconds (after any grace check) against ``shape``.

    ``row_rate`` is the row's rate per minute (the base segment's); ``band`` and ``start`` (UTC
    epoch seconds of the first billed second) label the lines. Rating passes
    ``lines_too=False`` (it keeps only the totals; the explanation asks again).
    """
    free, after = shape.free_seconds, shape.free_after_rounding
    chargeable = duration - free if free and not after else duration
    by_increment, by_charge = shape.by_increment, shape.by_charge
    lines: list[LineParts] = []
    billed = total = 0
    for lo, hi, per_minute, first, step, fixed, label in shape.segments:
        if chargeable <= lo:
            break
        if per_minute == ROW_RATE:
            per_minute = row_rate
        if fixed != NO_FIXED:
            seconds, count = hi - lo, 1
        else:
            portion = chargeable - lo if hi == OPEN or chargeable < hi else hi - lo
            if portion <= first:
                seconds, count = first, 1
            else:
                later = -(-(portion - first) // step)
                seconds, count = first + later * step, 1 + later
        charged = seconds - min(free - lo, seconds) if after and free > lo else seconds
        if fixed != NO_FIXED:
            amount = fixed * 60 if charged else 0  # waived only when wholly free
        elif by_increment is not None:
            amount = _round60(per_minute * first, by_increment) + (count - 1) * _round60(
                per_minute * step, by_increment
            )
        else:
            amount = per_minute * charged
        if by_charge is not None:
            amount = _round60(amount, by_charge)
        if lines_too:
            lines.append((band, start + lo, charged, count, per_minute, amount, label))
        billed += charged
        total += amount
    if shape.surcharge and duration > shape.surcharge_after:
        notes = (*shape.notes, shape.surcharge_note)
        return billed, tuple(lines), total, shape.surcharge * 60, notes
    return billed, tuple(lines) if lines else (), total, 0, shape.notes


def round_subtotal(amount60: int, step: StepRounding) -> int:
    return _round60(amount60, step)
