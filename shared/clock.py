"""The wall clock, in one place: ``utc_now`` and the ``Clock`` type.

Code that needs the time takes a ``Clock`` (default ``utc_now``) so tests can pass a fixed or
stepping one instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]  # returns an aware UTC datetime


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)
