"""The ``make_site`` fixture: a whole site (tests/faults/site.py) that is always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.site import Site, SiteOptions
from tests.fixtures.sshd import SshdServer


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
