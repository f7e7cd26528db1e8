"""Delivering alarms and digests: email through SMTP, and a JSON webhook.

Contract:

- ``Mailer(smtp)`` sends one ``EmailMessage`` per call over a fresh SMTP connection (alarms
  are rare; a long-lived connection would only time out between them). ``smtp.tls`` is
  ``starttls`` (the upgrade is required: a server that does not offer it is an error, never a
  silent plain-text fallback), ``ssl`` (TLS from the first byte) or ``none``. Certificates
  are verified against ``smtp.ca_file`` or the system's CAs. Every connection has a timeout.
- ``Webhook(url)`` POSTs one JSON document per alarm notice (``AlarmNotice.payload``; schema in
  docs/console.md) with a timeout; any answer but 2xx is a failure.
- Both raise ``NotifyError`` (what failed and how to fix it) and nothing else; the caller
  decides whether to retry. Nothing here touches the store.
- ``AlarmNotice`` is everything a notification says about one alarm; ``alarm_email`` and
  ``digest_email`` compose plain-text messages a technician can act on from a phone.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import requests

from datacenter import __version__
from datacenter.settings import SmtpSettings
from shared.errors import NotifyError
from shared.icdr import format_time

SMTP_TIMEOUT_SECONDS = 15.0
WEBHOOK_TIMEOUT_SECONDS = 10.0
PAYLOAD_FORMAT = "callcollect-alarm"
PAYLOAD_VERSION = 1
SUBJECT_PREFIX = "[callcollect]"
USER_AGENT = f"callcollect-datacenter/{__version__}"
NOTICE_EVENTS = ("raised", "reminder", "cleared")


@dataclass(frozen=True, slots=True)
class AlarmNotice:
    """One alarm, as an email or a webhook tells it. ``event`` is one of ``NOTICE_EVENTS``."""

    event: str
    alarm_id: str
    tenant_slug: str
    tenant_name: str
    agent_id: str
    source_id: str  # "" for the whole site
    state: str  # the health state's code, e.g. "source_down"
    state_label: str  # the same in words, e.g. "Source down"
    reason: str
    raised_at: datetime
    cleared_at: datetime | None
    notice_number: int  # 1 for the first notice of this alarm, 2 for the first reminder...
    url: str  # the site's console page, "" when alarms.console_url is not set

    @property
    def where(self) -> str:
        site = f"{self.tenant_name} / {self.agent_id}"
        return f"{site} ({self.source_id})" if self.source_id else site

    def payload(self, *, sent_at: datetime) -> dict[str, Any]:
        """The webhook document (docs/console.md, "Webhook payload")."""
        return {
            "format": PAYLOAD_FORMAT,
            "version": PAYLOAD_VERSION,
            "event": self.event,
            "alarm_id": self.alarm_id,
            "tenant": {"slug": self.tenant_slug, "name": self.tenant_name},
            "site": self.agent_id,
            "source": self.source_id or None,
            "state": self.state,
            "state_label": self.state_label,
            "reason": self.reason,
            "raised_at": format_time(self.raised_at),
            "cleared_at": format_time(self.cleared_at) if self.cleared_at else None,
            "notice_number": self.notice_number,
            "sent_at": format_time(sent_at),
            "url": self.url or None,
        }


@dataclass(frozen=True, slots=True)
class DigestSite:
    """A site that is not ok, as the digest lists it."""

    tenant_name: str
    agent_id: str
    state_label: str
    reason: str
    since: datetime | None
    acknowledged_by: str | None
    url: str


@dataclass(frozen=True, slots=True)
class DigestChange:
    """Something that happened to an alarm since the previous digest."""

    at: datetime
    tenant_name: str
    agent_id: str
    state_label: str
    kind: str  # an alarm event kind: raised, cleared, acknowledged, silenced...
    actor: str
    note: str


# --- composing ----------------------------------------------------------------------------------


def alarm_email(
    notice: AlarmNotice, *, sender: str, to: Sequence[str], now: datetime
) -> EmailMessage:
    """The email for one notice: subject says what and where, body says since when and why."""
    label = notice.state_label
    if notice.event == "cleared":
        subject = f"Resolved: {notice.where} is OK again (was {label.lower()})"
    elif notice.event == "reminder":
        subject = f"Still {label.upper()}: {notice.where} (reminder {notice.notice_number - 1})"
    else:
        subject = f"{label.upper()}: {notice.where}"
    lines = [
        f"Site:    {notice.agent_id} ({notice.tenant_name})",
        f"Source:  {notice.source_id or 'the whole site'}",
        f"State:   {'OK again' if notice.event == 'cleared' else label}",
        f"Reason:  {notice.reason}",
        f"Since:   {_clock(notice.raised_at)} ({_ago(notice.raised_at, notice.cleared_at or now)})",
    ]
    if notice.cleared_at is not None:
        lines.append(f"Cleared: {_clock(notice.cleared_at)}")
    lines += ["", f"Alarm {notice.alarm_id}."]
    if notice.url:
        lines.append(f"Open the site: {notice.url}")
    if notice.event != "cleared":
        lines.append(
            "Acknowledge the alarm on the technicians' console to stop reminders, "
            "or silence it until a time."
        )
    return _message(subject, "\n".join(lines), sender=sender, to=to, now=now)


def digest_email(
    *,
    sites: Sequence[DigestSite],
    changes: Sequence[DigestChange],
    since: datetime,
    sender: str,
    to: str,
    now: datetime,
    console_url: str = "",
) -> EmailMessage:
    """The daily digest: every site that is not ok, then what changed since ``since``."""
    count = f"{len(sites)} not OK" if sites else "all sites OK"
    subject = f"Daily digest: {count}, {_plural(len(changes), 'change')}"
    lines = [f"Polling health at {_clock(now)}.", ""]
    lines.append(f"Sites not OK ({len(sites)}):" if sites else "Every site you look after is OK.")
    for site in sites:
        since_text = f" since {_clock(site.since)}" if site.since else ""
        ack = f" [acknowledged by {site.acknowledged_by}]" if site.acknowledged_by else ""
        lines.append(f"- {site.tenant_name} / {site.agent_id}: {site.state_label}{since_text}{ack}")
        lines.append(f"  {site.reason}")
        if site.url:
            lines.append(f"  {site.url}")
    lines += ["", f"Changes since {_clock(since)} ({len(changes)}):"]
    if not changes:
        lines.append("- none")
    for change in changes:
        note = f': "{change.note}"' if change.note else ""
        lines.append(
            f"- {_clock(change.at)} {change.tenant_name} / {change.agent_id}: "
            f"{change.state_label} {change.kind} by {change.actor}{note}"
        )
    if console_url:
        lines += ["", f"Console: {console_url}/tech/sites"]
    return _message(subject, "\n".join(lines), sender=sender, to=[to], now=now)


def _message(
    subject: str, body: str, *, sender: str, to: Sequence[str], now: datetime
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"{SUBJECT_PREFIX} {subject}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    message.set_content(body + "\n")
    return message


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _clock(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(start: datetime, end: datetime) -> str:
    minutes = max(0, int((end - start).total_seconds() // 60))
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


# --- delivering ---------------------------------------------------------------------------------


class Mailer:
    """Sends email through the configured SMTP server (``smtp.*`` settings)."""

    def __init__(self, smtp: SmtpSettings, *, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self._smtp = smtp
        self._timeout = timeout

    @property
    def enabled(self) -> bool:
        return bool(self._smtp.host)

    @property
    def sender(self) -> str:
        return self._smtp.sender

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to all its ``To`` addresses, or raise ``NotifyError``."""
        smtp = self._smtp
        server = f"{smtp.host}:{smtp.port}"
        try:
            context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
            if smtp.tls == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host, smtp.port, timeout=self._timeout, context=context
                )
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=self._timeout)
            with client:
                if smtp.tls == "starttls":
                    client.starttls(context=context)
                if smtp.username:
                    client.login(smtp.username, self._password())
                refused = client.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            raise NotifyError(
                f'SMTP server {server} does not offer STARTTLS: set smtp.tls to "ssl" if it '
                'speaks TLS from the start, or "none" for a trusted local relay'
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifyError(
                f"SMTP server {server} refused the login of {smtp.username!r}: check "
                "smtp.username and the password in smtp.password_file"
            ) from exc
        except ssl.SSLError as exc:
            raise NotifyError(
                f"TLS with SMTP server {server} failed ({exc.reason or exc}): check smtp.tls, "
                "smtp.port and, for a private CA, smtp.ca_file"
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(
                f"could not send email through {server}: {exc}; check smtp.host and smtp.port "
                "and that the server accepts mail from this machine"
            ) from exc
        if refused:
            raise NotifyError(
                f"SMTP server {server} refused recipients {sorted(refused)}: check their email "
                "addresses (`datacenter user list`)"
            )

    def _password(self) -> str:
        path: Path | None = self._smtp.password_file
        if path is None:
            raise NotifyError("smtp.username is set but smtp.password_file is not: set both")
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NotifyError(
                f"cannot read smtp.password_file {path}: {exc.strerror}; make it readable by "
                "the service user"
            ) from exc


class Webhook:
    """POSTs alarm notices as JSON to ``alarms.webhook_url``."""

    def __init__(self, url: str, *, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> None:
        self.url = url
        self._timeout = timeout

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def send(self, notice: AlarmNotice, *, now: datetime) -> None:
        """POST ``notice.payload``; raise ``NotifyError`` unless the answer is 2xx."""
        try:
            with requests.Session() as session:
                response = session.post(
                    self.url,
                    json=notice.payload(sent_at=now),
                    timeout=self._timeout,
                    headers={"User-Agent": USER_AGENT},
                    allow_redirects=False,  # a POST is not replayed somewhere else
                )
                status, body = response.status_code, response.text[:200]
                response.close()
        except requests.RequestException as exc:
            raise NotifyError(
                f"webhook {self.url} failed: {exc}; check alarms.webhook_url and that the "
                "receiver is up"
            ) from exc
        if not 200 <= status < 300:
            raise NotifyError(
                f"webhook {self.url} answered {status} ({body.strip() or 'no body'}): check the "
                "receiver's logs"
            )
