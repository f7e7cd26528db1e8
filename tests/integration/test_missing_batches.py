"""missing_batches on both backends: landed_files rows in, missing ranges out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from datacenter.health.missing_batches import MissingRange, describe, missing_batches
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import landed_files
from shared.envelope import batch_file_name
from tests.fixtures.store import gen_agent, gen_tenant

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

CASES = [
    ("nothing landed", [], []),
    ("all there", [(1, "stored"), (2, "duplicate"), (3, "stored")], []),
    ("one lost", [(1, "stored"), (3, "stored")], [(2, 2)]),
    ("first ones lost", [(4, "stored")], [(1, 3)]),
    ("quarantined counts as missing", [(1, "stored"), (2, "quarantined"), (3, "stored")], [(2, 2)]),
    ("the newest quarantined", [(1, "stored"), (2, "quarantined")], [(2, 2)]),
    ("only quarantined", [(1, "quarantined"), (2, "quarantined")], [(1, 2)]),
    ("being stored is not missing", [(1, "stored"), (2, "claimed"), (3, "stored")], []),
    ("several gaps", [(2, "stored"), (5, "stored"), (6, "quarantined"), (9, "duplicate")],
     [(1, 1), (3, 4), (6, 8)]),
]  # fmt: skip


@pytest.mark.parametrize(("landed", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_missing_ranges(
    store: sa.Engine, landed: list[tuple[int, str]], expected: list[tuple[int, int]]
) -> None:
    tenant = gen_tenant(store, "acme")
    gen_agent(store, "acme", "edge-1")
    gen_agent(store, "acme", "edge-2")
    rows = [_row(tenant.tenant_id, "edge-1", seq, status) for seq, status in landed]
    rows.append(_row(tenant.tenant_id, "edge-2", 40, "stored"))  # another agent's numbers
    if landed:  # a different file kept as NAME~SHA12 shares the number of the first one
        kept = _row(tenant.tenant_id, "edge-1", landed[0][0], "quarantined")
        rows.append({**kept, "file_name": f"{kept['file_name']}~0123456789ab"})
    with write_transaction(store) as conn:
        conn.execute(landed_files.insert(), rows)
    with store.connect() as conn:
        found = missing_batches(conn, tenant.tenant_id, "edge-1")
    assert found == [MissingRange(first, last) for first, last in expected]


def test_describe() -> None:
    assert describe([]) == "-"
    assert describe([MissingRange(2, 2), MissingRange(5, 7)]) == "2,5-7"
    assert MissingRange(5, 7).count == 3


def _row(tenant_id: int, agent_id: str, sequence: int, status: str) -> dict[str, object]:
    return {
        "tenant_id": tenant_id, "file_name": batch_file_name(agent_id, sequence),
        "agent_id": agent_id, "sequence": sequence, "sha256": "0" * 64, "size": 1,
        "status": status, "claimed_by": "test", "claimed_at": NOW,
    }  # fmt: skip
