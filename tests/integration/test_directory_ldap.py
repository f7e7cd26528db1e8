"""LDAP / Active Directory import against a real slapd: AD attribute names, paged search,
read-only bind, re-sync updates and closes, and the command's errors."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from ldap3.core.exceptions import LDAPConnectionIsReadOnlyError

from datacenter.cli import main
from datacenter.directory.entries import EntryFilter, list_entries
from datacenter.directory.ldap_config import LdapConfig, load_ldap_config
from datacenter.directory.ldap_import import connect_read_only, fetch_ldap_entries, sync_ldap
from datacenter.directory.sync import sync_forever
from datacenter.store.engine import write_transaction
from shared.errors import ConfigError, SourceError
from tests.fixtures.slapd import SlapdServer
from tests.fixtures.store import gen_tenant

PEOPLE = [
    # uid, displayName, ipPhone, telephoneNumber, department, office, cost centre
    ("ann", "Ann Archer", "201", "+44 20 7946 0201", "Sales", "London", "CC-10"),
    ("bob", "Bob Baker", "", "+44 20 7946 0202", "Support", "Leeds", "CC-20"),
    ("cy", "Cy Cole", "203", "", "Sales", "London", ""),
    ("dee", "Dee Dunn", "204", "", "Finance", "London", "CC-30"),
    ("eve", "Eve Ellis", "205", "", "Support", "Leeds", "CC-20"),
    ("svc", "Backup Service", "", "", "", "", ""),  # no phone: skipped, not an error
]


def _person_ldif(uid: str, name: str, ip: str, tel: str, dept: str, office: str, cc: str) -> str:
    lines = [
        f"dn: cn={name},ou=people,dc=acme,dc=example", "objectClass: user", f"cn: {name}",
        f"sn: {name.split()[-1]}", f"displayName: {name}", f"sAMAccountName: {uid}",
        "objectCategory: person", f"mail: {uid}@acme.example",
    ]  # fmt: skip
    for attribute, value in (("ipPhone", ip), ("telephoneNumber", tel), ("department", dept),
                             ("physicalDeliveryOfficeName", office), ("costCentre", cc)):  # fmt: skip
        if value:
            lines.append(f"{attribute}: {value}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def directory_server(slapd_server: SlapdServer) -> SlapdServer:
    slapd_server.ldif("\n".join(_person_ldif(*p) for p in PEOPLE), add=True)
    return slapd_server


def _config(server: SlapdServer, tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "ldap.pw").write_text(server.bind_password + "\n")
    path = tmp_path / "ldap.toml"
    path.write_text(
        f'[ldap]\nurl = "{server.url}"\nbase_dn = "ou=people,{server.base_dn}"\n'
        f'bind_dn = "{server.bind_dn}"\nbind_password_file = "ldap.pw"\npage_size = 2\n'
        "extension_digits = 3\n" + extra
    )
    return path


def test_fetch_maps_active_directory_attributes_over_pages(
    directory_server: SlapdServer, tmp_path: Path
) -> None:
    config = load_ldap_config(_config(directory_server, tmp_path,
                                      '[ldap.attributes]\ncost_centre = "costCentre"\n'))  # fmt: skip
    assert config.page_size == 2  # six results: three pages at least
    fetch = fetch_ldap_entries(config)
    got = {e.person: (e.extension, e.department, e.site, e.cost_centre, e.email)
           for e in fetch.entries}  # fmt: skip
    assert got == {
        "Ann Archer": ("201", "Sales", "London", "CC-10", "ann@acme.example"),
        # No ipPhone: telephoneNumber, cut to its last three digits by extension_digits.
        "Bob Baker": ("202", "Support", "Leeds", "CC-20", "bob@acme.example"),
        "Cy Cole": ("203", "Sales", "London", "", "cy@acme.example"),
        "Dee Dunn": ("204", "Finance", "London", "CC-30", "dee@acme.example"),
        "Eve Ellis": ("205", "Support", "Leeds", "CC-20", "eve@acme.example"),
    }
    assert fetch.skipped == 1
    assert {e.external_id for e in fetch.entries} == {
        f"cn={p[1]},ou=people,dc=acme,dc=example" for p in PEOPLE[:5]
    }


def test_a_lync_users_sip_address_is_their_extension(
    directory_server: SlapdServer, tmp_path: Path
) -> None:
    """A Lync / Skype for Business call's extension is its user's SIP address: read from
    msRTCSIP-PrimaryUserAddress it loses its scheme and parameters, keeps its dots and
    hyphens, and is not cut to extension_digits; a phone number still is."""
    dn = "cn=Lyn Lee,ou=people,dc=acme,dc=example"
    directory_server.ldif(
        f"dn: {dn}\nobjectClass: user\ncn: Lyn Lee\nsn: Lee\ndisplayName: Lyn Lee\n"
        "sAMAccountName: lyn\nobjectCategory: person\n"
        "msRTCSIP-PrimaryUserAddress: sip:Lyn.Lee@acme-corp.example\n",
        add=True,
    )
    try:
        attributes = '[ldap.attributes]\nextension = ["msRTCSIP-PrimaryUserAddress", "ipPhone",' \
            ' "telephoneNumber"]\n'  # fmt: skip
        fetch = fetch_ldap_entries(
            load_ldap_config(_config(directory_server, tmp_path, attributes))
        )
    finally:
        directory_server.ldif(f"dn: {dn}\nchangetype: delete\n")
    got = {e.person: e.extension for e in fetch.entries}
    assert got["Lyn Lee"] == "Lyn.Lee@acme-corp.example"
    assert got["Ann Archer"] == "201" and got["Bob Baker"] == "202"


def test_resync_updates_moves_and_closes_without_losing_history(
    directory_server: SlapdServer, store: sa.Engine, tmp_path: Path
) -> None:
    tenant = gen_tenant(store)
    config = load_ldap_config(_config(directory_server, tmp_path))
    first = datetime(2026, 1, 1, tzinfo=UTC)
    with write_transaction(store) as conn:
        report = sync_ldap(conn, tenant.tenant_id, fetch_ldap_entries(config), now=first)
    assert (report.added, report.closed) == (5, 0)
    # Ann changes department, Dee moves to extension 206, Eve leaves.
    directory_server.ldif(
        "dn: cn=Ann Archer,ou=people,dc=acme,dc=example\nchangetype: modify\n"
        "replace: department\ndepartment: Marketing\n\n"
        "dn: cn=Dee Dunn,ou=people,dc=acme,dc=example\nchangetype: modify\n"
        "replace: ipPhone\nipPhone: 206\n\n"
        "dn: cn=Eve Ellis,ou=people,dc=acme,dc=example\nchangetype: delete\n"
    )
    try:
        second = first + timedelta(days=30)
        with write_transaction(store) as conn:
            report = sync_ldap(conn, tenant.tenant_id, fetch_ldap_entries(config), now=second)
        # Dee: one new period (206), her 204 period closed; Eve's closed; Ann updated in place.
        assert (report.added, report.updated, report.closed) == (1, 1, 2), report.summary()
        with store.connect() as conn:
            entries = list_entries(conn, tenant.tenant_id)
            current = list_entries(conn, tenant.tenant_id, EntryFilter(current_only=True))
        periods = {(e.person, e.extension): (e.valid_from, e.valid_to) for e in entries}
        assert periods[("Dee Dunn", "204")] == (first, second)
        assert periods[("Dee Dunn", "206")] == (second, None)
        assert periods[("Eve Ellis", "205")] == (first, second)
        assert {e.person: e.department for e in current} == {
            "Ann Archer": "Marketing", "Bob Baker": "Support", "Cy Cole": "Sales",
            "Dee Dunn": "Finance",
        }  # fmt: skip
        assert all(e.source == "ldap" for e in entries)
    finally:  # give the module's server back as it was
        directory_server.ldif(
            "dn: cn=Ann Archer,ou=people,dc=acme,dc=example\nchangetype: modify\n"
            "replace: department\ndepartment: Sales\n\n"
            "dn: cn=Dee Dunn,ou=people,dc=acme,dc=example\nchangetype: modify\n"
            "replace: ipPhone\nipPhone: 204\n"
        )
        directory_server.ldif(_person_ldif(*PEOPLE[4]), add=True)


def test_a_wrong_password_is_a_source_error_without_the_password(
    directory_server: SlapdServer,
) -> None:
    config = LdapConfig(url=directory_server.url, base_dn=directory_server.base_dn,
                        bind_dn=directory_server.bind_dn, bind_password="wrong-pw-xyz")  # fmt: skip
    with pytest.raises(SourceError) as caught:
        fetch_ldap_entries(config)
    assert "invalidCredentials" in str(caught.value) or "Bind" in str(caught.value)
    assert "wrong-pw-xyz" not in str(caught.value)


def test_the_bind_is_read_only(directory_server: SlapdServer) -> None:
    config = LdapConfig(url=directory_server.url, base_dn=directory_server.base_dn,
                        bind_dn=directory_server.bind_dn,
                        bind_password=directory_server.bind_password)  # fmt: skip
    conn = connect_read_only(config)
    try:
        assert conn.read_only
        with pytest.raises(LDAPConnectionIsReadOnlyError):
            conn.delete(f"cn=Ann Archer,ou=people,{directory_server.base_dn}")  # type: ignore[no-untyped-call]
    finally:
        conn.unbind()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "ldap.toml"
    path.write_text('[ldap]\nurl = "http://dc1"\n')
    with pytest.raises(ConfigError, match=r"ldap\.url"):
        load_ldap_config(path)
    path.write_text('[ldap]\nurl = "ldap://dc1"\nbase_dn = "dc=x"\nbind_dn = "cn=r"\n'
                    'bind_password_file = "pw"\n')  # fmt: skip
    with pytest.raises(ConfigError, match=r"ldap\.bind_password_file"):
        load_ldap_config(path)
    (tmp_path / "pw").write_text("x")
    path.write_text(path.read_text() + '[ldap.attributes]\nphone = "ipPhone"\n')
    with pytest.raises(ConfigError, match=r"ldap\.attributes\.phone"):
        load_ldap_config(path)


def test_the_sync_command(directory_server: SlapdServer, store: sa.Engine, tmp_path: Path) -> None:
    gen_tenant(store)
    config = tmp_path / "dc.toml"
    url = store.url.render_as_string(hide_password=False)
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{url}"\n')
    source = _config(directory_server, tmp_path)
    result = CliRunner().invoke(main, ["directory", "sync", "--tenant", "acme", "--source",
                                       str(source), "--config", str(config)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 added" in result.output
    (tmp_path / "ldap.pw").write_text("not-the-password\n")
    failed = CliRunner().invoke(main, ["directory", "sync", "--tenant", "acme", "--source",
                                       str(source), "--config", str(config)])  # fmt: skip
    assert failed.exit_code == SourceError.exit_code, failed.output


@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_tls_binds_verify_the_server_certificate(slapd_tls_server: SlapdServer, mode: str) -> None:
    server = slapd_tls_server
    url = server.url if mode == "starttls" else server.ldaps_url
    base = LdapConfig(url=url, base_dn=server.base_dn, bind_dn=server.bind_dn,
                      bind_password=server.bind_password, start_tls=mode == "starttls",
                      search_filter="(objectClass=*)")  # fmt: skip
    trusted = replace(base, ca_file=server.ca_file)
    assert trusted.secure
    fetch = fetch_ldap_entries(trusted)  # the base has no people: it binds and searches
    assert fetch.entries == [] and fetch.skipped >= 1
    # Without the CA the server's certificate is not trusted: no bind, no password sent.
    other_ca = server.work_dir / "other-ca.pem"
    other_ca.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    with pytest.raises(SourceError):
        fetch_ldap_entries(replace(base, ca_file=str(other_ca)))


class _StopAfter(threading.Event):
    """A stop event that records each wait and is set after ``passes`` of them."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.passes:
            self.set()
        return self.is_set()


def test_watch_retries_after_a_failed_pass_and_syncs_each_interval(
    directory_server: SlapdServer, store: sa.Engine, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    tenant = gen_tenant(store)
    good = load_ldap_config(_config(directory_server, tmp_path, "interval_minutes = 15\n"))
    bad = replace(good, bind_password="wrong")
    stop = _StopAfter(2)
    with caplog.at_level(logging.INFO, logger="datacenter.directory.sync"):
        sync_forever(store, tenant.tenant_id, bad, stop_event=stop)
    assert stop.waits == [900, 900]  # failed twice, kept going, waited the interval each time
    assert sum("failed, retrying in 15 min" in r.message for r in caplog.records) == 2
    with store.connect() as conn:
        assert list_entries(conn, tenant.tenant_id) == []
    sync_forever(store, tenant.tenant_id, good, stop_event=_StopAfter(1))
    with store.connect() as conn:
        assert len(list_entries(conn, tenant.tenant_id)) == 5


def test_two_people_on_one_number_do_not_swap_it_on_every_sync(
    directory_server: SlapdServer, store: sa.Engine, tmp_path: Path
) -> None:
    tenant = gen_tenant(store)
    config = load_ldap_config(_config(directory_server, tmp_path))
    directory_server.ldif(_person_ldif("zed", "Zed Zane", "201", "", "Sales", "", ""), add=True)
    try:
        first = datetime(2026, 1, 1, tzinfo=UTC)
        holders = []
        for day in range(3):
            with write_transaction(store) as conn:
                report = sync_ldap(conn, tenant.tenant_id, fetch_ldap_entries(config),
                                   now=first + timedelta(days=day))  # fmt: skip
            assert [("extension 201" in p.message) for p in report.problems] == [True]
            with store.connect() as conn:
                holders.append([e.person for e in list_entries(conn, tenant.tenant_id)
                                if e.extension == "201"])  # fmt: skip
        # Ann Archer (first DN in order) keeps 201 with one period; nothing flips.
        assert holders == [["Ann Archer"]] * 3
    finally:
        directory_server.ldif("dn: cn=Zed Zane,ou=people,dc=acme,dc=example\nchangetype: delete\n")
