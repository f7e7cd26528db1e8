"""Collecting receipts: the data centre's word that a batch is stored, checked before it counts.

Contract:

- ``ReceiptInbox.collect(remote)`` reads every receipt in the landing folder's ``receipts/``
  that names one of *this* agent's batches (several agents of a tenant share the folder; the
  others' receipts are left alone), verifies it against the pinned data centre receipts
  certificate (``shared.receipts.verify_receipt``), and records it in the spool
  (``Spool.acknowledge``: the batch becomes ``acknowledged``, only if the SHA-256 in the
  receipt is the SHA-256 of the file we sent). Only after that commit is the remote receipt
  deleted, so a crash in between re-reads it next session, harmlessly (``already``). In an
  agent's own landing account the agent may not delete it (``receipts/`` is the data centre's,
  which prunes it): the inbox then remembers the name and does not read it again.
- A receipt that fails verification, or is for different bytes under our name, acknowledges
  nothing and is **left in place** for a technician (logged as an error every session until
  they act): deleting it would hide the evidence, and a fixed certificate on the agent makes a
  rejected-for-the-wrong-reason receipt count on the next session.
- A receipt for a batch retention already deleted (re-sent long ago) is removed.

Acknowledgement is what lets retention (``edge_agent.delivery.retention``) delete a batch; nothing else
does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from cryptography import x509

from edge_agent.delivery.ledger import Ledger
from edge_agent.spool import AckOutcome, Spool
from shared.crashpoints import crash_point
from shared.envelope import parse_batch_file_name
from shared.receipts import ReceiptError, batch_name_of, verify_receipt

log = logging.getLogger(__name__)


class RemoteReceipts(Protocol):
    """The receipts folder as the uplink session offers it."""

    def list_receipts(self) -> list[str] | None: ...

    def read_receipt(self, name: str) -> bytes: ...

    def remove_receipt(self, name: str) -> bool: ...  # False: not ours to delete


class ReceiptStatus(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    ALREADY = "already"  # recorded by an earlier session; the remote copy is removed now
    STALE = "stale"  # for a batch retention has deleted; removed
    REJECTED = "rejected"  # failed verification; left in place
    MISMATCH = "mismatch"  # for different bytes under our batch's name; left in place
    UNKNOWN = "unknown"  # ours by name but never sealed here; left in place


@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    receipt: str  # the remote file name
    status: ReceiptStatus
    detail: str = ""


class ReceiptInbox:
    """Turns verified receipts into acknowledged batches (see the module docstring)."""

    def __init__(
        self,
        spool: Spool,
        *,
        agent_id: str,
        certificate: x509.Certificate,
        clock: Callable[[], datetime],
        ledger: Ledger | None = None,
    ) -> None:
        self.spool = spool
        self.agent_id = agent_id
        self.certificate = certificate
        self.clock = clock
        # Recorded receipts the landing would not let us delete (an agent's own account: the
        # data centre prunes them); not read again by this process.
        self.recorded: set[str] = set()
        self.ledger = ledger  # also keeps each verified receipt, for a spool rebuild

    def collect(self, remote: RemoteReceipts) -> list[ReceiptOutcome]:
        names = remote.list_receipts()
        if names is None:
            log.warning("receipts: the landing folder has no receipts folder yet; batches stay "
                        "unacknowledged (ask the data centre to create it)")  # fmt: skip
            return []
        fresh = [name for name in names if self._ours(name) and name not in self.recorded]
        outcomes = [self._one(remote, name) for name in fresh]
        for outcome in outcomes:
            if outcome.status in (ReceiptStatus.ACKNOWLEDGED, ReceiptStatus.ALREADY):
                log.info("receipt %s: %s %s", outcome.receipt, outcome.status, outcome.detail)
            else:
                log.error("receipt %s: %s: %s", outcome.receipt, outcome.status, outcome.detail)
        return outcomes

    def _ours(self, name: str) -> bool:
        batch = batch_name_of(name)
        parsed = parse_batch_file_name(batch) if batch else None
        return parsed is not None and parsed[0] == self.agent_id

    def _remove(self, remote: RemoteReceipts, name: str) -> None:
        if not remote.remove_receipt(name):
            self.recorded.add(name)

    def _one(self, remote: RemoteReceipts, name: str) -> ReceiptOutcome:
        data = remote.read_receipt(name)
        try:
            receipt = verify_receipt(data, certificate=self.certificate)
        except ReceiptError as exc:
            return ReceiptOutcome(name, ReceiptStatus.REJECTED, f"{exc}; left for a technician")
        if receipt.batch != batch_name_of(name):
            return ReceiptOutcome(
                name, ReceiptStatus.REJECTED,
                f"the file is named for another batch than the receipt inside ({receipt.batch})",
            )  # fmt: skip
        outcome = self.spool.acknowledge(
            receipt.batch, sha256=receipt.sha256, receipt=data.decode(), at=self.clock()
        )
        crash_point("receipt.acknowledged")
        if self.ledger is not None and outcome in (AckOutcome.ACKNOWLEDGED, AckOutcome.ALREADY):
            self.ledger.acknowledge(receipt.batch, data)
            crash_point("receipt.ledgered")
        detail = f"{receipt.records} records, {receipt.inserted} new, stored {receipt.stored_at}"
        if outcome is AckOutcome.MISMATCH:
            return ReceiptOutcome(
                name, ReceiptStatus.MISMATCH,
                f"the data centre stored a file with SHA-256 {receipt.sha256} under our name, "
                "which is not the file we sent; ask the data centre to check it",
            )  # fmt: skip
        if outcome is AckOutcome.UNKNOWN:
            if receipt.sequence <= self.spool.purged_through():
                self._remove(remote, name)
                return ReceiptOutcome(name, ReceiptStatus.STALE, "batch already past retention")
            return ReceiptOutcome(
                name, ReceiptStatus.UNKNOWN,
                "no such batch was sealed here; another appliance may use this agent id",
            )  # fmt: skip
        self._remove(remote, name)
        status = ReceiptStatus.ACKNOWLEDGED if outcome is AckOutcome.ACKNOWLEDGED else (
            ReceiptStatus.ALREADY)  # fmt: skip
        return ReceiptOutcome(name, status, detail)
