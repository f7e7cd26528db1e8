"""`datacenter agent approve`: an enrolment request in, an agent with its own landing out.

``approve`` runs in the caller's store transaction, so a failure to make the account or its
folders rolls the registration back: pin the agent's certificate (or find it already pinned:
approving the same request again only repairs the folders), choose its landing account, make
the system user (``system_users``) and folders (``datacenter.landing.layout``), and return the
bundle for ``edge-agent enroll --import``. Nothing secret is read or written: the request, the
host key and the data centre's certificates are all public.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from datacenter.accounts.agents import (
    enroll_agent,
    get_agent,
    set_agent_certificate,
    set_landing_account,
)
from datacenter.accounts.tenants import require_tenant
from datacenter.landing.layout import AgentLanding, account_name, create_landing
from datacenter.landing.users import AGENTS_GROUP, Owner, current_owner, ensure_account
from shared.enrolment import EnrolmentRequest, LandingBundle
from shared.errors import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApproveOptions:
    landing_root: Path
    host: str
    port: int
    host_key: str  # "ssh-ed25519 AAAA..."
    datacentre_certificates: str  # PEM
    service: Owner  # the data centre's service user (ingest)
    system_users: bool = True
    group: str = AGENTS_GROUP
    name: str = ""


def approve(conn: sa.Connection, request: EnrolmentRequest, opts: ApproveOptions) -> LandingBundle:
    """Register the agent, make its landing account, and return its bundle."""
    tenant = require_tenant(conn, request.tenant)
    agent = get_agent(conn, tenant.tenant_id, request.agent_id)
    if agent is None:
        enroll_agent(conn, tenant.slug, request.agent_id, name=opts.name,
                     certificate=request.certificate)  # fmt: skip
    elif agent.certificate_fingerprint is None:
        set_agent_certificate(conn, tenant.slug, request.agent_id, request.certificate)
    elif agent.certificate_fingerprint != request.fingerprint:
        raise StoreError(
            f"agent {request.agent_id} of tenant {tenant.slug} is pinned to certificate "
            f"{agent.certificate_fingerprint}, not {request.fingerprint}: for a new key use "
            f"`datacenter agent rotate --tenant {tenant.slug} {request.agent_id} FILE`"
        )
    account = (agent.landing_account if agent else None) or account_name(
        tenant.slug, request.agent_id
    )
    set_landing_account(conn, tenant.tenant_id, request.agent_id, account)
    owner = ensure_account(account, group=opts.group) if opts.system_users else current_owner()
    landing = AgentLanding(opts.landing_root, account)
    create_landing(landing, tenant_slug=tenant.slug, ssh_public_key=request.ssh_public_key,
                   agent=owner, service=opts.service)  # fmt: skip
    log.info("agent %s of tenant %s approved: landing account %s at %s",
             request.agent_id, tenant.slug, account, landing.chroot)  # fmt: skip
    return LandingBundle(
        tenant=tenant.slug,
        agent_id=request.agent_id,
        account=account,
        host=opts.host,
        port=opts.port,
        host_key=" ".join(opts.host_key.split()[:2]),
        datacentre_certificates=opts.datacentre_certificates,
    )
