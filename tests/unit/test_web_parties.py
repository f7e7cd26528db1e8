"""From / To / external party per source kind, and numbers formatted for the tenant's country.

Each case is a call as that driver fills the ICDR (the driver module named in the comment):
the rule in ``datacenter.web.parties`` must show the dialled number as *To* of an outgoing call
whatever the source puts in ``called`` (MiVB SMDR and OAI: the trunk).
"""

from __future__ import annotations

import pytest

from datacenter.rating.engine import UnratedReason
from datacenter.web.parties import Parties, call_parties, format_number
from datacenter.web.rating_text import UNRATED, money, unrated_reason


def _fields(**values: str) -> dict[str, str]:
    return values


CASES = {
    # edge_agent/sources/mivb_smdr/driver.py: outgoing -> extension, trunk = calling, called
    "mivb-smdr out": (
        _fields(direction="out", calling="2201", called="T025", dialled_digits="07700900123",
             extension="2201", trunk="T025", ani=""),
        Parties("2201", "07700900123", "to"),
    ),
    # incoming without the ANI option: `calling` is the trunk the call came in on
    "mivb-smdr in": (
        _fields(direction="in", calling="T031", called="2202", dialled_digits="4455",
             extension="2202", trunk="T031", ani=""),
        Parties("", "2202", "from"),
    ),
    "mivb-smdr in with ANI": (
        _fields(direction="in", calling="T031", called="2202", dialled_digits="4455",
             extension="2202", trunk="T031", ani="6135550142"),
        Parties("6135550142", "2202", "from"),
    ),
    "mivb-smdr tandem": (
        _fields(direction="tandem", calling="T001", called="T002", dialled_digits="01632960123",
             extension="", trunk="T001", ani=""),
        Parties("", "01632960123", "to"),
    ),
    "mivb-smdr internal": (
        _fields(direction="internal", calling="2201", called="2202", dialled_digits="",
             extension="2201", trunk="", ani=""),
        Parties("2201", "2202", ""),
    ),
    # edge_agent/sources/mcs_ipsmdr/calls.py: the number in called and dialled digits
    "mcs-ipsmdr out": (
        _fields(direction="out", calling="2201", called="07700900123",
             dialled_digits="07700900123", extension="2201", trunk="90001", ani=""),
        Parties("2201", "07700900123", "to"),
    ),
    "mcs-ipsmdr in": (
        _fields(direction="in", calling="07700900456", called="02079460321",
             dialled_digits="02079460321", extension="2203", trunk="90001", ani="07700900456"),
        Parties("07700900456", "2203", "from"),
    ),
    # edge_agent/sources/mivo250_oai/calls.py: outgoing trunk = the answering device
    "mivo250-oai out": (
        _fields(direction="out", calling="201", called="01632960123", dialled_digits="01632960123",
             extension="201", trunk="T3", ani=""),
        Parties("201", "01632960123", "to"),
    ),
    "mivo250-oai in": (
        _fields(direction="in", calling="07700900456", called="4455", dialled_digits="4455",
             extension="202", trunk="210", ani="07700900456"),
        Parties("07700900456", "202", "from"),
    ),
    # edge_agent/sources/mivo250_smdr/record.py: no caller id on incoming calls
    "mivo250-smdr out": (
        _fields(direction="out", calling="201", called="901632960123",
             dialled_digits="901632960123", extension="201", trunk="8", ani=""),
        Parties("201", "901632960123", "to"),
    ),
    "mivo250-smdr in": (
        _fields(direction="in", calling="", called="202", dialled_digits="4455", extension="202",
             trunk="8", ani=""),
        Parties("", "202", "from"),
    ),
    # edge_agent/sources/lync_cdr/parser.py: SIP users and tel numbers, no dialled digits
    "lync-cdr out": (
        _fields(direction="out", calling="alice@example.com", called="+441632960011",
             dialled_digits="", extension="", trunk="gw01.example.com", ani=""),
        Parties("alice@example.com", "+441632960011", "to"),
    ),
    "lync-cdr in": (
        _fields(direction="in", calling="+447700900456", called="bob@example.com",
             dialled_digits="", extension="", trunk="gw01.example.com", ani=""),
        Parties("+447700900456", "bob@example.com", "from"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_from_and_to_per_source_kind(case: str) -> None:
    fields, expected = CASES[case]
    assert call_parties(**fields) == expected


def test_an_outgoing_mitel_call_is_to_the_dialled_number_not_the_trunk() -> None:
    fields, _ = CASES["mivb-smdr out"]
    parties = call_parties(**fields)
    assert parties.to != "T025"
    assert parties.external_number == "07700900123"


@pytest.mark.parametrize(
    ("number", "country", "e164", "text", "shown_e164"),
    [
        ("07700900456", "GB", "", "07700 900456", "+447700900456"),  # domestic: national
        ("", "GB", "33612345678", "+33 6 12 34 56 78", "+33612345678"),  # rated: the E.164
        ("+16135550142", "GB", "", "+1 613-555-0142", "+16135550142"),
        ("2125550142", "US", "", "(212) 555-0142", "+12125550142"),
        ("+442079460123", None, "", "+44 20 7946 0123", "+442079460123"),  # no country known
        ("07700900456", None, "", "07700900456", ""),  # national digits, no country: as recorded
        ("alice@example.com", "GB", "", "alice@example.com", ""),
        ("2201", "GB", "", "2201", ""),  # an extension
        ("999", "GB", "", "999", ""),
    ],
)
def test_numbers_are_formatted_for_the_tenants_country(
    number: str, country: str | None, e164: str, text: str, shown_e164: str
) -> None:
    shown = format_number(number, country, e164=e164)
    assert (shown.text, shown.e164) == (text, shown_e164)


def test_every_unrated_reason_has_its_text_and_fix() -> None:
    assert set(UNRATED) == {reason.value for reason in UnratedReason}
    for reason in UnratedReason:
        explained = unrated_reason(reason.value)
        assert explained.text.endswith(".") and explained.fix
    assert "rerate" in unrated_reason(None).fix  # a call stored before rating was set up


@pytest.mark.parametrize(
    ("minor", "decimals", "currency", "text"),
    [(194, 2, "GBP", "1.94 GBP"), (123456789, 2, "USD", "1,234,567.89 USD"), (5, 0, "JPY", "5 JPY"),
     (7, 3, "BHD", "0.007 BHD"), (0, 0, "", "0")],
)  # fmt: skip
def test_money(minor: int, decimals: int, currency: str, text: str) -> None:
    assert money(minor, decimals, currency) == text
