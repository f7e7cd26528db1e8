"""Passwords: the policy, argon2id hashes, and checking one.

Passwords are stored only as argon2id hashes (argon2-cffi, its RFC 9106 defaults); a hash made
with older parameters is replaced on the next successful login (``verify_password`` returns the
new hash). ``dummy_hash`` is what ``authenticate`` checks against for an unknown account, so
response time does not reveal which emails exist.

The policy (``check_password_policy``): at least ``MIN_PASSWORD_LENGTH`` characters, and not
guessable by ``zxcvbn`` (the maintained PyPI port of Dropbox's estimator): it ships the most
common passwords of public breaches plus common words and names, and is given the user's email
and name so a password built from them is refused too.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

import argon2
from zxcvbn import zxcvbn

from shared.errors import ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = (
    1024  # argon2 is happy with more; this bounds the work an attacker can ask for
)
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" (~10^8 guesses and up)
_HASHER = argon2.PasswordHasher()


class PasswordCheck(NamedTuple):
    ok: bool
    new_hash: str | None  # set when the stored hash should be replaced (parameters changed)


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    """Raise ``ValidationError`` saying what is wrong with a new password for ``email``/``name``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password",
            f"is {len(password)} characters; use at least {MIN_PASSWORD_LENGTH} "
            "(a few unrelated words make a good one)",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError("password", f"is longer than {MAX_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise ValidationError("password", "is only white space")
    _check_guessable(password, [v for v in (email, email.partition("@")[0], name) if v])


def _check_guessable(password: str, personal: list[str]) -> None:
    result = zxcvbn(password[:100], user_inputs=personal)  # zxcvbn slows down on long input
    for match in result["sequence"]:
        if match.get("dictionary_name") == "user_inputs" and len(match["token"]) >= 4:
            raise ValidationError(
                "password",
                "contains your email or name: pick words that have nothing to do with you",
            )
        if match.get("dictionary_name") == "passwords" and match["token"] == password.lower():
            raise ValidationError(
                "password", "is on the list of commonly used (breached) passwords: pick another"
            )
    if result["score"] < MIN_PASSWORD_SCORE:
        advice = result["feedback"]["warning"] or "it is easy to guess"
        raise ValidationError(
            "password", f"is too easy to guess ({advice.rstrip('.')}): add a few unrelated words"
        )


def hash_password(password: str) -> str:
    """An argon2id hash (the PHC string that embeds salt and parameters)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> PasswordCheck:
    """Check a password; ``new_hash`` is set when the stored hash uses outdated parameters."""
    try:
        _HASHER.verify(password_hash, password)
    except argon2.exceptions.VerificationError:
        return PasswordCheck(ok=False, new_hash=None)
    except argon2.exceptions.InvalidHashError:
        return PasswordCheck(ok=False, new_hash=None)
    if _HASHER.check_needs_rehash(password_hash):
        return PasswordCheck(ok=True, new_hash=hash_password(password))
    return PasswordCheck(ok=True, new_hash=None)


@cache
def dummy_hash() -> str:
    """A real hash of nothing anyone types: the work an unknown account's login still costs."""
    return hash_password("callcollect: no such user")
