"""A truncated and a bit-flipped batch file in the landing area.

The agent uploads its batches while ingest is stopped; then one file in ``incoming/`` is cut to
half its length and another gets one bit flipped in the middle (a disk or a transfer fault at
the data centre). Ingest must quarantine both, with the reason beside each file and in
``landed_files``, store nothing from them and everything from the others, and show the two
batch numbers as missing. A re-send by the agent (``edge-agent resend``) must then fill both
gaps without storing any call twice.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.site import Site, assert_exactly_once

pytestmark = [pytest.mark.faults, pytest.mark.sshd]

BATCHES = 8
TRUNCATED, FLIPPED = 3, 6


def damage(site: Site) -> dict[int, str]:
    """Truncate one landed file and flip a bit in another; their names by batch number."""
    files = {int(path.name[-14:-4]): path for path in site.landed("incoming")}
    truncated, flipped = files[TRUNCATED], files[FLIPPED]
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    flipped_data = bytearray(flipped.read_bytes())
    flipped_data[len(flipped_data) // 2] ^= 0x10
    flipped.write_bytes(bytes(flipped_data))
    return {TRUNCATED: truncated.name, FLIPPED: flipped.name}


def test_truncated_and_bit_flipped_files_quarantined_then_resent(
    make_site: Callable[..., Site],
) -> None:
    site = make_site(calls=BATCHES * 50, rate_per_second=0.0, batch_max_records=50)
    site.agent.start()
    site.wait_all_uploaded(timeout=120)  # BATCHES, or more if a partial batch aged out
    damaged = damage(site)
    site.start_ingest()
    site.wait_until(lambda: site.agent_backlog() == (0, 2), timeout=60,
                    what="every good batch to be stored and acknowledged")  # fmt: skip

    rows = {row.file_name: row for row in site.landed_file_rows()}
    reasons: dict[str, str] = {}
    for name in damaged.values():
        assert rows[name].status == "quarantined" and rows[name].reason, rows[name]
        assert (site.landing / "quarantine" / name).exists(), f"{name} not in quarantine/"
        beside = (site.landing / "quarantine" / f"{name}.reason").read_text().strip()
        assert beside == rows[name].reason.strip(), (beside, rows[name].reason)
        reasons[name] = beside
    assert site.missing_batches() == f"{TRUNCATED},{FLIPPED}"
    lost_with_files = site.record_ids_in_batches(sorted(damaged))
    assert len(lost_with_files) == 100
    expected = site.expected()
    kept = assert_exactly_once(
        site.engine, [c for c in expected if c.record_id not in lost_with_files]
    )
    print(f"\ntruncated + bit-flipped in landing: both quarantined, nothing stored from them, the "
          f"other {kept.calls} calls stored once; missing batches {TRUNCATED},{FLIPPED}; reasons: "
          + " | ".join(f"{name}: {reason}" for name, reason in reasons.items()))  # fmt: skip

    began = time.monotonic()
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    resend = site.agent_command("resend", "--since", since)
    assert resend.returncode == 0, resend.stderr
    # A quarantined batch never gets a receipt: resend takes the unacknowledged ones too.
    # (The running agent may send them at once, so their spool status is not checked here.)
    for name in damaged.values():
        assert f"re-queued {name}" in resend.stdout, resend.stdout
    site.agent.signal(signal.SIGUSR1)
    site.wait_delivered(timeout=60)
    result = assert_exactly_once(site.engine, expected)
    assert site.missing_batches() == "-"
    print(f"re-sent: {result.calls} calls, 0 lost, 0 duplicated; gaps filled in "
          f"{time.monotonic() - began:.1f} s")  # fmt: skip
