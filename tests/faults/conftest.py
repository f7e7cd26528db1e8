"""The ``make_site`` fixture: a whole site (tests/faults/site.py) that is always torn down.

Every fault test gets a 20-minute hang guard instead of the suite's 5 minutes: each runs a
whole site through kills, outages or crashes, a few minutes on a quiet machine and more than
five on one as loaded as a shared CI runner (two did, under load 20). The guard is there to stop
a hang, not to judge speed; every wait inside a test has its own deadline and says what it
waited for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.site import Site, SiteOptions
from tests.fixtures.sshd import SshdServer

FAULT_TEST_TIMEOUT_SECONDS = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in item.nodeid and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FAULT_TEST_TIMEOUT_SECONDS))


@pytest.fixture
def make_site(
    tmp_path: Path, sshd: SshdServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Site]]:
    """``make_site(backend=..., **SiteOptions)`` opens a site on the ``sshd`` landing area.

    ``backend="postgres"`` stores into a fresh database on the throwaway cluster (``pg_url``);
    the default is a SQLite file. Every site is closed after the test.
    """
    sites: list[Site] = []

    def make(*, backend: str = "sqlite", **options: Any) -> Site:
        if backend == "postgres":
            options["store_url"] = str(request.getfixturevalue("pg_url"))
        site = Site(tmp_path / "site", sshd, SiteOptions(**options))
        sites.append(site)
        return site.open()

    yield make
    for site in sites:
        site.close()
