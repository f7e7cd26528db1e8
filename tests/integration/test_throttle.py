"""The sign-in throttle on both backends: growing waits, per address, lock-out, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from datacenter.accounts.throttle import (
    KEEP,
    ThrottlePolicy,
    record_attempt,
    register_failure,
    register_success,
    unlock,
    wait_seconds,
)
from datacenter.accounts.users import create_user, get_user
from datacenter.store.engine import write_transaction
from datacenter.store.tables.accounts import login_attempts
from tests.fixtures.store import gen_tenant

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = ThrottlePolicy(free_per_account=3, free_per_address=5, base=timedelta(seconds=2),
                        cap=timedelta(seconds=30), lock_after=6)  # fmt: skip
EMAIL, ADDRESS = "ann@acme.example", "198.18.0.1"


def test_each_failure_past_the_free_ones_doubles_the_wait_up_to_the_cap(store: sa.Engine) -> None:
    waits = []
    with write_transaction(store) as conn:
        for n in range(8):
            at = NOW + timedelta(minutes=n)
            record_attempt(conn, EMAIL, ADDRESS, ok=False, now=at)
            waits.append(wait_seconds(conn, EMAIL, "198.18.0.2", now=at, policy=POLICY))
        assert waits == [0, 0, 2, 4, 8, 16, 30, 30]
        later = NOW + timedelta(minutes=7, seconds=31)
        assert wait_seconds(conn, EMAIL, "198.18.0.2", now=later, policy=POLICY) == 0
        # a success starts the count again
        record_attempt(conn, EMAIL, ADDRESS, ok=True, now=later)
        assert wait_seconds(conn, EMAIL, "198.18.0.2", now=later, policy=POLICY) == 0


def test_an_address_is_throttled_across_emails(store: sa.Engine) -> None:
    with write_transaction(store) as conn:
        for n in range(5):
            record_attempt(conn, f"u{n}@acme.example", ADDRESS, ok=False, now=NOW)
        assert wait_seconds(conn, "new@acme.example", ADDRESS, now=NOW, policy=POLICY) == 2
        assert wait_seconds(conn, "new@acme.example", "198.18.0.9", now=NOW, policy=POLICY) == 0


def test_consecutive_failures_lock_until_unlocked(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme")
    with write_transaction(store) as conn:
        user = create_user(conn, EMAIL, "violet ferry quantum lamp", "tenant", tenant.tenant_id)
        assert [register_failure(conn, EMAIL, now=NOW, policy=POLICY) for _ in range(5)] == [
            False
        ] * 5
        register_success(conn, user.user_id)  # a success resets the count
        locks = [register_failure(conn, EMAIL, now=NOW, policy=POLICY) for _ in range(7)]
        assert locks == [False] * 5 + [True, False]
        again = get_user(conn, user.user_id)
        assert again is not None and again.locked_at == NOW
        assert unlock(conn, user.user_id) and not unlock(conn, user.user_id)
        assert register_failure(conn, "nobody@acme.example", now=NOW, policy=POLICY) is False


def test_old_attempts_are_pruned_as_new_ones_come(store: sa.Engine) -> None:
    with write_transaction(store) as conn:
        record_attempt(conn, EMAIL, ADDRESS, ok=False, now=NOW)
        record_attempt(conn, "other@acme.example", "198.18.0.3", ok=False, now=NOW)
        record_attempt(conn, EMAIL, ADDRESS, ok=False, now=NOW + KEEP + timedelta(seconds=1))
        rows = conn.execute(sa.select(login_attempts.c.email, login_attempts.c.at)).all()
    assert sorted((email, at) for email, at in rows) == [
        (EMAIL, NOW + KEEP + timedelta(seconds=1)),
        ("other@acme.example", NOW),
    ]
