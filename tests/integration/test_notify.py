"""Alarms delivered for real: a local SMTP server (aiosmtpd) and a local HTTP webhook receiver.

The alarm runner is driven over the console store (sites in known states), with time moved on
by writing fresh heartbeats, so raise, de-duplicate, remind, clear and the digest each show up
as mail actually received.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from datacenter.health.alarms import acknowledge, open_alarms
from datacenter.health.notify import AlarmNotice, Mailer, Webhook, alarm_email
from datacenter.health.runner import AlarmRunner
from datacenter.settings import LandingSettings, Settings, SmtpSettings, StoreSettings
from datacenter.store.engine import open_store, write_transaction
from shared.errors import NotifyError
from tests.fixtures.console import (
    ACME_DOWN,
    ACME_TRANSPORT,
    ADMIN_USER,
    TECH2_USER,
    ConsoleStore,
    beat,
    gen_heartbeat,
    seed_console_store,
)
from tests.fixtures.ports import free_port
from tests.fixtures.smtp import SmtpServer, running_smtp
from tests.fixtures.web import ACME_AGENT, GLOBEX_AGENT, TECH_USER

TIMEOUT = 5.0
SMTP_USER, SMTP_PASSWORD = "callcollect", "s3cret-relay-password"


# --- a real SMTP server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file); the cert is its own CA."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "callcollect test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, tls_files))
    return context


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def plain_smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def starttls_smtp(tls_files: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """STARTTLS required, AUTH required (only after TLS)."""
    with running_smtp(
        ca_file=tls_files[0], tls_context=_server_context(tls_files), require_starttls=True,
        authenticator=_authenticator, auth_required=True, auth_require_tls=True,
    ) as server:  # fmt: skip
        yield server


@pytest.fixture
def ssl_smtp(tls_files: tuple[Path, Path]) -> Iterator[SmtpServer]:
    """TLS from the first byte (port 465 style)."""
    with running_smtp(
        ca_file=tls_files[0], ssl_context=_server_context(tls_files), server_hostname="127.0.0.1"
    ) as server:
        yield server


# --- a real webhook receiver --------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 204


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.payloads.append(json.loads(body))
            receiver.headers.append(dict(self.headers))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/callcollect"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


# --- the store ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> ConsoleStore:
    return seed_console_store(tmp_path_factory.mktemp("notify-template"))


@pytest.fixture
def console(template: ConsoleStore, tmp_path: Path) -> ConsoleStore:
    """A copy of the template store per test (alarms are state)."""
    data_dir = tmp_path / "data"
    shutil.copytree(template.settings.data_dir, data_dir)
    settings = replace(
        template.settings,
        data_dir=data_dir,
        store=StoreSettings(url=f"sqlite:///{data_dir / 'callcollect.db'}"),
        landing=LandingSettings(root=data_dir / "landing"),
    )
    return ConsoleStore(settings, template.config_path)


@pytest.fixture
def engine(console: ConsoleStore) -> Iterator[sa.Engine]:
    engine = open_store(console.settings.store.url)
    yield engine
    engine.dispose()


def configured(
    settings: Settings,
    *,
    smtp: SmtpServer | None = None,
    webhook: str = "",
    digest_time: str = "",
    renotify_minutes: int = 60,
) -> Settings:
    smtp_settings = SmtpSettings(
        host="127.0.0.1" if smtp else "", port=smtp.port if smtp else 25, tls="none",
        ca_file=None, username="", password_file=None, sender="alarms@callcollect.example",
    )  # fmt: skip
    alarms = replace(
        settings.alarms, webhook_url=webhook, digest_time=digest_time,
        renotify_minutes=renotify_minutes, console_url="https://console.callcollect.example",
    )  # fmt: skip
    return replace(settings, smtp=smtp_settings, alarms=alarms)


def heartbeats_at(settings: Settings, when: dt.datetime, *, globex_ok: bool = False) -> None:
    """Fresh heartbeats at ``when``: the same states as the console store, unless told."""
    received = when - dt.timedelta(seconds=10)
    beat(
        settings, "acme", gen_heartbeat(ACME_AGENT, "acme", sent_at=received), received_at=received
    )
    beat(settings, "acme", gen_heartbeat(ACME_TRANSPORT, "acme", sent_at=received, uplink_failures=6),
         received_at=received)  # fmt: skip
    beat(settings, "globex", gen_heartbeat(GLOBEX_AGENT, "globex", sent_at=received, source_ok=globex_ok),
         received_at=received)  # fmt: skip


def subject(message: EmailMessage) -> str:
    """The subject as a mail client shows it (a long one is folded onto a continuation line)."""
    return str(message["Subject"]).strip()


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# --- alarms by email and webhook ----------------------------------------------------------------


def test_each_alarm_is_emailed_to_the_tenants_technicians_and_posted(
    console: ConsoleStore, engine: sa.Engine, plain_smtp: SmtpServer, webhook_receiver: Receiver
) -> None:
    settings = configured(console.settings, smtp=plain_smtp, webhook=webhook_receiver.url)
    report = AlarmRunner(engine, settings).run_once(dt.datetime.now(dt.UTC))
    assert (report.raised, report.notices_sent, report.failures) == (3, 3, [])

    inbox = plain_smtp.inbox
    assert inbox.subjects() == [
        "[callcollect] AGENT DOWN: Acme Widgets Ltd / acme-pbx2",
        "[callcollect] SOURCE DOWN: Globex Corporation / globex-pbx1 (smdr-main)",
        "[callcollect] TRANSPORT DOWN: Acme Widgets Ltd / acme-pbx3",
    ]
    # acme's technician gets acme's alarms, globex's gets globex's; the admin is not needed
    assert len(inbox.to(TECH_USER)) == 2 and len(inbox.to(TECH2_USER)) == 1
    assert inbox.to(ADMIN_USER) == []
    assert {sender for sender, _ in inbox.envelopes} == {"alarms@callcollect.example"}
    source_down = inbox.to(TECH2_USER)[0]
    text = body(source_down)
    assert "connection refused by 127.0.0.1:1752" in text
    assert "Source:  smdr-main" in text
    assert "https://console.callcollect.example/tech/sites/globex/globex-pbx1" in text
    assert source_down["Auto-Submitted"] == "auto-generated"

    payloads = {p["site"]: p for p in webhook_receiver.payloads}
    assert set(payloads) == {ACME_DOWN, ACME_TRANSPORT, GLOBEX_AGENT}
    hook = payloads[GLOBEX_AGENT]
    assert {k: hook[k] for k in ("format", "version", "event", "state", "source", "notice_number")} == {
        "format": "callcollect-alarm", "version": 1, "event": "raised", "state": "source_down",
        "source": "smdr-main", "notice_number": 1,
    }  # fmt: skip
    assert hook["tenant"] == {"slug": "globex", "name": "Globex Corporation"}
    assert hook["cleared_at"] is None and hook["raised_at"].endswith("Z")
    assert webhook_receiver.headers[0]["Content-Type"] == "application/json"
    with engine.connect() as conn:
        assert all(a.notified_at is not None and a.notifications == 1 for a in open_alarms(conn))


def test_de_duplicated_then_reminded_then_cleared(
    console: ConsoleStore, engine: sa.Engine, plain_smtp: SmtpServer
) -> None:
    settings = configured(console.settings, smtp=plain_smtp, renotify_minutes=5)
    runner = AlarmRunner(engine, settings)
    t0 = dt.datetime.now(dt.UTC)
    runner.run_once(t0)
    inbox = plain_smtp.inbox
    assert len(inbox.messages) == 3

    # Seen again a minute later: nothing new is sent.
    heartbeats_at(console.settings, t0 + dt.timedelta(minutes=1))
    report = runner.run_once(t0 + dt.timedelta(minutes=1))
    assert (report.raised, report.notices_sent, len(inbox.messages)) == (0, 0, 3)

    # A technician acknowledges the Leeds alarm; past the interval the other two are repeated.
    with write_transaction(engine) as conn:
        leeds = next(a for a in open_alarms(conn) if a.agent_id == ACME_DOWN)
        acknowledge(conn, leeds.tenant_id, leeds.alarm_id, actor=TECH_USER, note="on site",
                    now=t0 + dt.timedelta(minutes=2))  # fmt: skip
    heartbeats_at(console.settings, t0 + dt.timedelta(minutes=6))
    report = runner.run_once(t0 + dt.timedelta(minutes=6))
    reminders = [subject(m) for m in inbox.messages[3:]]
    assert sorted(reminders) == [
        "[callcollect] Still SOURCE DOWN: Globex Corporation / globex-pbx1 (smdr-main) (reminder 1)",
        "[callcollect] Still TRANSPORT DOWN: Acme Widgets Ltd / acme-pbx3 (reminder 1)",
    ]

    # Globex's source polls again: its alarm clears with an all-clear; the others stay open.
    heartbeats_at(console.settings, t0 + dt.timedelta(minutes=8), globex_ok=True)
    report = runner.run_once(t0 + dt.timedelta(minutes=8))
    assert (report.cleared, report.raised) == (1, 0)
    resolved = inbox.messages[-1]
    assert subject(resolved) == (
        "[callcollect] Resolved: Globex Corporation / globex-pbx1 (smdr-main) is OK again "
        "(was source down)"
    )
    assert "Cleared:" in body(resolved) and TECH2_USER in str(resolved["To"])
    with engine.connect() as conn:
        assert {a.agent_id for a in open_alarms(conn)} == {ACME_DOWN, ACME_TRANSPORT}


def test_a_failed_webhook_is_retried_on_the_next_pass(
    console: ConsoleStore, engine: sa.Engine, webhook_receiver: Receiver
) -> None:
    settings = configured(console.settings, webhook=webhook_receiver.url)
    runner = AlarmRunner(engine, settings)
    webhook_receiver.status = 503
    now = dt.datetime.now(dt.UTC)
    report = runner.run_once(now)
    assert report.notices_sent == 0 and len(report.failures) == 3
    assert "answered 503" in report.failures[0]
    with engine.connect() as conn:
        assert all(a.notified_at is None for a in open_alarms(conn))
    webhook_receiver.status = 200
    report = runner.run_once(now + dt.timedelta(seconds=30))
    assert report.notices_sent == 3
    assert [p["event"] for p in webhook_receiver.payloads[-3:]] == ["raised"] * 3


def test_the_daily_digest_lists_sites_not_ok_and_changes_once_a_day(
    console: ConsoleStore, engine: sa.Engine, plain_smtp: SmtpServer
) -> None:
    settings = configured(console.settings, smtp=plain_smtp, digest_time="00:00")
    runner = AlarmRunner(engine, settings)
    now = dt.datetime.now(dt.UTC)
    report = runner.run_once(now)
    assert report.digests_sent == 3  # two technicians and the admin
    digests = [m for m in plain_smtp.inbox.messages if "Daily digest" in subject(m)]
    by_user = {str(m["To"]): m for m in digests}
    assert set(by_user) == {TECH_USER, TECH2_USER, ADMIN_USER}
    assert subject(by_user[TECH_USER]) == "[callcollect] Daily digest: 2 not OK, 2 changes"
    tess = body(by_user[TECH_USER])
    assert "- Acme Widgets Ltd / acme-pbx2: Agent down since" in tess
    assert "- Acme Widgets Ltd / acme-pbx3: Transport down since" in tess
    assert "globex" not in tess.lower()  # not hers
    assert "Agent down raised by scheduler" in tess
    assert subject(by_user[ADMIN_USER]) == "[callcollect] Daily digest: 3 not OK, 3 changes"

    # Later the same day: no second digest.
    heartbeats_at(console.settings, now + dt.timedelta(minutes=30))
    assert runner.run_once(now + dt.timedelta(minutes=30)).digests_sent == 0


def test_no_digest_before_its_time(
    console: ConsoleStore, engine: sa.Engine, plain_smtp: SmtpServer
) -> None:
    settings = configured(console.settings, smtp=plain_smtp, digest_time="07:00")
    runner = AlarmRunner(engine, settings)
    assert runner.digest_due(dt.datetime(2026, 3, 3, 6, 59, tzinfo=dt.UTC)) is None
    assert runner.digest_due(dt.datetime(2026, 3, 3, 7, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 3)


# --- the SMTP channel itself --------------------------------------------------------------------

NOTICE = AlarmNotice(
    event="raised", alarm_id="0" * 32, tenant_slug="acme", tenant_name="Acme Widgets Ltd",
    agent_id="acme-pbx1", source_id="", state="agent_down", state_label="Agent down",
    reason="No heartbeat for 42 min.", raised_at=dt.datetime(2026, 3, 3, 13, 0, tzinfo=dt.UTC),
    cleared_at=None, notice_number=1, url="",
)  # fmt: skip


def _message(to: str = TECH_USER) -> EmailMessage:
    return alarm_email(NOTICE, sender="alarms@callcollect.example", to=[to],
                       now=dt.datetime(2026, 3, 3, 13, 42, tzinfo=dt.UTC))  # fmt: skip


def _smtp(server: SmtpServer, **changes: Any) -> SmtpSettings:
    base = SmtpSettings(host="127.0.0.1", port=server.port, tls="none", ca_file=None,
                        username="", password_file=None, sender="alarms@callcollect.example")  # fmt: skip
    return replace(base, **changes)


def test_starttls_with_login(starttls_smtp: SmtpServer, tmp_path: Path) -> None:
    password = tmp_path / "smtp-password"
    password.write_text(SMTP_PASSWORD + "\n")
    mailer = Mailer(_smtp(starttls_smtp, tls="starttls", ca_file=starttls_smtp.ca_file,
                          username=SMTP_USER, password_file=password), timeout=TIMEOUT)  # fmt: skip
    mailer.send(_message())
    [received] = starttls_smtp.inbox.messages
    assert subject(received) == "[callcollect] AGENT DOWN: Acme Widgets Ltd / acme-pbx1"
    assert "Since:   2026-03-03 13:00 UTC (42 min)" in body(received)


def test_implicit_tls(ssl_smtp: SmtpServer) -> None:
    Mailer(_smtp(ssl_smtp, tls="ssl", ca_file=ssl_smtp.ca_file), timeout=TIMEOUT).send(_message())
    assert len(ssl_smtp.inbox.messages) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tls": "starttls"}, "does not offer STARTTLS"),
        ({"tls": "ssl"}, "TLS with SMTP server"),
    ],
    ids=["starttls-not-offered", "ssl-to-a-plain-server"],
)
def test_tls_mismatches_are_errors_never_plain_text(
    plain_smtp: SmtpServer, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(NotifyError, match=message):
        Mailer(_smtp(plain_smtp, **changes), timeout=TIMEOUT).send(_message())
    assert plain_smtp.inbox.messages == []


def test_an_untrusted_certificate_is_refused(starttls_smtp: SmtpServer) -> None:
    with pytest.raises(NotifyError, match=re.escape("smtp.ca_file")):
        Mailer(_smtp(starttls_smtp, tls="starttls"), timeout=TIMEOUT).send(_message())


def test_a_wrong_password_names_the_settings(starttls_smtp: SmtpServer, tmp_path: Path) -> None:
    password = tmp_path / "smtp-password"
    password.write_text("wrong\n")
    mailer = Mailer(_smtp(starttls_smtp, tls="starttls", ca_file=starttls_smtp.ca_file,
                          username=SMTP_USER, password_file=password), timeout=TIMEOUT)  # fmt: skip
    with pytest.raises(NotifyError, match=re.escape("smtp.password_file")):
        mailer.send(_message())


def test_nobody_listening(tmp_path: Path) -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, tls="none", ca_file=None, username="",
                            password_file=None, sender="a@b.example")  # fmt: skip
    with pytest.raises(NotifyError, match=re.escape("check smtp.host and smtp.port")):
        Mailer(settings, timeout=TIMEOUT).send(_message())


def test_webhook_to_nobody_listening() -> None:
    with pytest.raises(NotifyError, match=re.escape("check alarms.webhook_url")):
        Webhook(f"http://127.0.0.1:{free_port()}/x", timeout=TIMEOUT).send(
            NOTICE, now=dt.datetime.now(dt.UTC)
        )
