"""Edge agents: which appliances may deliver batches for which tenant, and their pinned keys.

Agent ids are the ones batch file names carry (``shared.envelope``). ``enroll_agent`` and
``set_agent_certificate`` pin the agent's batch-signing certificate; ``trusted_signers`` is what
ingest verifies a batch against. Functions take a ``Connection`` inside the caller's
transaction; bad input raises ``ValidationError``, a clash ``StoreError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from datacenter.accounts.tenants import require_tenant
from datacenter.store.tables.core import agents
from shared.envelope import batch_file_name
from shared.errors import StoreError, ValidationError
from shared.keys import certificate_pem, common_name, fingerprint


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
    landing_account: str | None = None  # its own SFTP account (None: the tenant's shared folder)
    previous_certificate_fingerprint: str | None = None  # still accepted during a rotation...
    previous_certificate_until: datetime | None = None  # ...until this time


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


def rotate_agent_certificate(
    conn: sa.Connection,
    tenant_slug: str,
    agent_id: str,
    certificate: x509.Certificate,
    *,
    overlap_until: datetime,
) -> Agent:
    """Pin a new certificate and keep accepting the current one until ``overlap_until``.

    Batches and heartbeats the appliance sealed with its old key before it switched (still in
    its outbox, or in flight) are then ingested rather than quarantined.
    """
    tenant = require_tenant(conn, tenant_slug)
    current = get_agent(conn, tenant.tenant_id, agent_id)
    if current is None or current.certificate_fingerprint is None:
        raise StoreError(
            f"agent {agent_id} of tenant {tenant_slug} has no certificate to rotate from: pin "
            f"one with `datacenter agent certificate --tenant {tenant_slug} {agent_id} FILE`"
        )
    pinned = _certificate_values(certificate, agent_id)
    if pinned["certificate_fingerprint"] == current.certificate_fingerprint:
        raise ValidationError("certificate", "is the one already pinned: nothing to rotate")
    conn.execute(
        agents.update()
        .where(agents.c.tenant_id == tenant.tenant_id, agents.c.agent_id == agent_id)
        .values(
            previous_certificate_fingerprint=current.certificate_fingerprint,
            previous_certificate_until=overlap_until,
            **pinned,
        )
    )
    agent = get_agent(conn, tenant.tenant_id, agent_id)
    assert agent is not None
    return agent


def set_landing_account(conn: sa.Connection, tenant_id: int, agent_id: str, account: str) -> None:
    """Record the agent's own landing account (``datacenter.landing``)."""
    conn.execute(
        agents.update()
        .where(agents.c.tenant_id == tenant_id, agents.c.agent_id == agent_id)
        .values(landing_account=account)
    )


def trusted_signers(
    conn: sa.Connection, tenant_id: int, agent_id: str, *, now: datetime | None = None
) -> frozenset[str] | None:
    """The fingerprints ingest accepts for the agent: none pinned is empty; not enrolled, None.

    During a rotation's overlap the previous certificate is accepted too.
    """
    row = conn.execute(
        sa.select(
            agents.c.certificate_fingerprint,
            agents.c.previous_certificate_fingerprint,
            agents.c.previous_certificate_until,
        ).where(agents.c.tenant_id == tenant_id, agents.c.agent_id == agent_id)
    ).one_or_none()
    if row is None:
        return None
    accepted = [row.certificate_fingerprint] if row.certificate_fingerprint else []
    until = row.previous_certificate_until
    if row.previous_certificate_fingerprint and until and (now or datetime.now(UTC)) < until:
        accepted.append(row.previous_certificate_fingerprint)
    return frozenset(accepted)


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


def landing_accounts(conn: sa.Connection) -> dict[str, tuple[int, str]]:
    """Every agent's own landing account: account name -> (tenant_id, agent_id)."""
    rows = conn.execute(
        sa.select(agents.c.landing_account, agents.c.tenant_id, agents.c.agent_id).where(
            agents.c.landing_account.is_not(None)
        )
    )
    return {row.landing_account: (row.tenant_id, row.agent_id) for row in rows}
