"""Optional TOTP second factor (RFC 6238 through ``pyotp``) with one-use recovery codes.

Contract:

- ``new_secret`` makes a base32 secret; ``enable`` stores it only once the user has typed a
  valid code from it (so a mistyped enrolment cannot lock anyone out) and returns
  ``RECOVERY_CODES`` fresh recovery codes, shown once and stored as argon2 hashes.
- ``verify`` accepts the current code and one 30-second step either side (clock drift);
  ``accept`` (sign-in) also refuses a code of a time step at or before the last one used, so
  a code seen over someone's shoulder cannot be replayed.
- ``use_recovery_code`` accepts each code once; ``disable`` removes the secret and the codes.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import pyotp
import sqlalchemy as sa

from datacenter.accounts.passwords import hash_password, verify_password
from datacenter.store.tables.accounts import recovery_codes
from datacenter.store.tables.core import users

ISSUER = "callcollect"
RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads (shown as text: no QR library needed)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def verify(secret: str, code: str, *, now: datetime) -> bool:
    digits = code.replace(" ", "").strip()
    if not digits.isdigit() or len(digits) != 6:
        return False
    return bool(pyotp.TOTP(secret).verify(digits, for_time=now, valid_window=1))


def accept(conn: sa.Connection, user_id: int, code: str, *, now: datetime) -> bool:
    """A sign-in code: valid for the user's secret and newer than the last one used."""
    row = conn.execute(
        sa.select(users.c.totp_secret, users.c.totp_last_step).where(users.c.user_id == user_id)
    ).one_or_none()
    if row is None or row.totp_secret is None:
        return False
    digits = code.replace(" ", "").strip()
    otp = pyotp.TOTP(row.totp_secret)
    step = otp.timecode(now)
    for candidate in (step - 1, step, step + 1):  # one step of clock drift either way
        if row.totp_last_step is not None and candidate <= row.totp_last_step:
            continue
        if digits.isdigit() and len(digits) == 6 and otp.at(candidate * otp.interval) == digits:
            conn.execute(
                users.update().where(users.c.user_id == user_id).values(totp_last_step=candidate)
            )
            return True
    return False


def secret_of(conn: sa.Connection, user_id: int) -> str | None:
    value = conn.scalar(sa.select(users.c.totp_secret).where(users.c.user_id == user_id))
    return None if value is None else str(value)


def enable(conn: sa.Connection, user_id: int, secret: str) -> list[str]:
    """Store the secret and fresh recovery codes; returns the codes (shown once)."""
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(totp_secret=secret, totp_last_step=None)
    )
    conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
    codes = [
        "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)
    ]
    conn.execute(
        recovery_codes.insert(),
        [
            {"user_id": user_id, "code_index": i, "code_hash": hash_password(code)}
            for i, code in enumerate(codes)
        ],
    )
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def disable(conn: sa.Connection, user_id: int) -> None:
    conn.execute(
        users.update()
        .where(users.c.user_id == user_id)
        .values(totp_secret=None, totp_last_step=None)
    )
    conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))


def use_recovery_code(conn: sa.Connection, user_id: int, code: str, *, now: datetime) -> bool:
    """True (and the code is spent) if ``code`` is one of the user's unused recovery codes."""
    typed = code.replace("-", "").replace(" ", "").strip().lower()
    if len(typed) != 10:
        return False
    rows = conn.execute(
        sa.select(recovery_codes.c.code_index, recovery_codes.c.code_hash).where(
            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
        )
    ).all()
    for index, code_hash in rows:
        if verify_password(code_hash, typed).ok:
            conn.execute(
                recovery_codes.update()
                .where(recovery_codes.c.user_id == user_id, recovery_codes.c.code_index == index)
                .values(used_at=now)
            )
            return True
    return False


def unused_codes(conn: sa.Connection, user_id: int) -> int:
    return int(
        conn.scalar(
            sa.select(sa.func.count()).where(
                recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None)
            )
        )
        or 0
    )
