"""Read directory entries from LDAP / Active Directory with a read-only bind and a paged search.

Contract:

- ``fetch_ldap_entries(config)`` binds as ``bind_dn`` (simple bind; over ldaps:// or after
  StartTLS when configured), searches ``base_dn`` with ``filter`` in pages of ``page_size``,
  and maps each result to an ``EntryInput`` with the entry's DN as ``external_id``. It never
  writes to the server (the connection is opened ``read_only``).
- Results without a person name or an extension are skipped and counted, not errors: a service
  account without a phone is normal in AD.
- An unreachable server, a refused bind or a failed search is a ``SourceError`` naming the URL
  and what to check; the bind password never appears in a message.
- ``sync_ldap`` applies a fetch to a tenant: new and changed entries are written, and the open
  periods of LDAP entries no longer found are closed (their past calls keep their names).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ldap3
import sqlalchemy as sa
from ldap3.core.exceptions import LDAPException

from datacenter.directory.entries import (
    ApplyReport,
    EntryInput,
    EntryProblem,
    apply_entries,
    close_missing,
    current_holders,
)
from datacenter.directory.ldap_config import LdapConfig
from shared.errors import SourceError

_NOT_DIGIT = re.compile(r"\D")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
_SIP_SCHEMES = ("sip", "sips")


@dataclass
class LdapFetch:
    entries: list[EntryInput] = field(default_factory=list)
    skipped: int = 0


def fetch_ldap_entries(config: LdapConfig) -> LdapFetch:
    wanted = sorted({name for _field, names in config.attributes for name in names})
    try:
        conn = connect_read_only(config)
        try:
            return _search(config, conn, wanted)
        finally:
            conn.unbind()  # a `with` block would leave an auto-bound connection open
    except LDAPException as exc:
        raise SourceError(
            f"LDAP {config.url}: {type(exc).__name__}: {exc}; check ldap.url, ldap.bind_dn, "
            "the bind password file and ldap.base_dn"
        ) from exc


def _search(config: LdapConfig, conn: ldap3.Connection, wanted: list[str]) -> LdapFetch:
    results = conn.extend.standard.paged_search(
        search_base=config.base_dn,
        search_filter=config.search_filter,
        search_scope=ldap3.SUBTREE,
        attributes=wanted,
        paged_size=config.page_size,
        generator=True,
    )
    fetch = LdapFetch()
    for result in results:
        if result.get("type") != "searchResEntry":
            continue
        entry = _entry(config, result["dn"], result.get("attributes", {}))
        if entry is None:
            fetch.skipped += 1
        else:
            fetch.entries.append(entry)
    return fetch


def sync_ldap(
    conn: sa.Connection, tenant_id: int, fetch: LdapFetch, *, now: datetime | None = None
) -> ApplyReport:
    now = now or datetime.now(UTC)
    entries, clashes = _one_per_extension(conn, tenant_id, fetch.entries, now)
    report = apply_entries(conn, tenant_id, entries, source="ldap", now=now)
    report.problems[:0] = clashes
    seen = {entry.external_id for entry in fetch.entries}
    report.closed += close_missing(conn, tenant_id, "ldap", seen, now=now)
    return report


def _one_per_extension(
    conn: sa.Connection, tenant_id: int, entries: list[EntryInput], now: datetime
) -> tuple[list[EntryInput], list[EntryProblem]]:
    """One entry per extension: AD often gives two people one number (a shared phone, a
    leaver not cleaned up). Applying both would hand the extension back and forth on every sync,
    so the current holder keeps it (else the first DN in order) and the others are reported."""
    by_extension: dict[str, list[EntryInput]] = {}
    for entry in entries:
        by_extension.setdefault(entry.extension, []).append(entry)
    if all(len(group) == 1 for group in by_extension.values()):
        return entries, []
    holders = current_holders(conn, tenant_id, now)
    kept: list[EntryInput] = []
    problems: list[EntryProblem] = []
    for extension, group in by_extension.items():
        group.sort(key=lambda e: (e.external_id != holders.get(extension), e.external_id))
        kept.append(group[0])
        problems += [
            EntryProblem(0, f"extension {extension} of {other.external_id} is also "
                            f"{group[0].external_id}'s: kept the latter; fix it in the directory")
            for other in group[1:]
        ]  # fmt: skip
    return kept, problems


def connect_read_only(config: LdapConfig) -> ldap3.Connection:
    tls = None
    if config.secure:
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if config.tls_verify else ssl.CERT_NONE,
            ca_certs_file=config.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
    server = ldap3.Server(
        config.url, use_ssl=config.url.lower().startswith("ldaps://"), tls=tls,
        connect_timeout=config.timeout_seconds, get_info=ldap3.NONE,
    )  # fmt: skip
    conn = ldap3.Connection(
        server,
        user=config.bind_dn,
        password=config.bind_password,
        read_only=True,
        receive_timeout=config.timeout_seconds,
        raise_exceptions=True,
    )
    try:  # bound by hand, not auto_bind: a refused bind must still close the socket
        conn.open()
        if config.start_tls:
            conn.start_tls()
        conn.bind()
    except LDAPException:
        conn.unbind()
        raise
    return conn


def _entry(config: LdapConfig, dn: str, attributes: dict[str, Any]) -> EntryInput | None:
    def first(field_name: str) -> str:
        for name in config.names(field_name):
            value = attributes.get(name)
            if isinstance(value, list):
                value = value[0] if value else ""
            if value:
                return str(value).strip()
        return ""

    person = first("person") or first("account")
    extension = _extension(first("extension"), config.extension_digits)
    if not person or not extension:
        return None
    return EntryInput(
        extension=extension,
        person=person[:200],
        email=first("email")[:254],
        department=first("department")[:200],
        cost_centre=first("cost_centre")[:200],
        site=first("site")[:200],
        external_id=dn,
    )


def _extension(value: str, digits: int) -> str:
    """A SIP address (a Lync / Skype for Business user's ``msRTCSIP-PrimaryUserAddress``,
    ``sip:alice@acme.example``) is kept as the address the user's calls carry: scheme and
    ``;parameters`` dropped, dots and hyphens kept, ``extension_digits`` not applied. A phone
    number loses its punctuation and, with ``extension_digits``, all but its last digits."""
    scheme, colon, rest = value.partition(":")
    if colon and scheme.lower() in _SIP_SCHEMES:
        return rest.split(";", 1)[0].strip()[:64]
    if "@" in value:
        return value.split(";", 1)[0].strip()[:64]
    cleaned = _PHONE_PUNCTUATION.sub("", value)
    if digits:
        cleaned = _NOT_DIGIT.sub("", cleaned)[-digits:]
    return cleaned[:64]
