"""The pure side of cost alarms: usual volume, short-call bursts, local spans, per-call rules,
the webhook signature and the back-off."""

from __future__ import annotations

import ipaddress
import re
import socket
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacenter.cost_alarms.deliver import (
    IPAddress,
    Resolver,
    backoff,
    check_destination,
    is_public,
    sign,
    verify_signature,
)
from datacenter.cost_alarms.evaluate import (
    CallFact,
    Finding,
    local_day_span,
    local_hour_span,
    merge_findings,
    per_call_findings,
    short_call_bursts,
    usual_volume,
)
from datacenter.cost_alarms.rules import DEFAULT_HOURS, RuleKind, parse_rules
from shared.errors import NotifyError

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2025, 7, 16, 9, tzinfo=UTC)


def test_usual_volume_is_median_plus_factor_times_scaled_mad() -> None:
    usual = usual_volume([10, 12, 30, 11], Decimal(3))
    # median 11.5; deviations 1.5 0.5 18.5 0.5 -> MAD 1.0; spread 1.4826; limit 15.9478
    assert (usual.median, usual.mad) == (Decimal("11.5"), Decimal("1.0"))
    assert usual.limit == Decimal("11.5") + 3 * Decimal("1.4826")


def test_a_steady_history_still_has_a_spread_of_one() -> None:
    usual = usual_volume([7, 7, 7, 7], Decimal(2))
    assert (usual.median, usual.mad, usual.limit) == (Decimal(7), Decimal(0), Decimal(9))


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=26), st.integers(1, 50))
def test_the_limit_is_never_below_the_median_plus_the_factor(
    history: list[int], factor: int
) -> None:
    usual = usual_volume(history, Decimal(factor))
    assert usual.limit >= usual.median + factor


def test_local_hour_spans_across_the_clock_changes() -> None:
    # 30 March 2025: 01:00 GMT jumps to 02:00 BST; 26 October: 02:00 BST back to 01:00 GMT.
    assert local_hour_span(date(2025, 3, 30), 0, LONDON) == (
        datetime(2025, 3, 30, 0, tzinfo=UTC), datetime(2025, 3, 30, 1, tzinfo=UTC),
    )  # fmt: skip
    assert local_hour_span(date(2025, 3, 30, ), 2, LONDON) == (
        datetime(2025, 3, 30, 1, tzinfo=UTC), datetime(2025, 3, 30, 2, tzinfo=UTC),
    )  # fmt: skip
    # the repeated 01:00 hour holds both of its real hours
    assert local_hour_span(date(2025, 10, 26), 1, LONDON) == (
        datetime(2025, 10, 26, 0, tzinfo=UTC), datetime(2025, 10, 26, 2, tzinfo=UTC),
    )  # fmt: skip
    start, end = local_day_span(date(2025, 10, 26), LONDON)
    assert end - start == timedelta(hours=25)


@given(
    st.lists(st.integers(0, 600), max_size=30),
    st.integers(2, 8),
    st.integers(1, 120),
)
def test_bursts_are_exactly_the_calls_in_a_full_window(
    minutes: list[int], count: int, window_minutes: int
) -> None:
    calls = [(T0 + timedelta(minutes=m), f"r{n}") for n, m in enumerate(minutes)]
    window = timedelta(minutes=window_minutes)
    hits = short_call_bursts(calls, count=count, window=window)
    expected = set()
    for start, _ in calls:  # brute force: every window that starts at a call
        inside = [rid for when, rid in calls if start <= when <= start + window]
        if len(inside) >= count:
            expected.update(inside)
    assert hits == expected


def _fact(**overrides: object) -> CallFact:
    values: dict[str, object] = {
        "record_id": "r1", "start": T0, "local": T0.astimezone(LONDON), "direction": "out",
        "extension": "201", "number": "449098790000", "talk_seconds": 60,
        "cost_micro": 1_600_000, "currency": "GBP", "number_class": "premium",
    }  # fmt: skip
    values.update(overrides)
    return CallFact(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "rules_found"),
    [
        ({}, []),
        ({"cost_micro": 1_600_001}, ["cost"]),
        ({"cost_micro": 2_000_000, "currency": "EUR"}, []),  # the rule is for GBP only
        ({"cost_micro": None, "currency": "", "number_class": ""}, []),  # not rated
        ({"talk_seconds": 601}, ["long"]),
        ({"local": datetime(2025, 7, 16, 18, 0, tzinfo=LONDON)}, ["late"]),  # closes at 18:00
        ({"local": datetime(2025, 7, 16, 17, 59, tzinfo=LONDON)}, []),
        ({"local": datetime(2025, 7, 19, 12, 0, tzinfo=LONDON)}, ["late"]),  # a Saturday
        ({"local": datetime(2025, 7, 19, 12, 0, tzinfo=LONDON), "number_class": "mobile"}, []),
        ({"local": datetime(2025, 7, 19, 12, 0, tzinfo=LONDON), "direction": "in"}, []),
    ],
)  # fmt: skip
def test_per_call_rules(overrides: dict[str, object], rules_found: list[str]) -> None:
    rules = parse_rules(
        '[[rules]]\nid = "cost"\nkind = "call_cost"\nover = "1.60"\ncurrency = "GBP"\n'
        '[[rules]]\nid = "long"\nkind = "long_call"\nminutes = 10\n'
        '[[rules]]\nid = "late"\nkind = "off_hours"\n'
    )
    found = per_call_findings(rules.rules, DEFAULT_HOURS, [_fact(**overrides)])
    assert [f.rule_id for f in found] == rules_found
    assert all((f.subject, f.record_ids) == ("201", ("r1",)) for f in found)


def test_a_signature_verifies_only_with_its_secret_timestamp_and_body() -> None:
    secret, body = "ab" * 32, b'{"alarm_id": "x"}'
    signature = sign(secret, 1_700_000_000, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(secret, "1700000000", body, signature)
    assert not verify_signature(secret, "1700000001", body, signature)
    assert not verify_signature("cd" * 32, "1700000000", body, signature)
    assert not verify_signature(secret, "1700000000", body + b" ", signature)
    assert not verify_signature(secret, "soon", body, signature)


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() / 60 for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff(10_000) == timedelta(hours=1)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]:9000/hook",
     "http://198.18.0.5/hook"],
)  # fmt: skip
def test_a_webhook_to_a_loopback_or_benchmark_address_is_refused(url: str) -> None:
    """Resolved for real (literals and localhost only): nothing is sent."""
    with pytest.raises(NotifyError, match="not a public address"):
        check_destination(url, allow_private=False)
    check_destination(url, allow_private=True)


def _special(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _special(address.ipv4_mapped)  # judged by the IPv4 address it carries
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return site_local or any((address.is_private, address.is_loopback, address.is_link_local,
                              address.is_multicast, address.is_reserved,
                              address.is_unspecified))  # fmt: skip


@given(st.ip_addresses())
def test_no_special_purpose_address_counts_as_public(address: IPAddress) -> None:
    """Addresses are classified as objects, never contacted: private, loopback, link-local
    (the cloud metadata address among them), multicast, reserved and unspecified are refused."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    judged = mapped or address  # an IPv4-mapped address is judged by the IPv4 inside
    if _special(address):
        assert not is_public(address)
    else:
        assert is_public(address) == judged.is_global


@given(st.ip_addresses(v=4))
def test_an_ipv4_mapped_address_is_judged_by_its_ipv4_address(
    address: ipaddress.IPv4Address,
) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert is_public(mapped) == is_public(address)


def _resolving_to(*addresses: IPAddress) -> Resolver:
    def resolver(host: str, port: int) -> list[IPAddress]:
        assert host == "hooks.example" and port == 443
        return list(addresses)

    return resolver


@given(st.ip_addresses().filter(is_public))
def test_a_webhook_whose_name_resolves_to_public_addresses_passes(address: IPAddress) -> None:
    check_destination("https://hooks.example/hook", allow_private=False,
                      resolver=_resolving_to(address))  # fmt: skip


@given(st.ip_addresses().filter(is_public), st.ip_addresses().filter(_special))
def test_one_non_public_answer_among_public_ones_is_refused(
    public: IPAddress, special: IPAddress
) -> None:
    with pytest.raises(NotifyError, match=re.escape(f"is {special}, not a public address")):
        check_destination("https://hooks.example/hook", allow_private=False,
                          resolver=_resolving_to(public, special))  # fmt: skip


def test_a_name_that_does_not_resolve_names_the_setting_to_fix() -> None:
    def failing(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(NotifyError, match=r"cannot resolve hooks\.example.*delivery\.webhook_url"):
        check_destination("https://hooks.example/hook", allow_private=False, resolver=failing)


def test_findings_of_one_rule_subject_and_period_merge_in_order() -> None:
    kind = RuleKind.CALL_COST
    merged = merge_findings([
        Finding("r", kind, "201", "2025-07-16", "first", ("a",)),
        Finding("r", kind, "202", "2025-07-16", "other", ("b",)),
        Finding("r", kind, "201", "2025-07-16", "second", ("c", "a")),
    ])  # fmt: skip
    assert [(f.subject, f.reason, f.record_ids) for f in merged] == [
        ("201", "second", ("a", "c")), ("202", "other", ("b",)),
    ]  # fmt: skip
