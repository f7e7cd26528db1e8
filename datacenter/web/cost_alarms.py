"""The tenant admin's cost alarm pages: the alarms (filter, open, acknowledge) and the rules.

Contract:

- Every page needs the ``tenant_admin`` role and reads only the admin's own tenant through
  ``datacenter.cost_alarms.store`` (which takes the tenant on every call); an alarm id of
  another tenant is answered 404, exactly like one that does not exist.
- ``/cost-alarms`` lists alarms newest first, filtered by ``rule``, ``status`` (``open`` /
  ``acknowledged``) and ``subject`` from the query string; ``/cost-alarms/<id>`` shows the
  alarm, its delivery state and its calls, each linking to its page in the call list.
- ``POST /cost-alarms/<id>/acknowledge`` stamps the admin and the time, once, and writes
  ``cost_alarm_acknowledged`` to the audit log; acknowledged alarms are sent no more.
- ``/cost-alarms/rules`` shows the rules document and the webhook secret; a POST stores a
  document that parses (the error names the key otherwise, and nothing is stored) and writes
  ``cost_alarm_rules_changed`` to the audit log.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from datacenter.accounts.tenants import Tenant
from datacenter.cost_alarms.deliver import KIND_LABELS, subject_text
from datacenter.cost_alarms.rules import RuleError, format_micro
from datacenter.cost_alarms.store import (
    AlarmFilter,
    acknowledge,
    alarm_calls,
    get_alarm,
    list_alarms,
    load_rules,
    masked,
    rule_ids,
    save_rules,
)
from datacenter.store.engine import write_transaction
from datacenter.web.auth import record_audit, require_viewer, role_required, utc_now
from datacenter.web.database import store
from datacenter.web.forms import ButtonForm

MAX_DOCUMENT = 64 * 1024
STATUS_CHOICES = [
    SelectChoice("", "Open or acknowledged"),
    SelectChoice("open", "Open"),
    SelectChoice("acknowledged", "Acknowledged"),
]

# What the page offers a tenant without rules: every kind once, ready to adjust and save.
EXAMPLE_RULES = """\
[hours]
days = "mon-fri"
open = "08:00"
close = "18:00"

[delivery]
emails = []          # empty: the tenant admins
webhook_url = ""     # e.g. "https://hooks.example.com/callcollect"

[[rules]]
kind = "call_cost"
over = "25.00"

[[rules]]
kind = "extension_day_cost"
over = "100.00"

[[rules]]
kind = "tenant_day_cost"
over = "1000.00"

[[rules]]
kind = "off_hours"
classes = ["premium", "international"]

[[rules]]
kind = "long_call"
minutes = 120

[[rules]]
kind = "volume"
weeks = 4
factor = 3
min_calls = 20

[[rules]]
kind = "short_calls"
calls = 5
seconds = 10
window_minutes = 60
"""

bp = Blueprint("cost_alarms", __name__, url_prefix="/cost-alarms")


class AlarmFilterForm(FlaskForm):  # type: ignore[misc]
    class Meta:
        csrf = False

    rule = SelectField("Rule", choices=[SelectChoice("", "Any rule")], default="")
    status = SelectField("Status", choices=STATUS_CHOICES, default="")
    subject = StringField("Extension or number", validators=[Optional(), Length(max=64)])


class RulesForm(FlaskForm):  # type: ignore[misc]
    document = TextAreaField("Rules (TOML)", validators=[Length(max=MAX_DOCUMENT)])


@bp.route("")
@role_required("tenant_admin")
def alarms() -> ResponseReturnValue:
    tenant = _tenant()
    conn = store.connection()
    form = AlarmFilterForm(formdata=request.args)
    form.rule.choices = [SelectChoice("", "Any rule")] + [
        SelectChoice(r, r) for r in rule_ids(conn, tenant.tenant_id)
    ]
    valid = form.validate()
    chosen = AlarmFilter(
        rule_id=form.rule.data or "",
        status=form.status.data or "",
        subject=(form.subject.data or "").strip(),
    )
    digits = require_viewer().mask_digits
    found = [masked(a, [], digits)[0] for a in list_alarms(conn, tenant.tenant_id, chosen)]
    found = found if valid else []
    return render_template(
        "cost_alarms/alarms.html", form=form, alarms=found, zone=tenant.zone,
        labels=KIND_LABELS, subject_text=subject_text,
    )  # fmt: skip


@bp.route("/<cost_alarm_id>")
@role_required("tenant_admin")
def alarm(cost_alarm_id: str) -> ResponseReturnValue:
    tenant = _tenant()
    conn = store.connection()
    found = get_alarm(conn, tenant.tenant_id, cost_alarm_id)
    if found is None:
        abort(404)
    shown, calls = masked(found, alarm_calls(conn, tenant.tenant_id, found.alarm_id, tenant.zone),
                          require_viewer().mask_digits)  # fmt: skip
    return render_template(
        "cost_alarms/alarm.html", alarm=shown, calls=calls,
        zone=tenant.zone, labels=KIND_LABELS, subject_text=subject_text,
        format_micro=format_micro, ack_form=ButtonForm(),
    )  # fmt: skip


@bp.route("/<cost_alarm_id>/acknowledge", methods=["POST"])
@role_required("tenant_admin")
def acknowledge_alarm(cost_alarm_id: str) -> ResponseReturnValue:
    tenant = _tenant()
    if not ButtonForm().validate_on_submit():
        abort(400)
    viewer = require_viewer()
    with write_transaction(store.engine) as conn:
        found = get_alarm(conn, tenant.tenant_id, cost_alarm_id)
        if found is None:
            abort(404)
        if acknowledge(conn, tenant.tenant_id, found.alarm_id, actor=viewer.email, now=utc_now()):
            record_audit(
                conn, "cost_alarm_acknowledged", tenant_id=tenant.tenant_id,
                subject=found.alarm_id,
                details={"rule": found.rule_id, "subject": found.subject, "period": found.period},
            )  # fmt: skip
            flash("Alarm acknowledged: nothing more is sent about it.", "success")
        else:
            flash(f"Already acknowledged by {found.acknowledged_by}.", "info")
    return redirect(url_for("cost_alarms.alarm", cost_alarm_id=cost_alarm_id))


@bp.route("/rules", methods=["GET", "POST"])
@role_required("tenant_admin")
def rules() -> ResponseReturnValue:
    tenant = _tenant()
    form = RulesForm()
    error = ""
    if form.validate_on_submit():
        text = str(form.document.data or "")
        try:
            with write_transaction(store.engine) as conn:
                saved = save_rules(conn, tenant.tenant_id, text, actor=require_viewer().email,
                                   now=utc_now())  # fmt: skip
                record_audit(conn, "cost_alarm_rules_changed", tenant_id=tenant.tenant_id,
                             details={"rules": [r.rule_id for r in saved.rules.rules]})  # fmt: skip
        except RuleError as exc:
            error = str(exc)
        else:
            flash(f"Saved {len(saved.rules.rules)} rule(s).", "success")
            return redirect(url_for("cost_alarms.rules"))
    stored = load_rules(store.connection(), tenant.tenant_id)
    if request.method == "GET":
        form.document.data = stored.document if stored is not None else EXAMPLE_RULES
    return render_template("cost_alarms/rules.html", form=form, stored=stored, error=error,
                           zone=tenant.zone)  # fmt: skip


def _tenant() -> Tenant:
    tenant = require_viewer().tenant
    if tenant is None:  # pragma: no cover - the schema gives every tenant admin a tenant
        abort(403)
    return tenant
