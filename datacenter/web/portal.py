"""The tenant portal: a tenant's own calls, listed, filtered and opened one by one.

Contract:

- Every page here needs the ``tenant`` or ``tenant_admin`` role and reads only through
  ``TenantScope`` built from the signed-in user's tenant, narrowed to their scope and with their
  number masking; a record id of another tenant or outside the scope is answered 404, exactly
  like one that does not exist, so ids cannot be probed.
- ``/calls`` lists newest first, ``PER_PAGE`` a page, with the total count. Filters travel in
  the query string (a filtered page can be bookmarked): ``from``/``to`` (inclusive days in the
  tenant's time zone), ``extension`` (exact), ``number`` (part of the calling, called or dialled
  number), ``direction``. An invalid filter is shown with its message and lists nothing rather
  than listing everything.
- Times are shown on the tenant's clock with the zone named; durations as h:mm:ss.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.web.auth import require_viewer, role_required
from datacenter.web.database import store
from datacenter.web.display import DIRECTION_LABELS
from shared.icdr import Direction

PER_PAGE = 50
MAX_PAGE = 1_000_000  # keeps the row offset well inside a 64-bit integer
FILTER_FIELDS = ("from", "to", "extension", "number", "direction")

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
        )


@bp.route("/calls")
@role_required("tenant", "tenant_admin")
def calls() -> ResponseReturnValue:
    scope = _scope()
    form = CallFilterForm(formdata=request.args)
    page_number = min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)
    valid = form.validate()
    page = (
        scope.list_calls(form.to_filter(), page=page_number, per_page=PER_PAGE) if valid else None
    )
    filter_args = {name: request.args[name] for name in FILTER_FIELDS if request.args.get(name)}
    return render_template(
        "portal/calls.html",
        form=form,
        page=page,
        zone=scope.zone,
        filtered=bool(filter_args),
        page_url=lambda number: _page_url(filter_args, number),
    )


@bp.route("/calls/<record_id>")
@role_required("tenant", "tenant_admin")
def call_detail(record_id: str) -> ResponseReturnValue:
    scope = _scope()
    detail = scope.get_call(record_id)
    if detail is None:
        abort(404)
    return render_template(
        "portal/call_detail.html",
        detail=detail,
        call=detail.call,
        zone=scope.zone,
        utc=UTC,
        back_url=_safe_back_url(),
    )


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
