"""Telling a tenant about a cost alarm: an email listing its calls, a signed JSON webhook.

Contract:

- ``alarm_email`` composes one plain-text message: the rule, the subject and period, why, and
  each call (local start, extension, number, duration, cost) with the link to its page in the
  portal when ``alarms.portal_url`` is set.
- ``SignedWebhook.send`` POSTs ``payload`` as JSON to the tenant's configured URL and nowhere
  else (redirects are not followed), with a timeout. The body is signed with the tenant's
  secret: ``X-Callcollect-Timestamp: <unix seconds>`` and ``X-Callcollect-Signature:
  sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``; ``verify_signature`` is the receiver's
  side (docs/cost-alarms.md shows it in a few lines). Any answer but 2xx is a ``NotifyError``.
- ``check_destination`` refuses a URL that resolves to a non-global address (loopback, private,
  link-local...) unless ``alarms.tenant_webhooks_private`` allows it.
- Retrying is the runner's business: ``backoff(attempt)`` says when the next try is due.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import requests

from datacenter import __version__
from datacenter.cost_alarms.evaluate import CallFact
from datacenter.cost_alarms.rules import format_micro
from datacenter.cost_alarms.store import CostAlarm
from shared.errors import NotifyError
from shared.icdr import format_time

WEBHOOK_TIMEOUT_SECONDS = 10.0
PAYLOAD_FORMAT = "callcollect-cost-alarm"
PAYLOAD_VERSION = 1
SIGNATURE_HEADER = "X-Callcollect-Signature"
TIMESTAMP_HEADER = "X-Callcollect-Timestamp"
USER_AGENT = f"callcollect-datacenter/{__version__}"
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
MAX_ATTEMPTS = 10  # about 5 hours of tries, then the alarm is only on the page
EMAIL_CALLS_SHOWN = 100
KIND_LABELS = {
    "call_cost": "Costly call",
    "extension_day_cost": "Extension's day cost",
    "tenant_day_cost": "Day cost",
    "off_hours": "Premium or international call out of hours",
    "long_call": "Long call",
    "volume": "Unusual call volume",
    "short_calls": "Many short calls to one number",
}


def backoff(attempt: int) -> timedelta:
    """The wait after failed try number ``attempt`` (1, 2, ...): 1, 2, 4... minutes, at most
    an hour."""
    wait: timedelta = FIRST_RETRY * 2 ** max(0, min(attempt - 1, 16))
    return min(wait, MAX_RETRY)


def call_url(portal_url: str, record_id: str) -> str:
    return f"{portal_url}/calls/{quote(record_id, safe='')}" if portal_url else ""


def alarm_url(portal_url: str, alarm_id: str) -> str:
    return f"{portal_url}/cost-alarms/{alarm_id}" if portal_url else ""


def subject_text(alarm: CostAlarm) -> str:
    if alarm.kind in ("call_cost", "extension_day_cost", "off_hours", "long_call"):
        return f"extension {alarm.subject}" if alarm.subject else "no extension"
    if alarm.kind == "short_calls":
        return f"number {alarm.subject}"
    return "the whole tenant"


def payload(
    alarm: CostAlarm,
    facts: Sequence[CallFact],
    *,
    tenant_slug: str,
    tenant_name: str,
    portal_url: str,
    sent_at: datetime,
) -> dict[str, Any]:
    """The webhook document (docs/cost-alarms.md, "Webhook")."""
    return {
        "format": PAYLOAD_FORMAT,
        "version": PAYLOAD_VERSION,
        "alarm_id": alarm.alarm_id,
        "tenant": {"slug": tenant_slug, "name": tenant_name},
        "rule": alarm.rule_id,
        "kind": alarm.kind,
        "subject": alarm.subject,
        "period": alarm.period,
        "reason": alarm.reason,
        "raised_at": format_time(alarm.raised_at),
        "url": alarm_url(portal_url, alarm.alarm_id) or None,
        "calls": [
            {
                "record_id": f.record_id,
                "start": format_time(f.start),
                "extension": f.extension,
                "number": f.number,
                "direction": f.direction,
                "talk_seconds": f.talk_seconds,
                "cost": format_micro(f.cost_micro) if f.cost_micro is not None else None,
                "currency": f.currency or None,
                "class": f.number_class or None,
                "url": call_url(portal_url, f.record_id) or None,
            }
            for f in facts
        ],
        "sent_at": format_time(sent_at),
    }


def alarm_email(
    alarm: CostAlarm,
    facts: Sequence[CallFact],
    *,
    tenant_name: str,
    portal_url: str,
    sender: str,
    to: Sequence[str],
    now: datetime,
) -> EmailMessage:
    label = KIND_LABELS.get(alarm.kind, alarm.kind)
    lines = [
        f"Tenant:  {tenant_name}",
        f"Rule:    {alarm.rule_id} ({label})",
        f"Subject: {subject_text(alarm)}",
        f"Period:  {alarm.period} (tenant's clock)",
        f"Why:     {alarm.reason}",
        "",
        f"Calls ({len(facts)}):",
    ]
    for fact in facts[:EMAIL_CALLS_SHOWN]:
        cost = (
            f"{format_micro(fact.cost_micro)} {fact.currency}"
            if fact.cost_micro is not None
            else "not rated"
        )
        minutes, seconds = divmod(fact.talk_seconds, 60)
        lines.append(
            f"- {fact.local:%Y-%m-%d %H:%M:%S} ext {fact.extension or '-'} to "
            f"{fact.number or '-'} {minutes}:{seconds:02d} {cost}"
        )
        if portal_url:
            lines.append(f"  {call_url(portal_url, fact.record_id)}")
        else:
            lines.append(f"  record {fact.record_id}")
    if len(facts) > EMAIL_CALLS_SHOWN:
        lines.append(f"... and {len(facts) - EMAIL_CALLS_SHOWN} more on the alarm's page.")
    lines.append("")
    if portal_url:
        lines.append(f"Acknowledge it: {alarm_url(portal_url, alarm.alarm_id)}")
    else:
        lines.append(f"Alarm {alarm.alarm_id}: acknowledge it on the portal's Cost alarms page.")
    message = EmailMessage()
    message["Subject"] = f"[callcollect] {label}: {subject_text(alarm)}, {alarm.period}"
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines) + "\n")
    return message


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """The receiver's check: the signature matches (compared in constant time)."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]


def is_public(address: IPAddress) -> bool:
    """Whether a tenant's webhook may reach ``address``: only globally routed unicast.
    An IPv4-mapped IPv6 address is judged by the IPv4 address inside it, so
    ``::ffff:<private>`` is not a way round the check. ``is_global`` alone is not enough:
    Python 3.11 counts reserved IPv6 ranges such as ``::/8`` as global."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.is_site_local:
            return False
    special = (address.is_private, address.is_loopback, address.is_link_local,
               address.is_multicast, address.is_reserved, address.is_unspecified)  # fmt: skip
    return address.is_global and not any(special)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, the zone of a scoped IPv6 address dropped."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_destination(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> None:
    """Refuse a URL whose host resolves to a loopback, private, link-local or otherwise
    non-global address, unless ``allow_private``: a tenant's URL must not reach the data
    centre's own network. (The name is resolved again when connecting; a DNS answer that
    changes in between is not caught here.)"""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise NotifyError(
            f"cost alarm webhook {url}: cannot resolve {host} ({exc}); check "
            "delivery.webhook_url in the tenant's rules"
        ) from exc
    for address in addresses:
        if not is_public(address):
            raise NotifyError(
                f"cost alarm webhook {url}: {host} is {address}, not a public address; give "
                "the tenant a public receiver, or set alarms.tenant_webhooks_private for an "
                "on-premises one"
            )


class SignedWebhook:
    """POSTs signed JSON documents to one URL."""

    def __init__(
        self, url: str, secret: str, *, timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        allow_private: bool = False,
    ) -> None:  # fmt: skip
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._allow_private = allow_private

    def send(self, document: dict[str, Any], *, now: datetime) -> None:
        check_destination(self.url, allow_private=self._allow_private)
        body = orjson.dumps(document)
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            with requests.Session() as session:
                session.trust_env = False  # only to the configured URL: no proxy from the env
                response = session.post(
                    self.url,
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
                status, text = response.status_code, response.text[:200]
                response.close()
        except requests.RequestException as exc:
            raise NotifyError(
                f"cost alarm webhook {self.url} failed: {exc}; check delivery.webhook_url in "
                "the tenant's rules and that the receiver is up"
            ) from exc
        if not 200 <= status < 300:
            raise NotifyError(
                f"cost alarm webhook {self.url} answered {status} ({text.strip() or 'no body'}): "
                "check the receiver's logs"
            )
