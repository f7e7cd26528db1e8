"""Fixtures for real servers live in tests/fixtures/; they are registered here."""

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.sshd"]
