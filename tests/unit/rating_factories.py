"""Factories for rating tests (calls: ``tests.factories.gen_rated_call``): one-version tariffs from inline CSV, dial plans."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datacenter.rating.bands import calendar_from_dict
from datacenter.rating.carriers import CarrierRules, single_carrier
from datacenter.rating.money import RoundingMode
from datacenter.rating.numbering import DialPlan, dial_plan_from_dict, load_dial_plan
from datacenter.rating.tariffs import (
    BandRule,
    TariffPlan,
    TariffVersion,
    parse_rates_csv,
)

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
CARRIER = "testco"
EPOCH_2025 = datetime(2025, 1, 1, tzinfo=UTC)

PEAK_CALENDAR: dict[str, Any] = {
    "weekday": {"00:00": "offpeak", "08:00": "peak", "18:00": "offpeak"},
    "weekend": {"00:00": "weekend"},
}


def gen_version(
    csv_text: str,
    *,
    currency: str = "EUR",
    decimals: int = 2,
    rounding: RoundingMode = RoundingMode.HALF_UP,
    calendar: dict[str, Any] | None = None,
    band_rule: BandRule = BandRule.PER_INCREMENT,
    valid_from: datetime = EPOCH_2025,
    valid_to: datetime | None = None,
    version: str = "v1",
    max_band_spans: int = 24,
) -> TariffVersion:
    cal = calendar_from_dict(calendar) if calendar is not None else None
    kwargs: dict[str, Any] = {} if cal is None else {"calendar": cal}
    destinations = parse_rates_csv(
        csv_text,
        file="test.csv",
        currency=currency,
        bands=cal.bands if cal is not None else frozenset({"all"}),
    )
    return TariffVersion(
        carrier=CARRIER, version=version, valid_from=valid_from, valid_to=valid_to,
        currency=currency, decimals=decimals, rounding=rounding, destinations=destinations,
        band_rule=band_rule, max_band_spans=max_band_spans, **kwargs,
    )  # fmt: skip


def gen_plan(*versions: TariffVersion) -> dict[str, TariffPlan]:
    return {CARRIER: TariffPlan(CARRIER, tuple(sorted(versions, key=lambda v: v.valid_from)))}


def gen_dial_plan(**overrides: Any) -> DialPlan:
    """A UK dial plan (no access digits) in Europe/London."""
    data: dict[str, Any] = {
        "site": "test-site", "timezone": "Europe/London", "country_code": "44", "region": "GB",
        "national_prefix": "0", "international_prefix": "00", "local_area_codes": ["20"],
        "national_number_length": 10, "emergency_numbers": ["999", "112"],
        "service_codes": ["100", "118xxx"],
        "ranges": [{"prefix": "447700900", "class": "mobile"},
                   {"prefix": "441632960", "class": "national"}],
    }  # fmt: skip
    data.update(overrides)
    return dial_plan_from_dict(data)


def gen_carriers() -> CarrierRules:
    return single_carrier(CARRIER)


def demo_dial_plan(name: str) -> DialPlan:
    return load_dial_plan(DEMO / f"{name}.toml")
