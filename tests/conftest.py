"""Fixtures for real servers live in tests/fixtures/; they are registered here."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.sshd",
    "tests.fixtures.store",
    "tests.fixtures.web",
    "tests.fixtures.scopes",
    "tests.fixtures.browser",
    "tests.fixtures.lcscdr",
    "tests.fixtures.proxies",
    "tests.fixtures.console",
    "tests.fixtures.slapd",
    "tests.fixtures.debian_root",
    "tests.fixtures.smtp",
]
