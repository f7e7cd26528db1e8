"""Who a call was between, as a person reads it: the From / To rule and numbers in E.164.

The display rule, the same for every source kind (each driver's field conventions are in
docs/icdr.md; the tests build a call the way each driver does and check this rule on it):

- **Outgoing and tandem**: *To* is the number the user dialled (``dialled_digits``), else
  ``called``. MiVB SMDR and MiVoice 250 OAI put the outgoing trunk (``T025``) in ``called``,
  so ``called`` is never preferred to the dialled digits. *From* is the extension, else
  ``calling``; for a tandem call, the outside caller (below).
- **Incoming**: *From* is the outside caller: ``ani`` if the source sent one, else ``calling``
  unless that only names the trunk the call came in on (MiVB SMDR without ANI) - then the
  caller is unknown and *From* is empty (the page says which trunk). *To* is the extension
  that took the call, else ``called`` (the DDI, for sources that put it there).
- **Internal** and **unknown**: ``calling`` -> ``called`` (unknown: dialled digits first).

The *external party* is To for outgoing and tandem calls, From for incoming ones, and nobody
for internal calls. It is shown in E.164, formatted for the tenant's country with
libphonenumber: a number in that country in its national format (``07700 900456``), any other
in international format (``+33 6 12 34 56 78``). For a rated outgoing call the rating's E.164
(the dial plan's reading, outside-line digit removed) is used; otherwise the recorded number is
parsed in the tenant's country. What cannot be read as a phone number (a SIP address, a short
code) is shown as recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from shared.icdr import Direction

NUMBER_CACHE_SIZE = 4096
_PUNCTUATION = str.maketrans("", "", " \t-().")


@dataclass(frozen=True, slots=True)
class PartyNumber:
    """A number as shown: ``text`` for the page, ``e164`` ("" when it is not a phone number)."""

    text: str
    e164: str = ""


@dataclass(frozen=True, slots=True)
class Parties:
    """The two ends of a call by the rule above; ``external`` is "from", "to" or ""."""

    from_: str
    to: str
    external: str

    @property
    def external_number(self) -> str:
        return {"from": self.from_, "to": self.to}.get(self.external, "")


def call_parties(
    *,
    direction: str,
    calling: str,
    called: str,
    dialled_digits: str,
    extension: str,
    trunk: str,
    ani: str,
) -> Parties:
    """From, To and the external side of a call (the module docstring's rule)."""
    # The caller of a call from outside: ANI, else `calling` unless it only names the trunk.
    outside_caller = ani or ("" if calling and calling == trunk else calling)
    if direction == Direction.OUT:
        return Parties(extension or calling, dialled_digits or called, "to")
    if direction == Direction.TANDEM:
        return Parties(outside_caller, dialled_digits or called, "to")
    if direction == Direction.IN:
        return Parties(outside_caller, extension or called, "from")
    if direction == Direction.INTERNAL:
        return Parties(calling, called, "")
    return Parties(calling, dialled_digits or called, "")


def format_number(number: str, country: str | None, *, e164: str = "") -> PartyNumber:
    """``number`` for a reader in ``country`` (ISO alpha-2, or None: international format).

    ``e164`` (digits, no '+'), when the rating has it, is used instead of parsing ``number``.
    """
    if e164:
        return _format("+" + e164, country)
    return _format(number.strip(), country)


@lru_cache(maxsize=NUMBER_CACHE_SIZE)
def _format(number: str, country: str | None) -> PartyNumber:
    digits = number.translate(_PUNCTUATION)
    if not digits or not digits.lstrip("+").isdigit() or len(digits.lstrip("+")) < 6:
        return PartyNumber(number)  # a SIP address, an extension or a short code
    try:
        parsed = phonenumbers.parse(digits, country)
    except phonenumbers.NumberParseException:
        return PartyNumber(number)
    if not phonenumbers.is_possible_number(parsed):
        return PartyNumber(number)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    domestic = country is not None and parsed.country_code == phonenumbers.country_code_for_region(
        country
    )
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if domestic
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return PartyNumber(phonenumbers.format_number(parsed, style), e164)
