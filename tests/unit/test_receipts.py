"""Receipts: signed by the data centre, verified by the agent; any change is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import keys
from shared.receipts import (
    MAGIC,
    Receipt,
    ReceiptError,
    batch_name_of,
    make_receipt,
    verify_receipt,
    write_receipt,
)

DC = keys.new_datacentre_keys("dc.example")
OTHER_DC = keys.new_datacentre_keys("other.example")
BATCH = "agent-1-0000000042.ccb"
SHA = hashlib.sha256(b"the batch file").hexdigest()
STORED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def gen_receipt(**changes: object) -> bytes:
    values: dict[str, object] = {
        "batch_name": BATCH, "sha256": SHA, "records": 10, "inserted": 7, "duplicates": 3,
        "stored_at": STORED, "key": DC.receipts_key, "certificate": DC.certificates.receipts,
    }  # fmt: skip
    values.update(changes)
    return make_receipt(**values)  # type: ignore[arg-type]


def resign(body: dict[str, object]) -> bytes:
    """A receipt the genuine key signed over an arbitrary body (the DC's own bug, not an attack)."""
    line = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    signature = DC.receipts_key.sign(MAGIC + line)
    return MAGIC + line + b"\n" + base64.b64encode(signature) + b"\n"


RECEIPT = gen_receipt()
BODY = json.loads(RECEIPT.split(b"\n")[1])


def test_round_trip() -> None:
    receipt = verify_receipt(RECEIPT, certificate=DC.certificates.receipts)
    assert receipt == Receipt(
        batch=BATCH, agent_id="agent-1", sequence=42, sha256=SHA, records=10, inserted=7,
        duplicates=3, stored_at="2026-03-02T09:30:00Z",
        signer=keys.fingerprint(DC.certificates.receipts),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (RECEIPT.replace(b'"inserted":7', b'"inserted":8'), "signature does not verify"),
        (RECEIPT.replace(RECEIPT.split(b"\n")[2], base64.b64encode(bytes(64))),
         "signature does not verify"),
        (RECEIPT[:-1], "a body line and a signature line"),
        (RECEIPT + b"\n", "a body line and a signature line"),
        (b"CCB1\n" + RECEIPT[5:], "bad magic"),
        (RECEIPT.replace(RECEIPT.split(b"\n")[2], b"not base64!"), "not base64"),
        (b"x" * 9000, "more than a receipt can be"),
        (resign({**BODY, "sequence": 41}), "disagrees with its agent id and sequence"),
        (resign({**BODY, "inserted": 1}), r"inserted \+ duplicates does not equal records"),
        (resign({**BODY, "sha256": "ABC"}), "not 64 lower-case hex digits"),
        (resign({**BODY, "records": -1}), "'records' is not a count"),
        (resign({**BODY, "records": True}), "'records' is not a count"),
        (resign({**BODY, "extra": 1}), "receipt fields are"),
        (resign({**BODY, "version": 2}), "unsupported receipt format"),
        (resign({**BODY, "stored_at": "yesterday"}), "stored_at"),
    ],
    ids=["altered-field", "altered-signature", "truncated", "trailing-line", "bad-magic",
         "bad-base64", "oversized", "wrong-sequence", "bad-sum", "bad-sha", "negative",
         "bool-count", "extra-field", "version", "bad-time"],
)  # fmt: skip
def test_every_defect_is_named(data: bytes, message: str) -> None:
    with pytest.raises(ReceiptError, match=message):
        verify_receipt(data, certificate=DC.certificates.receipts)


def test_another_data_centres_receipt_is_refused() -> None:
    with pytest.raises(ReceiptError, match="another data centre's"):
        verify_receipt(RECEIPT, certificate=OTHER_DC.certificates.receipts)
    with pytest.raises(ReceiptError, match="not an Ed25519 certificate"):
        verify_receipt(RECEIPT, certificate=DC.certificates.envelope)


@pytest.mark.parametrize(
    ("name", "batch"),
    [
        ("agent-1-0000000042.ccb.receipt", "agent-1-0000000042.ccb"),
        (".agent-1-0000000042.ccb.receipt.tmp-1a2b3c4d", None),
        ("agent-1-0000000042.ccb", None),
        ("notes.receipt", None),
    ],
)
def test_batch_name_of(name: str, batch: str | None) -> None:
    assert batch_name_of(name) == batch


def test_make_receipt_refuses_a_name_that_is_not_a_batch() -> None:
    with pytest.raises(ValueError, match="not a batch file name"):
        gen_receipt(batch_name="notes.txt")


def test_write_receipt_is_atomic_and_named_for_the_batch(tmp_path: Path) -> None:
    path = write_receipt(tmp_path, RECEIPT, batch_name=BATCH)
    assert path.name == BATCH + ".receipt"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    assert verify_receipt(path.read_bytes(), certificate=DC.certificates.receipts).sequence == 42


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(RECEIPT) - 1),
       bit=st.integers(min_value=0, max_value=7))  # fmt: skip
def test_any_bit_flip_is_detected(position: int, bit: int) -> None:
    flipped = bytearray(RECEIPT)
    flipped[position] ^= 1 << bit
    with pytest.raises(ReceiptError):
        verify_receipt(bytes(flipped), certificate=DC.certificates.receipts)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), st.binary(max_size=200).map(lambda b: MAGIC + b)))
def test_arbitrary_bytes_never_crash_the_verifier(data: bytes) -> None:
    with pytest.raises(ReceiptError):
        verify_receipt(data, certificate=DC.certificates.receipts)
