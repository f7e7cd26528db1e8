"""The tenant portal: a tenant's own calls, listed, filtered and opened one by one.

Contract:

- Every page here needs the ``tenant`` or ``tenant_admin`` role and reads only through
  ``TenantScope`` built from the signed-in user's tenant, narrowed to their scope and with their
  number masking; a record id of another tenant or outside the scope is answered 404, exactly
  like one that does not exist, so ids cannot be probed.
- ``/calls`` lists newest first, ``PER_PAGE`` a page, each call with its external party (in
  E.164, formatted for the tenant's country: ``datacenter.web.parties``), destination, carrier,
  billed duration and cost, under the totals (calls, minutes, cost per currency) of everything
  the filters match. Filters travel in the query string (a filtered page can be bookmarked):
  ``from``/``to`` (inclusive days in the tenant's time zone), ``extension`` (exact), ``number``
  (part of the calling, called or dialled number), ``direction``, ``answered`` (``yes``/``no``),
  ``class`` (destination class), ``carrier``, ``cost_min``/``cost_max`` (inclusive, in the
  call's currency). An invalid filter is shown with its message and lists nothing rather than
  listing everything.
- ``/calls/<id>`` adds the cost explanation as stored by rating (tariff and version, bands,
  increments, the arithmetic), or for a call that is not rated, why and what fixes it; a
  re-rated call shows when its cost last changed and what it was before; and the call's
  recordings: a player (and a download link) for a viewer allowed to play them
  (``datacenter.web.recordings``), or why there is no audio (encrypted media, deleted by
  retention, not permitted).
- Times are shown on the tenant's clock with the zone named; durations as h:mm:ss.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional, ValidationError

from datacenter.rating.numbering import NumberClass
from datacenter.store.scoped import Call, CallDetail, CallFilter, TenantScope
from datacenter.web.auth import require_viewer, role_required
from datacenter.web.database import store
from datacenter.web.display import DIRECTION_LABELS
from datacenter.web.parties import Parties, PartyNumber, call_parties, format_number
from datacenter.web.rating_text import CLASS_LABELS, Reason, unrated_reason
from datacenter.web.recordings import viewer_access
from shared.icdr import Direction

PER_PAGE = 50
MAX_PAGE = 1_000_000  # keeps the row offset well inside a 64-bit integer
MAX_COST_FILTER = 10**9  # major units; larger is a typo, and keeps the minor bound in 64 bits
FILTER_FIELDS = (
    "from", "to", "extension", "number", "direction", "answered", "class", "carrier",
    "cost_min", "cost_max",
)  # fmt: skip
ANSWERED_CHOICES = {"yes": True, "no": False}

bp = Blueprint("portal", __name__)


class CallFilterForm(FlaskForm):  # type: ignore[misc]
    """The filter bar; read from the query string, so it carries no CSRF token."""

    class Meta:
        csrf = False

    date_from = DateField("From", name="from", validators=[Optional()])
    date_to = DateField("To", name="to", validators=[Optional()])
    extension = StringField("Extension", validators=[Optional(), Length(max=64)])
    number = StringField("Number", validators=[Optional(), Length(max=64)])
    direction = SelectField(
        "Direction",
        choices=[SelectChoice("", "Any direction")]
        + [SelectChoice(d.value, DIRECTION_LABELS[d]) for d in Direction],
        default="",
    )
    answered = SelectField(
        "Answered",
        choices=[SelectChoice("", "Answered or not"), SelectChoice("yes", "Answered"),
                 SelectChoice("no", "Unanswered")],
        default="",
    )  # fmt: skip
    number_class = SelectField(
        "Destination class",
        name="class",
        choices=[SelectChoice("", "Any destination")]
        + [SelectChoice(c.value, CLASS_LABELS[c]) for c in NumberClass],
        default="",
    )
    carrier = SelectField("Carrier", choices=[SelectChoice("", "Any carrier")], default="")
    cost_min = DecimalField(
        "Cost from", validators=[Optional(), NumberRange(min=0, max=MAX_COST_FILTER)]
    )
    cost_max = DecimalField(
        "Cost to", validators=[Optional(), NumberRange(min=0, max=MAX_COST_FILTER)]
    )

    def set_carriers(self, carriers: list[str]) -> None:
        """The carrier choices are the tenant's own (plus one typed in a bookmarked URL)."""
        chosen = self.carrier.data or ""
        names = sorted(set(carriers) | ({chosen} if chosen else set()))
        self.carrier.choices = [SelectChoice("", "Any carrier")] + [
            SelectChoice(name, name) for name in names
        ]

    def validate_cost_max(self, field: DecimalField) -> None:
        low = self.cost_min.data
        if field.data is not None and low is not None and field.data < low:
            raise ValidationError("'Cost to' is below 'Cost from'.")

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError("'To' is before 'From'.")

    def to_filter(self) -> CallFilter:
        return CallFilter(
            date_from=self.date_from.data,
            date_to=self.date_to.data,
            extension=(self.extension.data or "").strip() or None,
            number=(self.number.data or "").strip() or None,
            direction=Direction(self.direction.data) if self.direction.data else None,
            answered=ANSWERED_CHOICES.get(self.answered.data or ""),
            number_class=self.number_class.data or None,
            carrier=self.carrier.data or None,
            cost_min=self.cost_min.data,
            cost_max=self.cost_max.data,
        )


@dataclass(frozen=True, slots=True)
class Party:
    """One end of a call as shown: ``text``, and the E.164 and recorded number behind it."""

    text: str
    title: str = ""  # "+447700900123 (recorded: 07700900123)" for the external party
    unknown: bool = False  # an unknown caller: ``text`` names the trunk it came in on


@dataclass(frozen=True, slots=True)
class ListedCall:
    """A call as a list row shows it: the call, its two ends, the external party's number.

    The ends are worked out here, not in the template: a page has fifty rows, and Jinja
    macros per cell were a third of its rendering time (benchmarks/portal.py)."""

    call: Call
    parties: Parties
    external: PartyNumber
    from_: Party
    to: Party


def listed(call: Call, country: str | None) -> ListedCall:
    parties = call_parties(
        direction=call.direction, calling=call.calling, called=call.called,
        dialled_digits=call.dialled_digits, extension=call.extension, trunk=call.trunk,
        ani=call.ani,
    )  # fmt: skip
    rated_e164 = call.cost.e164 if call.cost is not None and parties.external == "to" else ""
    external = format_number(parties.external_number, country, e164=rated_e164)
    ends = [_party(side, recorded, parties, external, call.trunk)
            for side, recorded in (("from", parties.from_), ("to", parties.to))]  # fmt: skip
    return ListedCall(call, parties, external, ends[0], ends[1])


def _party(side: str, recorded: str, parties: Parties, external: PartyNumber, trunk: str) -> Party:
    if parties.external == side and external.e164:
        return Party(external.text, f"{external.e164} (recorded: {recorded})")
    if recorded or not trunk:
        return Party(recorded)
    return Party(f"unknown, via {trunk}", unknown=True)


@bp.route("/calls")
@role_required("tenant", "tenant_admin")
def calls() -> ResponseReturnValue:
    scope = _scope()
    form = CallFilterForm(formdata=request.args)
    form.set_carriers(scope.carriers())
    page_number = min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)
    valid = form.validate()
    page = (
        scope.list_calls(form.to_filter(), page=page_number, per_page=PER_PAGE) if valid else None
    )
    country = scope.country()
    filter_args = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}
    return render_template(
        "portal/calls.html",
        form=form,
        page=page,
        rows=[listed(call, country) for call in page.calls] if page else [],
        zone=scope.zone,
        filtered=bool(filter_args),
        page_url=lambda number: _page_url(filter_args, number),
        detail_url=_detail_url(),
    )


@bp.route("/calls/<record_id>")
@role_required("tenant", "tenant_admin")
def call_detail(record_id: str) -> ResponseReturnValue:
    scope = _scope()
    detail = scope.get_call(record_id)
    if detail is None:
        abort(404)
    country = scope.country()
    call = detail.call
    row = listed(_with_cost(call, detail), country)
    reason: Reason | None = None
    if detail.cost is None:
        reason = unrated_reason(detail.unrated.reason if detail.unrated else None)
    return render_template(
        "portal/call_detail.html",
        recordings=scope.recordings(record_id),
        recording_access=viewer_access(),
        detail=detail,
        call=call,
        row=row,
        reason=reason,
        explanation=detail.explanation or {},
        zone=scope.zone,
        utc=UTC,
        back_url=_safe_back_url(),
    )


def _with_cost(call: Call, detail: CallDetail) -> Call:
    with_cost: Call = replace(call, cost=detail.cost)  # type: ignore[type-var]  # generated model
    return with_cost


def _scope() -> TenantScope:
    viewer = require_viewer()
    if viewer.tenant is None:  # pragma: no cover - the schema gives every tenant user a tenant
        abort(403)
    return TenantScope(
        store.connection(),
        viewer.tenant.tenant_id,
        user_scope=viewer.scope,
        mask_digits=viewer.mask_digits,
    )


def _detail_url() -> Any:
    """``record_id -> /calls/<record_id>``, with the route built once per page, not per row."""
    marker = "RECORD-ID"
    template = url_for("portal.call_detail", record_id=marker)
    return lambda record_id: template.replace(marker, quote(record_id, safe=""))


def _page_url(filter_args: dict[str, Any], number: int) -> str:
    return url_for("portal.calls", **filter_args, page=number if number > 1 else None)


def _safe_back_url() -> str:
    """Back to the list the user came from (same filters and page), else the plain list."""
    list_url = url_for("portal.calls")
    came_from = urlsplit(request.referrer or "")
    here = urlsplit(request.host_url)
    if (came_from.scheme, came_from.netloc, came_from.path) == (here.scheme, here.netloc, list_url):
        return f"{list_url}?{came_from.query}" if came_from.query else list_url
    return list_url
