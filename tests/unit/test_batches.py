"""Sealing: sizes and ages, gap-free sequence numbers, atomic files, crash recovery."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.delivery.batches import Batcher, BatchError
from edge_agent.spool import BatchStatus, Spool
from shared.envelope import batch_file_name, open_batch
from tests.factories import gen_icdr

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUOTA = 64 * 1024 * 1024


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool.open(tmp_path, quota_bytes=QUOTA) as opened:
        yield opened


def make_batcher(spool: Spool, tmp_path: Path, **kwargs: object) -> Batcher:
    options: dict[str, object] = {"max_records": 3, "max_age": timedelta(seconds=60)}
    options.update(kwargs)
    return Batcher(spool, state_dir=tmp_path, agent_id="agent-1", tenant="demo", **options)  # type: ignore[arg-type]


def spool_calls(spool: Spool, numbers: range, *, at: datetime = T0) -> None:
    spool.store("pbx-1", [(n, gen_icdr(n)) for n in numbers], [], cursor=max(numbers), now=at)


@pytest.mark.parametrize(
    ("spooled", "waited", "force", "expected_batches"),
    [
        (0, 0, False, []),  # nothing spooled
        (2, 10, False, []),  # too few, too young
        (2, 60, False, [2]),  # too few, but old enough
        (2, 10, True, [2]),  # flush
        (3, 0, False, [3]),  # full batch at once
        (7, 0, False, [3, 3]),  # full batches; the remainder waits
        (7, 60, False, [3, 3, 1]),  # ... unless old enough
        (2, -86400, False, [2]),  # the clock was stepped back a day: due now, not in a day
        (2, -1, False, [2]),
    ],
)
def test_when_batches_are_sealed(
    spool: Spool, tmp_path: Path, spooled: int, waited: int, force: bool,
    expected_batches: list[int],
) -> None:  # fmt: skip
    if spooled:
        spool_calls(spool, range(1, spooled + 1))
    sealed = make_batcher(spool, tmp_path).seal_ready(T0 + timedelta(seconds=waited), force=force)
    assert [b.record_count for b in sealed] == expected_batches
    assert [b.sequence for b in sealed] == list(range(1, len(expected_batches) + 1))


def test_a_sealed_file_opens_and_matches_the_spool(spool: Spool, tmp_path: Path) -> None:
    spool_calls(spool, range(1, 6))
    batcher = make_batcher(spool, tmp_path)
    first, second = batcher.seal_ready(T0 + timedelta(minutes=5))
    assert first.path == tmp_path / "outbox" / batch_file_name("agent-1", 1)
    batch = open_batch(first.path.read_bytes())
    assert batch.manifest.sequence == 1 and batch.manifest.tenant == "demo"
    assert [r.record_id for r in batch.records] == [gen_icdr(n).record_id for n in (1, 2, 3)]
    assert [r.record_id for r in open_batch(second.path.read_bytes()).records] == [
        gen_icdr(n).record_id for n in (4, 5)
    ]
    rows = spool.batches()
    assert [(r.sequence, r.status, r.record_count) for r in rows] == [
        (1, BatchStatus.SEALED, 3), (2, BatchStatus.SEALED, 2),
    ]  # fmt: skip
    assert spool.unbatched(10) == []
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == [r.file_name for r in rows]


def test_sequence_numbers_continue_without_gaps(spool: Spool, tmp_path: Path) -> None:
    batcher = make_batcher(spool, tmp_path)
    spool_calls(spool, range(1, 4))
    batcher.seal_ready(T0)
    spool_calls(spool, range(4, 7))
    assert [b.sequence for b in batcher.seal_ready(T0)] == [2]


def test_crash_after_commit_before_the_file_is_rebuilt_identically(
    spool: Spool, tmp_path: Path
) -> None:
    spool_calls(spool, range(1, 4))
    batcher = make_batcher(spool, tmp_path)
    reference = batcher.seal_ready(T0)[0]
    expected = reference.path.read_bytes()
    reference.path.unlink()  # the file write never happened
    (tmp_path / "outbox" / f".{reference.file_name}.tmp-dead").write_bytes(b"half")
    actions = make_batcher(spool, tmp_path).recover()
    assert actions == [f"removed temporary .{reference.file_name}.tmp-dead",
                       f"rebuilt {reference.file_name}"]  # fmt: skip
    assert reference.path.read_bytes() == expected
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [reference.file_name]


def test_a_crash_before_commit_leaves_no_file_and_no_number(
    spool: Spool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool_calls(spool, range(1, 4))
    batcher = make_batcher(spool, tmp_path)

    def crash(*args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(spool, "add_batch", crash)
    with pytest.raises(OSError, match="power cut"):
        batcher.seal_ready(T0)
    monkeypatch.undo()
    assert list((tmp_path / "outbox").iterdir()) == []
    assert len(spool.unbatched(10)) == 3
    assert [b.sequence for b in batcher.seal_ready(T0)] == [1]


def test_rebuild_refuses_to_write_a_different_file(spool: Spool, tmp_path: Path) -> None:
    spool_calls(spool, range(1, 4))
    sealed = make_batcher(spool, tmp_path).seal_ready(T0)[0]
    sealed.path.unlink()
    with pytest.raises(BatchError, match="cannot be rebuilt identically"):
        Batcher(spool, state_dir=tmp_path, agent_id="agent-1", tenant="renamed").recover()
    assert not sealed.path.exists()


def test_recover_moves_an_uploaded_batch_to_sent(spool: Spool, tmp_path: Path) -> None:
    spool_calls(spool, range(1, 4))
    batcher = make_batcher(spool, tmp_path)
    sealed = batcher.seal_ready(T0)[0]
    spool.mark_uploaded(sealed.sequence, at=T0)  # crash before the move to sent/
    assert batcher.recover() == [f"moved uploaded {sealed.file_name} to sent/"]
    assert (tmp_path / "sent" / sealed.file_name).exists()
    assert batcher.path_of(spool.batches()[0]) == tmp_path / "sent" / sealed.file_name
    assert batcher.recover() == []


# --- protection "cms": the file is signed and encrypted, the content stays deterministic ------

from shared import cms, keys  # noqa: E402

SIGNER = keys.new_agent_identity("agent-1")
DC = keys.new_datacentre_keys("dc.example")
RECIPIENT = cms.Recipient(DC.certificates.envelope, DC.envelope_key)


def protect(content: bytes) -> bytes:
    return cms.protect(content, signer=SIGNER, recipient=DC.certificates.envelope)


def open_cms(data: bytes) -> list[str]:
    landed = cms.open_landed(data, recipient=RECIPIENT,
                             trusted_signers={keys.fingerprint(SIGNER.certificate)})  # fmt: skip
    return [r.record_id for r in landed.batch.records]


def test_cms_batches_record_both_digests(spool: Spool, tmp_path: Path) -> None:
    spool_calls(spool, range(1, 4))
    (sealed,) = make_batcher(spool, tmp_path, protect=protect).seal_ready(T0)
    data = sealed.path.read_bytes()
    (row,) = spool.batches()
    assert row.sha256 == hashlib.sha256(data).hexdigest() != row.content_sha256
    assert open_cms(data) == [gen_icdr(n).record_id for n in (1, 2, 3)]


def test_recover_reprotects_a_missing_cms_file_and_records_it_first(
    spool: Spool, tmp_path: Path
) -> None:
    spool_calls(spool, range(1, 4))
    batcher = make_batcher(spool, tmp_path, protect=protect)
    (sealed,) = batcher.seal_ready(T0)
    before = spool.batches()[0]
    sealed.path.unlink()  # the crash between the commit and the file write
    assert batcher.recover() == [f"rebuilt {sealed.file_name}"]
    after = spool.batches()[0]
    data = sealed.path.read_bytes()
    assert after.content_sha256 == before.content_sha256  # the same records, byte for byte
    assert after.sha256 == hashlib.sha256(data).hexdigest() != before.sha256  # a fresh envelope
    assert after.bytes == len(data)
    assert open_cms(data) == [gen_icdr(n).record_id for n in (1, 2, 3)]


def test_recover_moves_a_requeued_file_back_without_reprotecting(
    spool: Spool, tmp_path: Path
) -> None:
    spool_calls(spool, range(1, 4))
    batcher = make_batcher(spool, tmp_path, protect=protect)
    (sealed,) = batcher.seal_ready(T0)
    original = sealed.path.read_bytes()
    sealed.path.replace(batcher.sent / sealed.file_name)  # a re-send interrupted mid-move
    assert batcher.recover() == [f"moved re-queued {sealed.file_name} back to outbox/"]
    assert sealed.path.read_bytes() == original  # the data centre may hold these exact bytes
    assert spool.batches()[0].sha256 == hashlib.sha256(original).hexdigest()
