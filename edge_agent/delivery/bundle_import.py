"""`edge-agent enroll --import BUNDLE`: install what `datacenter agent approve` returned.

The bundle (``shared.enrolment.LandingBundle``) is public. Installing it writes:

- the landing host's key line into ``uplink.known_hosts`` (replacing this host's earlier line,
  keeping others), so the uplink pins it and never trusts on first use;
- the data centre's certificates to ``delivery.datacentre_certificates`` (or
  ``STATE/identity/datacentre-certificates.pem`` when that is not set): a newer bundle replaces
  them, which is how an envelope-key rotation reaches the agent;
- ``STATE/identity/landing.json``: the bundle itself, for ``edge-agent check`` and support.

It refuses a bundle made for another tenant or agent id. The uplink settings the config must
hold (``uplink.username`` = the account, host, port, ``/incoming`` and ``/receipts``) are
returned for printing: the config file is the operator's and is not rewritten.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import AgentSettings
from edge_agent.delivery.enrollment import IDENTITY_DIR
from shared.durable import atomic_write
from shared.enrolment import LandingBundle, parse_bundle
from shared.errors import ValidationError
from shared.keys import DatacentreCertificates, fingerprint

CERTIFICATES_FILE = "datacentre-certificates.pem"
BUNDLE_FILE = "landing.json"


@dataclass(frozen=True, slots=True)
class Imported:
    bundle: LandingBundle
    known_hosts: Path
    certificates: Path
    envelope_fingerprint: str
    receipts_fingerprint: str

    def config_lines(self) -> list[str]:
        b = self.bundle
        return [
            "[uplink]",
            f'host = "{b.host}"',
            f"port = {b.port}",
            f'username = "{b.account}"',
            f'remote_dir = "{b.remote_dir}"',
            f'receipts_dir = "{b.receipts_dir}"',
            "[delivery]",
            f'datacentre_certificates = "{self.certificates}"',
            "[capture]  # only with call recording: its batches go beside incoming/",
            f'remote_dir = "{posixpath.join(posixpath.dirname(b.remote_dir.rstrip("/")), "recordings")}"',
        ]


def import_bundle(settings: AgentSettings, text: str) -> Imported:
    bundle = parse_bundle(text)
    if (bundle.tenant, bundle.agent_id) != (settings.agent.tenant, settings.agent.id):
        raise ValidationError(
            "bundle",
            f"is for agent {bundle.agent_id} of tenant {bundle.tenant}, this appliance is "
            f"{settings.agent.id} of {settings.agent.tenant}: ask for this agent's bundle",
        )
    certificates = DatacentreCertificates.from_pem(
        bundle.datacentre_certificates.encode("ascii"), where="the bundle"
    )
    identity = settings.agent.state_dir / IDENTITY_DIR
    target = settings.delivery.datacentre_certificates or identity / CERTIFICATES_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, certificates.to_pem(), mode=0o644)
    _pin_host(settings.uplink.known_hosts, bundle)
    identity.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(identity / BUNDLE_FILE, bundle.to_json().encode("utf-8"), mode=0o644)
    return Imported(
        bundle=bundle,
        known_hosts=settings.uplink.known_hosts,
        certificates=target,
        envelope_fingerprint=fingerprint(certificates.envelope),
        receipts_fingerprint=fingerprint(certificates.receipts),
    )


def _pin_host(known_hosts: Path, bundle: LandingBundle) -> None:
    line = bundle.known_hosts_line()
    host = line.split()[0]
    kept = []
    if known_hosts.exists():
        kept = [
            entry
            for entry in known_hosts.read_text(encoding="utf-8").splitlines()
            if entry.strip() and entry.split()[0] != host
        ]
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(known_hosts, "\n".join([*kept, line]).encode("utf-8") + b"\n", mode=0o644)
