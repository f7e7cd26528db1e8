"""The link is cut in the middle of an upload: the customer's HTTP proxy drops the tunnel.

The agent reaches the landing area through an HTTP CONNECT proxy (tests/fixtures/proxies.py),
with its bandwidth capped so an upload takes a while. As soon as a batch's ``.part`` appears in
``incoming/`` the proxy is told to cut the tunnel a few kilobytes later: the session dies with
half a file on the server. The data centre must never ingest the ``.part``; the agent's next
session truncates and rewrites it, renames it, and every call is stored once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.faults.site import Site, assert_exactly_once
from tests.fixtures.proxies import HttpConnectProxy

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

CUT_AFTER_BYTES = 3000  # more upstream bytes, once the upload's .part has some
MAX_KBPS = 160  # 20 kB/s, paced per 32 KiB chunk: a 500-record batch (~43 kB) takes ~2 s


def test_link_cut_mid_upload(make_site: Callable[..., Site], http_proxy: HttpConnectProxy) -> None:
    site = make_site(calls=1000, rate_per_second=250.0, batch_max_records=500,
                     proxy=http_proxy.url(), max_kbps=MAX_KBPS)  # fmt: skip
    site.start()
    incoming = site.landing / "incoming"
    site.wait_until(lambda: any(path.stat().st_size > 0 for path in incoming.glob("*.ccb.part")),
                    timeout=30, what="an upload in progress (a .part in incoming/)")  # fmt: skip
    http_proxy.cut_after_bytes = http_proxy.upstream_bytes + CUT_AFTER_BYTES
    site.wait_log("uplink failed (attempt 1", timeout=30)
    # Look while the link is still down: every tunnel the agent opens now dies on its first
    # byte, so no session can have rewritten or renamed the torn file yet. (Looking after the
    # link is back raced the agent's retry, which may already have renamed it.)
    torn = [(path.name, path.stat().st_size) for path in incoming.glob("*.ccb.part")]
    http_proxy.cut_after_bytes = None  # the link is back
    assert torn, "the cut left no partial upload on the server"
    delivered = site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, site.expected())

    leftovers = sorted(path.name for path in incoming.iterdir())
    assert not [name for name in leftovers if name.endswith(".ccb.part")], leftovers
    ingested = {row.file_name for row in site.landed_file_rows()}
    assert not [name for name in ingested if name.endswith(".part")], ingested
    assert not site.landed("quarantine"), "a cut upload reached quarantine"
    failure = next(line for line in site.agent_log.read_text().splitlines()
                   if "uplink failed (attempt 1" in line)  # fmt: skip
    print(
        f"\nlink cut mid-upload: {result.calls} calls, 0 lost, 0 duplicated; torn "
        f"{torn[0][0]} at {torn[0][1]} bytes, rewritten and renamed by the next session; all "
        f"delivered {delivered:.1f} s after the cut; agent: {failure.split(': ', 1)[-1][:120]}"
    )
