"""The technicians' console: every site's polling health, one site in detail, alarm history.

Contract:

- Every page needs the ``technician`` or ``admin`` role (a tenant user gets 403 on each). A
  technician sees only the tenants assigned to them (``datacenter.accounts.technicians``); a site or
  alarm of any other tenant is answered 404, exactly like one that does not exist.
- ``/tech/sites`` is the grid: state (colour and words), tenant, site, reason, last poll, last
  record, last upload, backlog and the alarm's acknowledgement. Filters and sort travel in the
  query string (``state``, ``tenant``, ``q``, ``sort``, ``dir``), so a view can be bookmarked;
  ``static/tech.js`` only turns header clicks into those links.
- ``/tech/sites/<tenant>/<agent>`` shows the site: findings, open alarms with acknowledge and
  silence forms, the sources as the newest heartbeat reports them, the calls per hour of the
  last day (server-rendered SVG) and a timeline of polls, uploads, errors and alarm events.
- Acknowledge, silence and unsilence are POSTs with a CSRF token; each is recorded in the alarm
  history with the technician's email and note. ``/tech/alarms`` is that history.
- Health is assessed when the page is asked for (``datacenter.health.facts.site_health``): what a
  technician sees is never older than the newest heartbeat in the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, TextAreaField
from wtforms.validators import Length

from datacenter.accounts.technicians import tenants_of
from datacenter.accounts.tenants import Tenant
from datacenter.health.alarms import (
    MAX_NOTE_LENGTH,
    Alarm,
    acknowledge,
    history,
    open_alarms,
    silence,
    unsilence,
)
from datacenter.health.console import (
    PROBLEMS,
    SORTS,
    GridQuery,
    grid_rows,
    heartbeat_history,
    hourly_volume,
    site_timeline,
    state_counts,
)
from datacenter.health.facts import collect_site_facts, site_health
from datacenter.health.model import HealthPolicy, assess, iter_states, policy_from_settings
from datacenter.health.runner import state_label
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import TenantScope
from datacenter.store.tables.alarms import EVENT_KINDS
from datacenter.web.auth import require_viewer, role_required
from datacenter.web.charts import hourly_bars
from datacenter.web.database import store
from shared.errors import CallCollectError

bp = Blueprint("tech", __name__, url_prefix="/tech")
STAFF = ("technician", "admin")
TIMELINE_WINDOW = timedelta(hours=24)
HEARTBEAT_LIMIT = 2000  # a day of heartbeats at one a minute, with room to spare
FILES_LIMIT = 500
SILENCE_HOURS = {"1": "1 hour", "4": "4 hours", "8": "8 hours", "24": "1 day", "72": "3 days",
                 "168": "1 week"}  # fmt: skip


class AcknowledgeForm(FlaskForm):  # type: ignore[misc]
    note = TextAreaField("Note", validators=[Length(max=MAX_NOTE_LENGTH)])


class SilenceForm(FlaskForm):  # type: ignore[misc]
    hours = SelectField(
        "Silence for", choices=[SelectChoice(v, label) for v, label in SILENCE_HOURS.items()],
        default="4",
    )  # fmt: skip
    note = TextAreaField("Note", validators=[Length(max=MAX_NOTE_LENGTH)])


class UnsilenceForm(FlaskForm):  # type: ignore[misc]
    pass


@bp.app_template_filter("state_label")
def _state_label(state: str) -> str:
    return state_label(state)


@bp.app_template_filter("ago")
def _ago(value: datetime | None) -> str:
    """ "4 min ago", "3 h ago", "2 days ago"; "never" for a missing time."""
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else "in the future"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


@bp.app_template_filter("utc")
def _utc(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.route("/")
@role_required(*STAFF)
def index() -> ResponseReturnValue:
    return redirect(url_for("tech.sites"))


@bp.route("/sites")
@role_required(*STAFF)
def sites() -> ResponseReturnValue:
    conn = store.connection()
    tenants = _my_tenants()
    query = GridQuery.from_args(request.args, tenant_slugs=[t.slug for t in tenants])
    now = datetime.now(UTC)
    health = (
        site_health(conn, now=now, policy=_policy(), tenant_ids=[t.tenant_id for t in tenants])
        if tenants
        else []
    )
    rows = grid_rows(
        health,
        {t.tenant_id: t for t in tenants},
        open_alarms(conn, tenant_ids=[t.tenant_id for t in tenants]),
        query,
    )
    return render_template(
        "tech/sites.html",
        rows=rows,
        query=query,
        tenants=tenants,
        counts=state_counts(health),
        total=len(health),
        states=list(iter_states()),
        problems_filter=PROBLEMS,
        sorts=SORTS,
        now=now,
    )


@bp.route("/sites/<tenant_slug>/<agent_id>")
@role_required(*STAFF)
def site(tenant_slug: str, agent_id: str) -> ResponseReturnValue:
    conn = store.connection()
    tenant = _my_tenant(tenant_slug)
    now = datetime.now(UTC)
    policy = _policy()
    facts = collect_site_facts(
        conn, now=now, policy=policy, tenant_ids=[tenant.tenant_id], agent_id=agent_id
    )
    if not facts:
        abort(404)
    health = assess(facts[0], now, policy)
    since = now - TIMELINE_WINDOW
    heartbeats = heartbeat_history(
        conn, tenant_id=tenant.tenant_id, agent_id=agent_id, since=since, limit=HEARTBEAT_LIMIT
    )
    files = [
        f
        for f in TenantScope(conn, tenant.tenant_id).recent_files(limit=FILES_LIMIT)
        if f.agent_id == agent_id and f.claimed_at >= since
    ]
    events = history(conn, [tenant.tenant_id], agent_id=agent_id)
    alarms = [a for a in open_alarms(conn, tenant_ids=[tenant.tenant_id]) if a.agent_id == agent_id]
    zone = ZoneInfo(tenant.timezone)
    volume = hourly_volume(conn, tenant.tenant_id, agent_id, now=now)
    return render_template(
        "tech/site.html",
        tenant=tenant,
        health=health,
        alarms=alarms,
        latest=heartbeats[-1].heartbeat if heartbeats else None,
        timeline=site_timeline(heartbeats, files, [e for e in events if e.at >= since]),
        history=events,
        volume=volume,
        chart=hourly_bars(volume, zone),
        zone=zone,
        ack_form=AcknowledgeForm(),
        silence_form=SilenceForm(),
        unsilence_form=UnsilenceForm(),
        now=now,
    )


@bp.route("/alarms")
@role_required(*STAFF)
def alarm_history() -> ResponseReturnValue:
    conn = store.connection()
    tenants = _my_tenants()
    wanted = request.args.get("tenant", "")
    chosen = [t for t in tenants if not wanted or t.slug == wanted]
    kind = request.args.get("kind", "")
    kinds = [kind] if kind in EVENT_KINDS else None
    entries = history(conn, [t.tenant_id for t in chosen], kinds=kinds) if chosen else []
    return render_template(
        "tech/alarms.html",
        entries=entries,
        tenants=tenants,
        tenant=wanted,
        kind=kind if kinds else "",
        kinds=EVENT_KINDS,
        open_alarms=open_alarms(conn, tenant_ids=[t.tenant_id for t in chosen]) if chosen else [],
    )


@bp.route("/alarms/<tenant_slug>/<alarm_id>/acknowledge", methods=["POST"])
@role_required(*STAFF)
def acknowledge_alarm(tenant_slug: str, alarm_id: str) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        return _form_failed(form, tenant)
    return _change(
        tenant,
        alarm_id,
        lambda conn, actor, now: acknowledge(
            conn, tenant.tenant_id, alarm_id, actor=actor, note=form.note.data or "", now=now
        ),
        "acknowledged: no more reminders while it stays open",
    )


@bp.route("/alarms/<tenant_slug>/<alarm_id>/silence", methods=["POST"])
@role_required(*STAFF)
def silence_alarm(tenant_slug: str, alarm_id: str) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    form = SilenceForm()
    if not form.validate_on_submit():
        return _form_failed(form, tenant)
    hours = int(form.hours.data)
    return _change(
        tenant,
        alarm_id,
        lambda conn, actor, now: silence(
            conn,
            tenant.tenant_id,
            alarm_id,
            until=now + timedelta(hours=hours),
            actor=actor,
            note=form.note.data or "",
            now=now,
        ),
        f"silenced for {SILENCE_HOURS[form.hours.data]}",
    )


@bp.route("/alarms/<tenant_slug>/<alarm_id>/unsilence", methods=["POST"])
@role_required(*STAFF)
def unsilence_alarm(tenant_slug: str, alarm_id: str) -> ResponseReturnValue:
    tenant = _my_tenant(tenant_slug)
    form = UnsilenceForm()
    if not form.validate_on_submit():
        return _form_failed(form, tenant)
    return _change(
        tenant,
        alarm_id,
        lambda conn, actor, now: unsilence(conn, tenant.tenant_id, alarm_id, actor=actor, now=now),
        "no longer silenced: reminders resume",
    )


# --- helpers ------------------------------------------------------------------------------------


AlarmAction = Callable[[sa.Connection, str, datetime], Alarm]


def _change(tenant: Tenant, alarm_id: str, action: AlarmAction, done: str) -> ResponseReturnValue:
    """Run ``action(conn, actor, now)`` in a write transaction; flash and go back to the site."""
    actor = require_viewer().email
    now = datetime.now(UTC)
    try:
        with write_transaction(store.engine) as conn:
            alarm = action(conn, actor, now)
    except CallCollectError as exc:
        if "no alarm" in str(exc):
            abort(404)
        flash(f"Nothing changed: {exc}", "error")
        return redirect(_back(tenant, None))
    flash(f"Alarm {state_label(alarm.state).lower()} on {alarm.agent_id} {done}.", "success")
    return redirect(_back(tenant, alarm.agent_id))


def _form_failed(form: Any, tenant: Tenant) -> ResponseReturnValue:
    errors = "; ".join(
        f"{form[name].label.text}: {' '.join(msgs)}" for name, msgs in form.errors.items()
    )
    if "csrf_token" in form.errors:
        abort(400)
    flash(f"Nothing changed: {errors}", "error")
    return redirect(_back(tenant, None))


def _back(tenant: Tenant, agent_id: str | None) -> str:
    agent = agent_id or request.form.get("agent_id", "")
    if agent:
        return url_for("tech.site", tenant_slug=tenant.slug, agent_id=agent)
    return url_for("tech.sites")


def _my_tenants() -> list[Tenant]:
    return tenants_of(store.connection(), require_viewer().user)


def _my_tenant(slug: str) -> Tenant:
    """The tenant ``slug`` if this technician looks after it; 404 otherwise (no probing)."""
    tenant = next((t for t in _my_tenants() if t.slug == slug), None)
    if tenant is None:
        abort(404)
    return tenant


def _policy() -> HealthPolicy:
    settings: Settings = current_app.config["CALLCOLLECT_SETTINGS"]
    return policy_from_settings(settings.health)
