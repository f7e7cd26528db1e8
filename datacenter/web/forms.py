"""Forms and form helpers shared by the account, admin and tenant pages.

Every form is a Flask-WTF form, so every POST carries a CSRF token and one without a valid token
is refused (400). ``form_errors`` turns a failed form into one line for a flash message.
"""

from __future__ import annotations

from typing import Any

from flask import abort
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from datacenter.accounts.passwords import MAX_PASSWORD_LENGTH
from datacenter.recordings.access import MAX_RETENTION_DAYS
from datacenter.store.call_scope import SCOPE_KINDS, UserScope, scope_from

TENANT_ROLE_CHOICES = [
    SelectChoice("tenant", "User (sees the calls of their scope)"),
    SelectChoice("tenant_admin", "Tenant admin (whole organisation, manages users)"),
]


def _password(label: str) -> PasswordField:
    return PasswordField(label, validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)])


class ScopeFields:
    """Comma-separated values per scope kind; all empty is the whole organisation."""

    sites = StringField("Sites", validators=[Optional(), Length(max=4000)])
    departments = StringField("Departments", validators=[Optional(), Length(max=4000)])
    cost_centres = StringField("Cost centres", validators=[Optional(), Length(max=4000)])
    extensions = StringField("Extensions", validators=[Optional(), Length(max=4000)])

    def scope(self) -> UserScope:
        fields = dict(zip(SCOPE_KINDS, (self.sites, self.departments, self.cost_centres,
                                        self.extensions), strict=True))  # fmt: skip
        return scope_from({kind: (f.data or "").split(",") for kind, f in fields.items()})

    def fill(self, scope: UserScope) -> None:
        self.sites.data = ", ".join(sorted(scope.sites))
        self.departments.data = ", ".join(sorted(scope.departments))
        self.cost_centres.data = ", ".join(sorted(scope.cost_centres))
        self.extensions.data = ", ".join(sorted(scope.extensions))


class NewUserForm(FlaskForm, ScopeFields):  # type: ignore[misc]
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    display_name = StringField("Name", validators=[Optional(), Length(max=200)])
    role = SelectField("Role", choices=TENANT_ROLE_CHOICES, default="tenant")
    password = _password("Password")


class EditUserForm(FlaskForm, ScopeFields):  # type: ignore[misc]
    role = SelectField("Role", choices=TENANT_ROLE_CHOICES)


class ResetPasswordForm(FlaskForm):  # type: ignore[misc]
    password = _password("New password")


class ChangePasswordForm(FlaskForm):  # type: ignore[misc]
    current = _password("Current password")
    password = _password("New password")
    confirm = PasswordField(
        "New password again", validators=[EqualTo("password", "The two do not match.")]
    )


class ConfirmPasswordForm(FlaskForm):  # type: ignore[misc]
    current = _password("Current password")


class TotpEnrolForm(FlaskForm):  # type: ignore[misc]
    code = StringField("Code from your app", validators=[DataRequired(), Length(max=16)])


class ButtonForm(FlaskForm):  # type: ignore[misc]
    """A form that is only a button (disable, enable, unlock): its CSRF token is the point."""


class MaskingForm(FlaskForm):  # type: ignore[misc]
    tenant = SelectField("Users", choices=[SelectChoice(str(n), str(n)) for n in range(13)])
    tenant_admin = SelectField(
        "Tenant admins", choices=[SelectChoice(str(n), str(n)) for n in range(13)]
    )
    technician = SelectField(
        "Technicians", choices=[SelectChoice(str(n), str(n)) for n in range(13)]
    )


class RecordingPolicyForm(FlaskForm):  # type: ignore[misc]
    retention_days = IntegerField(
        "Keep audio for (days; empty keeps it for ever)",
        validators=[Optional(), NumberRange(min=1, max=MAX_RETENTION_DAYS)],
    )
    technicians = BooleanField("Assigned technicians may play recordings (never download)")


class RecordingPermissionsForm(FlaskForm):  # type: ignore[misc]
    play = BooleanField("May play the recordings of calls in their scope")
    download = BooleanField("May download them (WAV)")


class NewTenantForm(FlaskForm):  # type: ignore[misc]
    slug = StringField("Slug", validators=[DataRequired(), Length(max=63)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    timezone = StringField("Time zone", default="Europe/London", validators=[DataRequired()])


class TenantAdminForm(FlaskForm):  # type: ignore[misc]
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    display_name = StringField("Name", validators=[Optional(), Length(max=200)])
    password = PasswordField(
        "Password (for a new account)", validators=[Optional(), Length(max=MAX_PASSWORD_LENGTH)]
    )


def form_errors(form: Any) -> str:
    """The form's errors as one line; a missing or stale CSRF token is a 400, as everywhere."""
    if "csrf_token" in form.errors:
        abort(400)
    return "; ".join(
        f"{form[name].label.text}: {' '.join(messages)}" for name, messages in form.errors.items()
    )
