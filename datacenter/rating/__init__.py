"""Rating: dial plans, versioned multi-carrier tariffs, and a pure, exact rating engine.

``rate_call(icdr, dial_plan=..., tariffs=..., carriers=...)`` turns one ICDR into a
``RatedCall`` (cost in integer minor units, with an ``Explanation`` of every step) or an
``Unrated`` (a reason code for the unrated queue). docs/rating.md describes the model, the file
formats and the commands.

    numbering   dial plans: recorded number -> E.164 + class
    tariffs     tariff plans and versions, CSV rate decks, the longest-prefix index
    bands       time-band calendars evaluated in a site's zone
    carriers    route maps: trunk / route / gateway -> carrier
    money       integer micro-units, one rounding per call
    engine      the pure rating function
"""

from datacenter.rating.carriers import CarrierChoice, CarrierRules, load_carrier_rules
from datacenter.rating.engine import (
    ENGINE_VERSION,
    Explanation,
    RatedCall,
    RatingResult,
    Unrated,
    UnratedReason,
    ZeroReason,
    rate_call,
)
from datacenter.rating.money import RoundingMode
from datacenter.rating.numbering import DialPlan, Normalised, NumberClass, load_dial_plan
from datacenter.rating.tariffs import (
    TariffImportError,
    TariffPlan,
    TariffVersion,
    load_tariff,
)

__all__ = [
    "ENGINE_VERSION",
    "CarrierChoice",
    "CarrierRules",
    "DialPlan",
    "Explanation",
    "Normalised",
    "NumberClass",
    "RatedCall",
    "RatingResult",
    "RoundingMode",
    "TariffImportError",
    "TariffPlan",
    "TariffVersion",
    "Unrated",
    "UnratedReason",
    "ZeroReason",
    "load_carrier_rules",
    "load_dial_plan",
    "load_tariff",
    "rate_call",
]
