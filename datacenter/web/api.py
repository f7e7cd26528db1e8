"""The JSON API under ``/api/v1``: a tenant's calls and directory, for scripts and other tools.

Contract:

- Every endpoint but ``/api/v1/openapi.json`` needs ``Authorization: Bearer <token>`` with a live
  API token (``datacenter.api_tokens``); the token acts as its owner, reading through the same
  ``TenantScope`` the owner's session would. A missing, unknown or revoked token is 401; a
  token of a user without a tenant is 403; a call id of another tenant is 404, like one that
  does not exist.
- ``GET /api/v1/calls`` takes the page's filters (``from``, ``to``, ``direction``,
  ``extension``, ``number``, ``answered``, ``class``, ``carrier``, ``cost_min``, ``cost_max``)
  and pages by cursor: each page ends with
  ``next_cursor`` (or null), an opaque token for the ``(start_utc, record_id)`` of its last call;
  calls that arrive meanwhile never shift a page, unlike an offset.
- Each call carries its ``cost`` (amount as a decimal string in its currency, destination,
  class, carrier, billed seconds, the rated E.164 number; null when not rated) and
  ``unrated_reason`` (the unrated queue's code, or null), as the call list shows them.
- A bad parameter is 400 with the parameter named in the message. Every error has the shape
  errors.py gives every ``/api/`` path. The document: ``/api/v1/openapi.json`` (api_spec.py).
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, abort, g, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from datacenter.accounts.scopes import mask_digits, scope_of
from datacenter.api_tokens import authenticate_token
from datacenter.directory.entries import DirectoryEntry, EntryFilter, list_entries
from datacenter.rating.numbering import NumberClass
from datacenter.store.costs import CallCost
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import DEFAULT_PER_PAGE, MAX_PER_PAGE, Call, CallFilter, TenantScope
from datacenter.web.api_spec import openapi_document
from datacenter.web.database import store
from datacenter.web.portal import MAX_COST_FILTER
from shared.icdr import Direction

API_PREFIX = "/api/v1"
MAX_DIRECTORY = 1000

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)


class BadParameter(Exception):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"parameter '{name}': {problem}")


@bp.errorhandler(BadParameter)
def _bad_parameter(exc: BadParameter) -> Response:
    response = jsonify(error={"status": 400, "title": "Bad Request", "message": str(exc)})
    response.status_code = 400
    return response


@bp.before_request
def _authenticate() -> None:
    if request.endpoint == "api.openapi":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        abort(401)
    with write_transaction(store.engine) as conn:
        user = authenticate_token(conn, token.strip())
    if user is None:
        abort(401)
    if user.role not in ("tenant", "tenant_admin") or user.tenant_id is None:
        abort(403)
    g.api_user = user


@bp.route("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())


@bp.route("/calls")
def calls() -> ResponseReturnValue:
    call_filter = _call_filter()
    limit = _int_arg("limit", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    after = _cursor(request.args.get("cursor"))
    found = _scope().list_calls_after(call_filter, after=after, limit=limit + 1)
    page, more = found[:limit], len(found) > limit
    next_cursor = _encode_cursor(page[-1]) if more else None
    return jsonify(calls=[call_json(call) for call in page], next_cursor=next_cursor)


@bp.route("/calls/<record_id>")
def call(record_id: str) -> ResponseReturnValue:
    detail = _scope().get_call(record_id)
    if detail is None:
        abort(404)
    body = call_json(detail.call)
    body["cost"] = cost_json(detail.cost)
    body["unrated_reason"] = detail.unrated.reason if detail.unrated is not None else None
    body["flags"] = list(detail.flags)
    body["ingested_at"] = detail.ingested_at.isoformat()
    return jsonify(call=body)


@bp.route("/directory")
def directory() -> ResponseReturnValue:
    if not scope_of(store.connection(), g.api_user).whole:
        abort(403)  # the directory lists the whole tenant: not for a user limited to a part
    current = request.args.get("current", "")
    entry_filter = EntryFilter(
        text=request.args.get("search", "")[:200],
        department=request.args.get("department", "")[:200],
        current_only=_bool_arg("current", current) is True,
    )
    entries = list_entries(store.connection(), _tenant_id(), entry_filter, limit=MAX_DIRECTORY)
    return jsonify(entries=[entry_json(entry) for entry in entries])


def call_json(call: Call) -> dict[str, Any]:
    return {
        "record_id": call.record_id,
        "start_utc": call.start_utc.isoformat(),
        "answer_utc": call.answer_utc.isoformat() if call.answer_utc else None,
        "end_utc": call.end_utc.isoformat(),
        "direction": call.direction,
        "calling": call.calling,
        "called": call.called,
        "dialled_digits": call.dialled_digits,
        "extension": call.extension,
        "trunk": call.trunk,
        "ring_seconds": call.ring_seconds,
        "talk_seconds": call.talk_seconds,
        "hold_seconds": call.hold_seconds,
        "answered": call.answered,
        "completion": call.completion,
        "account_code": call.account_code,
        "person": call.person,
        "department": call.department,
        "cost_centre": call.cost_centre,
        "site": call.site,
        "cost": cost_json(call.cost),
        "unrated_reason": call.unrated_reason,
    }


def cost_json(cost: CallCost | None) -> dict[str, Any] | None:
    if cost is None:
        return None
    return {
        "amount": str(cost.amount),  # a decimal string: exact, in ``currency``
        "currency": cost.currency,  # "" for no charge without a tariff
        "destination": cost.destination,
        "number_class": cost.number_class,
        "carrier": cost.carrier,
        "billed_seconds": cost.billed_seconds,
        "e164": cost.e164,
        "tariff_version": cost.tariff_version,
        "zero_reason": cost.zero_reason,
    }


def entry_json(entry: DirectoryEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "extension": entry.extension,
        "person": entry.person,
        "email": entry.email,
        "department": entry.department,
        "cost_centre": entry.cost_centre,
        "site": entry.site,
        "valid_from": entry.valid_from.isoformat(),
        "valid_to": entry.valid_to.isoformat() if entry.valid_to else None,
        "source": entry.source,
    }


def _tenant_id() -> int:
    tenant_id: int = g.api_user.tenant_id
    return tenant_id


def _scope() -> TenantScope:
    """The token's owner's scope and number masking: a token sees what its owner's session would."""
    conn = store.connection()
    user = g.api_user
    return TenantScope(
        conn,
        _tenant_id(),
        user_scope=scope_of(conn, user),
        mask_digits=mask_digits(conn, _tenant_id(), user.role),
    )


def _call_filter() -> CallFilter:
    args = request.args
    date_from, date_to = _date_arg("from"), _date_arg("to")
    if date_from and date_to and date_to < date_from:
        raise BadParameter("to", "is before 'from'")
    direction = args.get("direction") or None
    if direction is not None and direction not in {d.value for d in Direction}:
        raise BadParameter("direction", f"is one of {', '.join(d.value for d in Direction)}")
    for name in ("extension", "number", "carrier"):
        if len(args.get(name, "")) > 64:
            raise BadParameter(name, "is longer than 64 characters")
    number_class = args.get("class") or None
    if number_class is not None and number_class not in {c.value for c in NumberClass}:
        raise BadParameter("class", f"is one of {', '.join(c.value for c in NumberClass)}")
    cost_min, cost_max = _cost_arg("cost_min"), _cost_arg("cost_max")
    if cost_min is not None and cost_max is not None and cost_max < cost_min:
        raise BadParameter("cost_max", "is below 'cost_min'")
    return CallFilter(
        date_from=date_from,
        date_to=date_to,
        extension=args.get("extension", "").strip() or None,
        number=args.get("number", "").strip() or None,
        direction=Direction(direction) if direction else None,
        answered=_bool_arg("answered", args.get("answered", "")),
        number_class=number_class,
        carrier=args.get("carrier", "").strip() or None,
        cost_min=cost_min,
        cost_max=cost_max,
    )


def _cost_arg(name: str) -> Decimal | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or not 0 <= amount <= MAX_COST_FILTER:
        raise BadParameter(name, f"is an amount from 0 to {MAX_COST_FILTER}, such as 0.10")
    return amount


def _date_arg(name: str) -> date | None:
    text = request.args.get(name, "")
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, "is a day written YYYY-MM-DD") from None


def _bool_arg(name: str, text: str) -> bool | None:
    if not text:
        return None
    if text in ("true", "false"):
        return text == "true"
    raise BadParameter(name, "is true or false")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name, "")
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadParameter(name, f"is a whole number from {low} to {high}")
    return int(text)


def _encode_cursor(call: Call) -> str:
    raw = f"{call.start_utc.isoformat()}|{call.record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        when, record_id = raw.split("|", 1)
        start = datetime.fromisoformat(when)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("cursor", "is not a cursor this API gave out") from None
    if start.tzinfo is None or not record_id:
        raise BadParameter("cursor", "is not a cursor this API gave out")
    return start, record_id
