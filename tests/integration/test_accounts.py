"""Accounts on both backends: argon2 passwords, users, tenants, agents."""

from __future__ import annotations

import argon2
import pytest
import sqlalchemy as sa

from datacenter.accounts import passwords
from datacenter.accounts.agents import enroll_agent, list_agents
from datacenter.accounts.passwords import check_password_policy, hash_password, verify_password
from datacenter.accounts.tenants import create_tenant, get_tenant, get_tenant_by_id, list_tenants
from datacenter.accounts.users import (
    authenticate,
    create_user,
    list_users,
    set_disabled,
    set_password,
)
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import users
from shared.errors import StoreError, ValidationError
from tests.fixtures.store import gen_tenant

PASSWORD = "correct horse battery"
PRODUCTION_HASHER = passwords._HASHER
pytestmark = pytest.mark.usefixtures("cheap_passwords")


def test_production_hashes_are_argon2id_with_rfc_9106_parameters() -> None:
    hashed = PRODUCTION_HASHER.hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_hash_and_verify() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert verify_password(hashed, PASSWORD) == (True, None)
    assert verify_password(hashed, PASSWORD + "!") == (False, None)
    assert verify_password("not a hash", PASSWORD) == (False, None)


def test_outdated_hash_is_replaced_on_verify() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    ok, new_hash = verify_password(weak, PASSWORD)
    assert ok and new_hash is not None and new_hash != weak
    assert verify_password(new_hash, PASSWORD) == (True, None)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "is 5 characters; use at least 10"),
        ("123456789", "is 9 characters; use at least 10"),
        (" " * 12, "only white space"),
        ("x" * 2000, "longer than 1024"),
    ],
)
def test_password_policy(password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("password1234", "commonly used"),  # in zxcvbn's list of breached passwords
        ("qwertyuiop", "commonly used"),
        ("annsmith-acme-2025", "your email or name"),
        ("aaaaaaaaaaaa", "too easy to guess"),
    ],
)
def test_password_policy_refuses_guessable_passwords(password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_password_policy(password, email="annsmith@acme.example", name="Ann Smith")
    check_password_policy("violet ferry quantum lamp", email="annsmith@acme.example")


def test_users_and_authentication(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme")
    with write_transaction(store) as conn:
        user = create_user(
            conn, " Ann@Example.COM ", PASSWORD, "tenant", tenant.tenant_id, display_name="Ann"
        )
        admin = create_user(conn, "ops@example.com", PASSWORD, "admin")
    assert (user.email, user.role, user.tenant_id, user.is_staff) == (
        "ann@example.com", "tenant", tenant.tenant_id, False,
    )  # fmt: skip
    assert admin.is_staff and admin.tenant_id is None
    with write_transaction(store) as conn:
        assert authenticate(conn, "nobody@example.com", PASSWORD) is None
        assert authenticate(conn, "ann@example.com", "wrong password") is None
        assert authenticate(conn, "not an email", PASSWORD) is None
        logged_in = authenticate(conn, "ANN@example.com", PASSWORD)
    assert logged_in is not None and logged_in.last_login_at is not None
    with write_transaction(store) as conn:
        set_disabled(conn, user.user_id, True)
        assert authenticate(conn, "ann@example.com", PASSWORD) is None
        set_disabled(conn, user.user_id, False)
        set_password(conn, user.user_id, "a new long password")
        assert authenticate(conn, "ann@example.com", "a new long password") is not None
        assert [u.email for u in list_users(conn)] == [
            "ann@example.com",
            "ops@example.com",
        ]
        assert [u.email for u in list_users(conn, tenant_id=tenant.tenant_id)] == [
            "ann@example.com"
        ]


def test_login_upgrades_an_outdated_hash(store: sa.Engine) -> None:
    with write_transaction(store) as conn:
        user = create_user(conn, "tech@example.com", PASSWORD, "technician")
        weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
        conn.execute(users.update().values(password_hash=weak))
        assert authenticate(conn, "tech@example.com", PASSWORD) is not None
        stored = conn.execute(
            sa.select(users.c.password_hash).where(users.c.user_id == user.user_id)
        ).scalar_one()
    assert stored != weak and not passwords._HASHER.check_needs_rehash(stored)


@pytest.mark.parametrize(
    ("email", "role", "with_tenant", "error", "message"),
    [
        ("a@example.com", "tenant", False, ValidationError, "needs a tenant"),
        ("a@example.com", "admin", True, ValidationError, "drop --tenant"),
        (
            "a@example.com",
            "owner",
            False,
            ValidationError,
            "not one of: tenant, tenant_admin, technician, admin",
        ),
        ("not-an-email", "admin", False, ValidationError, "not an email address"),
        ("dup@example.com", "admin", False, StoreError, "already exists"),
    ],
)
def test_create_user_refuses(
    store: sa.Engine,
    email: str,
    role: str,
    with_tenant: bool,
    error: type[Exception],
    message: str,
) -> None:
    tenant = gen_tenant(store, "acme")
    with write_transaction(store) as conn:
        create_user(conn, "dup@example.com", PASSWORD, "technician")
    with pytest.raises(error, match=message), write_transaction(store) as conn:
        tenant_id = tenant.tenant_id if with_tenant else None
        create_user(conn, email, PASSWORD, role, tenant_id)


def test_tenants_and_agents(store: sa.Engine) -> None:
    with write_transaction(store) as conn:
        acme = create_tenant(conn, "acme", "Acme Ltd", "Europe/London")
        create_tenant(conn, "globex", "Globex", "America/Chicago")
        agent = enroll_agent(conn, "acme", "acme-leeds.1", name="Leeds")
    with store.connect() as conn:
        assert [t.slug for t in list_tenants(conn)] == ["acme", "globex"]
        assert get_tenant(conn, "acme") == acme
        assert get_tenant_by_id(conn, acme.tenant_id) == acme
        assert list_agents(conn, acme.tenant_id) == [agent]
        assert (agent.name, agent.last_sequence, agent.last_seen_at) == ("Leeds", None, None)
    assert str(acme.zone) == "Europe/London"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: create_tenant(c, "Acme", "A", "UTC"), ValidationError, "lower-case"),
        (lambda c: create_tenant(c, "a/b", "A", "UTC"), ValidationError, "not a tenant slug"),
        (lambda c: create_tenant(c, "b", "B", "Mars/Olympus"), ValidationError, "IANA"),
        (lambda c: create_tenant(c, "b", " ", "UTC"), ValidationError, "--name"),
        (lambda c: create_tenant(c, "acme", "A", "UTC"), StoreError, "already exists"),
        (lambda c: enroll_agent(c, "nope", "e1"), StoreError, "datacenter tenant add nope"),
        (lambda c: enroll_agent(c, "acme", "bad id"), ValidationError, "not an agent id"),
        (lambda c: enroll_agent(c, "acme", "edge-1"), StoreError, "already enrolled"),
    ],
)  # fmt: skip
def test_tenant_and_agent_errors(
    store: sa.Engine, call: object, error: type[Exception], message: str
) -> None:
    gen_tenant(store, "acme")
    with write_transaction(store) as conn:
        enroll_agent(conn, "acme", "edge-1")
    with pytest.raises(error, match=message), write_transaction(store) as conn:
        call(conn)  # type: ignore[operator]
