"""Signed, expiring links to a scheduled run's report (itsdangerous).

A link carries the run's id, its tenant and when it expires, signed with the web app's secret
key (``web.secret_key_file``) under a salt of its own, so a link cannot be made from a session
cookie or any other signed value. ``LinkSigner.read`` tells the three cases apart: a good link,
one that was altered or signed with another key (``LinkTampered``: the page answers 403), and
a genuine one past its time (``LinkExpired``: 410). The report behind a link is run again when
it is fetched, as the schedule's owner and over the run's period (the page does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

LINK_SALT = "callcollect.report-link.v1"
LINK_PATH = "/reports/links/"


class LinkTampered(Exception):
    """The link's signature does not match: altered, truncated, or another key's."""


class LinkExpired(Exception):
    """A genuine link past its expiry."""


@dataclass(frozen=True)
class LinkTarget:
    run_id: int
    tenant_id: int
    expires_at: datetime


class LinkSigner:
    def __init__(self, secret_key: str | bytes) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt=LINK_SALT)

    def token(self, target: LinkTarget) -> str:
        payload = {"r": target.run_id, "t": target.tenant_id,
                   "e": int(target.expires_at.timestamp())}  # fmt: skip
        return str(self._serializer.dumps(payload))

    def read(self, token: str, *, now: datetime) -> LinkTarget:
        try:
            payload = self._serializer.loads(token)
            target = LinkTarget(
                int(payload["r"]), int(payload["t"]), datetime.fromtimestamp(int(payload["e"]), UTC)
            )
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise LinkTampered("the link is not valid: it was changed or cut short") from exc
        if now >= target.expires_at:
            raise LinkExpired(f"the link expired at {target.expires_at:%Y-%m-%d %H:%M} UTC")
        return target


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{LINK_PATH}{token}"
