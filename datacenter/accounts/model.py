"""Tenants, agents and users: who exists, who may send, who may log in.

Contract:

- Passwords are stored only as argon2id hashes (argon2-cffi, its RFC 9106 defaults); a hash made
  with older parameters is replaced on the next successful login. ``authenticate`` spends the
  same argon2 work on an unknown or disabled account as on a real one, so response time does not
  reveal which emails exist.
- Emails are stored lower-case and unique. A ``tenant`` user belongs to exactly one tenant;
  ``technician`` and ``admin`` users belong to none (the schema enforces both).
- Tenant slugs are folder names in the landing area (``<landing>/<slug>/incoming``); agent ids
  are the ones batch file names carry (``shared.envelope``).
- Functions take a ``Connection`` inside the caller's transaction (use
  ``datacenter.store.engine.write_transaction`` for anything that writes, ``authenticate``
  included: it records the login). Bad input raises ``ValidationError``; a clash with an existing
  row raises ``StoreError``; both say how to fix it.

The `datacenter tenant|agent|user` commands at the end of this module drive these functions.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import argon2
import click
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from datacenter.commands.init import config_option, load_configured_settings, open_configured_store
from datacenter.health.missing_batches import describe, missing_batches
from datacenter.settings import LANDING_FOLDERS
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import agents, tenants, users
from datacenter.store.tables.metadata import ROLES
from shared.envelope import batch_file_name
from shared.errors import CallCollectError, StoreError, ValidationError
from shared.keys import certificate_pem, common_name, fingerprint, load_certificates

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = (
    1024  # argon2 is happy with more; this bounds the work an attacker can ask for
)
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HASHER = argon2.PasswordHasher()
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: int
    slug: str
    name: str
    timezone: str
    created_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Agent:
    tenant_id: int
    agent_id: str
    name: str
    enrolled_at: datetime
    last_seen_at: datetime | None
    last_sequence: int | None
    certificate: str | None = None  # PEM of the pinned batch-signing certificate
    certificate_fingerprint: str | None = None  # shared.keys.fingerprint of it


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    email: str
    role: str  # one of tables.ROLES
    tenant_id: int | None
    display_name: str
    created_at: datetime
    last_login_at: datetime | None
    disabled: bool

    @property
    def is_staff(self) -> bool:
        """Technicians and admins see every tenant's polling health."""
        return self.role in ("technician", "admin")


class PasswordCheck(NamedTuple):
    ok: bool
    new_hash: str | None  # set when the stored hash should be replaced (parameters changed)


# --- passwords ----------------------------------------------------------------------------------


def check_password_policy(password: str) -> None:
    """Raise ``ValidationError`` saying what is wrong with a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password",
            f"is {len(password)} characters; use at least {MIN_PASSWORD_LENGTH} "
            "(a few unrelated words make a good one)",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError("password", f"is longer than {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise ValidationError("password", "is only white space")


def hash_password(password: str) -> str:
    """An argon2id hash (the PHC string that embeds salt and parameters)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> PasswordCheck:
    """Check a password; ``new_hash`` is set when the stored hash uses outdated parameters."""
    try:
        _HASHER.verify(password_hash, password)
    except argon2.exceptions.VerificationError:
        return PasswordCheck(ok=False, new_hash=None)
    except argon2.exceptions.InvalidHashError:
        return PasswordCheck(ok=False, new_hash=None)
    if _HASHER.check_needs_rehash(password_hash):
        return PasswordCheck(ok=True, new_hash=hash_password(password))
    return PasswordCheck(ok=True, new_hash=None)


@cache
def _dummy_hash() -> str:
    return hash_password("callcollect: no such user")


# --- users --------------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    address = email.strip().lower()
    if len(address) > 254 or not _EMAIL_RE.match(address):
        raise ValidationError("email", f"{email!r} is not an email address")
    return address


def create_user(
    conn: sa.Connection,
    email: str,
    password: str,
    role: str,
    tenant_id: int | None = None,
    *,
    display_name: str = "",
) -> User:
    """Add a login. ``tenant_id`` is required for role ``tenant`` and refused for staff."""
    address = normalise_email(email)
    if role not in ROLES:
        raise ValidationError("role", f"{role!r} is not one of: {', '.join(ROLES)}")
    if role == "tenant" and tenant_id is None:
        raise ValidationError("tenant", "a tenant user needs a tenant: pass --tenant SLUG")
    if role != "tenant" and tenant_id is not None:
        raise ValidationError("tenant", f"a {role} sees every tenant: drop --tenant")
    check_password_policy(password)
    if get_user_by_email(conn, address) is not None:
        raise StoreError(f"a user {address} already exists: pick another email")
    values = {
        "email": address,
        "password_hash": hash_password(password),
        "role": role,
        "tenant_id": tenant_id,
        "display_name": display_name.strip(),
        "created_at": datetime.now(UTC),
        "disabled": False,
    }
    try:
        user_id = conn.execute(
            users.insert().values(**values).returning(users.c.user_id)
        ).scalar_one()
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"could not add user {address}: {exc.orig}") from exc
    user = get_user(conn, user_id)
    assert user is not None
    return user


def authenticate(conn: sa.Connection, email: str, password: str) -> User | None:
    """The user if the password is right and the account enabled; records the login time."""
    try:
        address = normalise_email(email)
    except ValidationError:
        address = ""
    row = (
        conn.execute(users.select().where(users.c.email == address)).one_or_none()
        if address
        else None
    )
    if row is None or row.disabled:
        verify_password(_dummy_hash(), password)  # same work as a real check
        return None
    check = verify_password(row.password_hash, password)
    if not check.ok:
        return None
    changes: dict[str, Any] = {"last_login_at": datetime.now(UTC)}
    if check.new_hash is not None:
        changes["password_hash"] = check.new_hash
    conn.execute(users.update().where(users.c.user_id == row.user_id).values(**changes))
    return get_user(conn, row.user_id)


def set_password(conn: sa.Connection, user_id: int, password: str) -> None:
    check_password_policy(password)
    result = conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(password_hash=hash_password(password))
    )
    if result.rowcount != 1:
        raise StoreError(f"no user with id {user_id}")


def set_disabled(conn: sa.Connection, user_id: int, disabled: bool) -> None:
    result = conn.execute(
        users.update().where(users.c.user_id == user_id).values(disabled=disabled)
    )
    if result.rowcount != 1:
        raise StoreError(f"no user with id {user_id}")


def get_user(conn: sa.Connection, user_id: int) -> User | None:
    row = conn.execute(users.select().where(users.c.user_id == user_id)).one_or_none()
    return None if row is None else _user(row)


def get_user_by_email(conn: sa.Connection, email: str) -> User | None:
    address = email.strip().lower()
    row = conn.execute(users.select().where(users.c.email == address)).one_or_none()
    return None if row is None else _user(row)


def list_users(conn: sa.Connection, *, tenant_id: int | None = None) -> list[User]:
    query = users.select().order_by(users.c.email)
    if tenant_id is not None:
        query = query.where(users.c.tenant_id == tenant_id)
    return [_user(row) for row in conn.execute(query)]


def _user(row: sa.Row[Any]) -> User:
    return User(
        user_id=row.user_id,
        email=row.email,
        role=row.role,
        tenant_id=row.tenant_id,
        display_name=row.display_name,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        disabled=bool(row.disabled),
    )


# --- tenants and agents -------------------------------------------------------------------------


def check_slug(slug: str) -> str:
    if not _SLUG_RE.match(slug):
        raise ValidationError(
            "slug",
            f"{slug!r} is not a tenant slug: use 1-63 lower-case letters, digits and '-', "
            "starting with a letter or digit (it names the tenant's landing folder)",
        )
    return slug


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "timezone", f"{name!r} is not an IANA time zone: use e.g. Europe/London or UTC"
        ) from None
    return name


def create_tenant(conn: sa.Connection, slug: str, name: str, timezone: str) -> Tenant:
    check_slug(slug)
    check_timezone(timezone)
    if not name.strip():
        raise ValidationError("name", "must not be empty: pass --name 'Customer Ltd'")
    if get_tenant(conn, slug) is not None:
        raise StoreError(f"tenant {slug} already exists: `datacenter tenant list` shows it")
    values = {
        "slug": slug,
        "name": name.strip(),
        "timezone": timezone,
        "created_at": datetime.now(UTC),
    }
    try:
        conn.execute(tenants.insert().values(**values))
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"could not add tenant {slug}: {exc.orig}") from exc
    tenant = get_tenant(conn, slug)
    assert tenant is not None
    return tenant


def get_tenant(conn: sa.Connection, slug: str) -> Tenant | None:
    row = conn.execute(tenants.select().where(tenants.c.slug == slug)).one_or_none()
    return None if row is None else Tenant(**row._asdict())


def get_tenant_by_id(conn: sa.Connection, tenant_id: int) -> Tenant | None:
    row = conn.execute(tenants.select().where(tenants.c.tenant_id == tenant_id)).one_or_none()
    return None if row is None else Tenant(**row._asdict())


def require_tenant(conn: sa.Connection, slug: str) -> Tenant:
    tenant = get_tenant(conn, slug)
    if tenant is None:
        raise StoreError(
            f"no tenant {slug!r}: add it with `datacenter tenant add {slug} --name ...`"
        )
    return tenant


def list_tenants(conn: sa.Connection) -> list[Tenant]:
    return [
        Tenant(**row._asdict()) for row in conn.execute(tenants.select().order_by(tenants.c.slug))
    ]


def check_agent_id(agent_id: str) -> str:
    try:
        batch_file_name(agent_id, 0)
    except ValueError:
        raise ValidationError(
            "agent_id",
            f"{agent_id!r} is not an agent id: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
        ) from None
    return agent_id


def enroll_agent(
    conn: sa.Connection,
    tenant_slug: str,
    agent_id: str,
    *,
    name: str = "",
    certificate: x509.Certificate | None = None,
) -> Agent:
    """Allow ``agent_id`` to deliver batches into ``tenant_slug``'s landing folder.

    ``certificate`` is the agent's batch-signing certificate (``edge-agent enroll`` prints it);
    ingest accepts signed batches only from exactly that certificate. Without one the agent can
    deliver only unprotected files, and only while ``ingest.accept_unprotected`` is on.
    """
    check_agent_id(agent_id)
    pinned = _certificate_values(certificate, agent_id) if certificate is not None else {}
    tenant = require_tenant(conn, tenant_slug)
    if get_agent(conn, tenant.tenant_id, agent_id) is not None:
        raise StoreError(
            f"agent {agent_id} is already enrolled for tenant {tenant_slug}: to pin a new "
            f"certificate use `datacenter agent certificate --tenant {tenant_slug} {agent_id} FILE`"
        )
    conn.execute(
        agents.insert().values(
            tenant_id=tenant.tenant_id,
            agent_id=agent_id,
            name=name.strip(),
            enrolled_at=datetime.now(UTC),
            **pinned,
        )
    )
    agent = get_agent(conn, tenant.tenant_id, agent_id)
    assert agent is not None
    return agent


def set_agent_certificate(
    conn: sa.Connection, tenant_slug: str, agent_id: str, certificate: x509.Certificate
) -> Agent:
    """Pin a new certificate for an enrolled agent (new appliance, new key, or none before).

    Batches signed with the old certificate are refused from now on (quarantined; moved back to
    ``incoming/`` after a re-pin they are ingested).
    """
    pinned = _certificate_values(certificate, agent_id)
    tenant = require_tenant(conn, tenant_slug)
    done = conn.execute(
        agents.update()
        .where(agents.c.tenant_id == tenant.tenant_id, agents.c.agent_id == agent_id)
        .values(**pinned)
    )
    if done.rowcount != 1:
        raise StoreError(
            f"agent {agent_id} is not enrolled for tenant {tenant_slug}: enrol it with "
            f"`datacenter agent add --tenant {tenant_slug} {agent_id} --certificate FILE`"
        )
    agent = get_agent(conn, tenant.tenant_id, agent_id)
    assert agent is not None
    return agent


def check_agent_certificate(certificate: x509.Certificate, agent_id: str) -> None:
    """An agent's certificate: ECDSA P-256 (what agents sign with), issued for this agent id."""
    key = certificate.public_key()
    if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)):
        raise ValidationError(
            "certificate",
            "is not an agent's batch-signing certificate (ECDSA P-256): enrol the agent.crt "
            "that `edge-agent enroll` printed, not the SSH key or a data centre certificate",
        )
    issued_for = common_name(certificate)
    if issued_for != agent_id:
        raise ValidationError(
            "certificate",
            f"was made for agent {issued_for!r}, not {agent_id!r}: enrol the certificate that "
            f"`edge-agent enroll` printed on {agent_id}'s appliance",
        )


def _certificate_values(certificate: x509.Certificate, agent_id: str) -> dict[str, str]:
    check_agent_certificate(certificate, agent_id)
    return {
        "certificate": certificate_pem(certificate).decode("ascii"),
        "certificate_fingerprint": fingerprint(certificate),
    }


def trusted_signers(conn: sa.Connection, tenant_id: int, agent_id: str) -> frozenset[str] | None:
    """The fingerprints ingest accepts for the agent: none pinned is empty; not enrolled, None."""
    row = conn.execute(
        sa.select(agents.c.certificate_fingerprint).where(
            agents.c.tenant_id == tenant_id, agents.c.agent_id == agent_id
        )
    ).one_or_none()
    if row is None:
        return None
    return frozenset([row.certificate_fingerprint] if row.certificate_fingerprint else [])


def get_agent(conn: sa.Connection, tenant_id: int, agent_id: str) -> Agent | None:
    row = conn.execute(
        agents.select().where(agents.c.tenant_id == tenant_id, agents.c.agent_id == agent_id)
    ).one_or_none()
    return None if row is None else Agent(**row._asdict())


def list_agents(conn: sa.Connection, tenant_id: int | None = None) -> list[Agent]:
    query = agents.select().order_by(agents.c.tenant_id, agents.c.agent_id)
    if tenant_id is not None:
        query = query.where(agents.c.tenant_id == tenant_id)
    return [Agent(**row._asdict()) for row in conn.execute(query)]


# --- commands -----------------------------------------------------------------------------------


def _run(config_path: Path | None, action: Callable[[sa.Connection], _T]) -> _T:
    """Run ``action`` in one write transaction on the configured store; errors as one sentence."""
    _settings, engine = open_configured_store(config_path)
    try:
        with write_transaction(engine) as conn:
            return action(conn)
    except CallCollectError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


@click.group("tenant")
def tenant_group() -> None:
    """Add and list tenants (customers whose calls the data centre holds)."""


@tenant_group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The customer's name, as reports show it.")
@click.option("--timezone", "timezone", default="UTC", show_default=True,
              help="IANA zone for the tenant's days and reports, e.g. Europe/London.")  # fmt: skip
@config_option
def tenant_add_command(slug: str, name: str, timezone: str, config_path: Path | None) -> None:
    """Add a tenant and create its landing folders.

    SLUG names the tenant's folder in the landing area (<landing.root>/SLUG/incoming/ and
    archive/, quarantine/, receipts/) and is what its agents put in their batch manifests.

    \b
    Example:
      datacenter tenant add acme --name "Acme Widgets Ltd" --timezone Europe/London
    """
    settings = load_configured_settings(config_path)
    tenant = _run(config_path, lambda conn: create_tenant(conn, slug, name, timezone))
    try:
        for folder in LANDING_FOLDERS:
            settings.landing.tenant_dir(slug, folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"tenant {slug} added, but its landing folders could not be created under "
            f"{settings.landing.root}: {exc.strerror}; create them or fix landing.root"
        ) from exc
    click.echo(
        f"added tenant {tenant.slug} ({tenant.name}, {tenant.timezone}), id {tenant.tenant_id}"
    )


@tenant_group.command("list")
@config_option
def tenant_list_command(config_path: Path | None) -> None:
    """List tenants: slug, id, time zone, name."""
    for tenant in _run(config_path, list_tenants):
        click.echo(f"{tenant.slug}\t{tenant.tenant_id}\t{tenant.timezone}\t{tenant.name}")


@click.group("agent")
def agent_group() -> None:
    """Enrol and list edge agents (which appliances may deliver batches for which tenant)."""


_certificate_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@agent_group.command("add")
@click.argument("agent_id")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant the agent serves.")
@click.option("--certificate", "certificate_path", type=_certificate_file, default=None,
              help="The agent's batch-signing certificate (PEM), as `edge-agent enroll` "
              "printed it. Without it the agent can send only unprotected batches.")  # fmt: skip
@click.option("--name", default="", help="A label for technicians, e.g. the site.")
@config_option
def agent_add_command(
    agent_id: str,
    tenant_slug: str,
    certificate_path: Path | None,
    name: str,
    config_path: Path | None,
) -> None:
    """Enrol an agent for a tenant; until then its batch files are quarantined.

    The certificate is pinned: ingest accepts the agent's signed, encrypted batches only when
    they are signed by exactly this certificate. Confirm its fingerprint (printed below and by
    `edge-agent enroll` on the appliance) with the site by phone.

    \b
    Example:
      datacenter agent add --tenant acme acme-london-1 --certificate agent.crt --name "London office"
    """
    certificate = _load_certificate(certificate_path) if certificate_path else None
    agent = _run(
        config_path,
        lambda conn: enroll_agent(conn, tenant_slug, agent_id, name=name, certificate=certificate),
    )
    click.echo(f"enrolled agent {agent.agent_id} for tenant {tenant_slug}")
    if agent.certificate_fingerprint:
        click.echo(f"pinned certificate {agent.certificate_fingerprint}")
    else:
        click.echo(
            "warning: no certificate pinned, so its signed batches are quarantined; pin it with "
            f"`datacenter agent certificate --tenant {tenant_slug} {agent_id} agent.crt`",
            err=True,
        )


@agent_group.command("certificate")
@click.argument("agent_id")
@click.argument("certificate_path", metavar="FILE", type=_certificate_file)
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant the agent serves.")
@config_option
def agent_certificate_command(
    agent_id: str, certificate_path: Path, tenant_slug: str, config_path: Path | None
) -> None:
    """Pin a new batch-signing certificate for an enrolled agent.

    For a replaced appliance, a new key, or an agent enrolled without one. Batches signed with
    the previous certificate are quarantined from now on.

    \b
    Example:
      datacenter agent certificate --tenant acme acme-london-1 agent.crt
    """
    certificate = _load_certificate(certificate_path)
    agent = _run(
        config_path,
        lambda conn: set_agent_certificate(conn, tenant_slug, agent_id, certificate),
    )
    click.echo(
        f"pinned certificate {agent.certificate_fingerprint} for agent {agent.agent_id} of "
        f"tenant {tenant_slug}"
    )


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        certificates = load_certificates(path)
    except CallCollectError as exc:
        raise click.ClickException(
            f"{exc}: pass the agent.crt that `edge-agent enroll` printed"
        ) from exc
    if len(certificates) != 1:
        raise click.ClickException(
            f"{path} holds {len(certificates)} certificates; pass the agent's own agent.crt, "
            "which holds one"
        )
    return certificates[0]


@agent_group.command("list")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant's agents.")
@config_option
def agent_list_command(tenant_slug: str | None, config_path: Path | None) -> None:
    """List agents, tab-separated.

    Columns: tenant, agent id, last batch sequence stored, last seen (UTC), missing batch
    numbers (never landed or quarantined; ask the site to re-send them), the pinned certificate's
    fingerprint, name. "-" means none.
    """

    def action(conn: sa.Connection) -> list[tuple[str, Agent, str]]:
        by_id = {t.tenant_id: t.slug for t in list_tenants(conn)}
        tenant_id = require_tenant(conn, tenant_slug).tenant_id if tenant_slug else None
        return [
            (by_id[a.tenant_id], a, describe(missing_batches(conn, a.tenant_id, a.agent_id)))
            for a in list_agents(conn, tenant_id)
        ]

    for slug, agent, missing in _run(config_path, action):
        seen = agent.last_seen_at.isoformat(timespec="seconds") if agent.last_seen_at else "never"
        sequence = "-" if agent.last_sequence is None else str(agent.last_sequence)
        pinned = agent.certificate_fingerprint or "-"
        click.echo(
            f"{slug}\t{agent.agent_id}\t{sequence}\t{seen}\t{missing}\t{pinned}\t{agent.name}"
        )


@click.group("user")
def user_group() -> None:
    """Add and list web console users."""


@user_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="tenant: sees one tenant's reports; technician: every site's polling health; "
              "admin: everything, including users.")  # fmt: skip
@click.option("--tenant", "tenant_slug", default=None, help="Tenant slug (role tenant only).")
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")  # fmt: skip
@config_option
def user_add_command(
    email: str,
    role: str,
    tenant_slug: str | None,
    display_name: str,
    password_stdin: bool,
    config_path: Path | None,
) -> None:
    """Add a web console user; prompts for the password unless --password-stdin.

    Passwords need at least 10 characters; they are stored only as argon2id hashes.

    \b
    Examples:
      datacenter user add ops@example.com --role admin
      echo "$PASSWORD" | datacenter user add it@acme.example --role tenant --tenant acme --password-stdin
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password_policy(password)
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc

    def action(conn: sa.Connection) -> User:
        tenant_id = require_tenant(conn, tenant_slug).tenant_id if tenant_slug else None
        return create_user(conn, email, password, role, tenant_id, display_name=display_name)

    user = _run(config_path, action)
    scope = f" of tenant {tenant_slug}" if tenant_slug else ""
    click.echo(f"added {user.role} {user.email}{scope}, id {user.user_id}")


@user_group.command("list")
@config_option
def user_list_command(config_path: Path | None) -> None:
    """List users: email, role, tenant, last login (UTC), enabled or disabled."""

    def action(conn: sa.Connection) -> list[tuple[str, User]]:
        by_id = {t.tenant_id: t.slug for t in list_tenants(conn)}
        return [(by_id.get(u.tenant_id, "-") if u.tenant_id else "-", u) for u in list_users(conn)]

    for slug, user in _run(config_path, action):
        login = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        state = "disabled" if user.disabled else "enabled"
        click.echo(f"{user.email}\t{user.role}\t{slug}\t{login}\t{state}")
