"""Fixtures for real servers live in tests/fixtures/; they are registered here."""

from hypothesis import settings

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

# No per-example time limit: hypothesis's default deadline (200 ms) fails a property by chance on
# a loaded or slower machine, and CI runs on another machine than the one that wrote the test.
settings.register_profile("callcollect", deadline=None)
settings.load_profile("callcollect")
