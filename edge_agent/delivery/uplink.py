"""The uplink: pushes sealed batch files to the data centre's SFTP landing area.

Contract:

- Authentication is by this appliance's key only: no password, no SSH agent, no keys found
  lying around (``look_for_keys=False``). The server's host key must match the entry pinned in
  ``uplink.known_hosts``; an unknown or changed key is refused (``HostKeyMismatch`` names the
  file and the fix). Nothing is ever trusted on first use.
- A batch goes to ``REMOTE_DIR/NAME.part`` (a stale ``.part`` from an interrupted session is
  overwritten), then is renamed to ``REMOTE_DIR/NAME`` with ``posix_rename``, so the data centre
  never sees a partial file under the final name. A final ``NAME`` is never overwritten: if it
  exists with our size the batch was delivered by a session that died before recording it; any
  other size is an error for a technician.
- After the rename the batch is marked ``uploaded`` in the spool and its file moves from
  ``outbox/`` to ``sent/``, where it stays until a receipt and the retention period allow
  deletion (``edge_agent.delivery.retention``). A crash between those steps re-uploads harmlessly (see
  above) or is repaired by ``Batcher.recover``.
- ``Uplink.deliver()`` is one session: first the receipts in ``RECEIPTS_DIR`` are collected
  (``edge_agent.delivery.receipts``: verified, recorded, deleted), then every sealed batch is
  uploaded, oldest first. A session is opened only when there is something to send or a
  receipt to wait for, or when an ``on_session`` hook is set (the agent's heartbeat, which
  ``edge_agent.health.status`` sends at the end of every session, even a failing one).
- The connection goes direct or through ``uplink.proxy`` (``edge_agent.delivery.proxy``: HTTP CONNECT or
  SOCKS5); SSH runs end to end over the tunnel either way.
- ``uplink.max_kbps`` caps the upload rate: after each 32 KiB chunk the writer sleeps until the
  bytes so far fit the rate (``Throttle``).
- Every network step has a timeout (connect, proxy hand-shake, authentication, each SFTP read
  or write), and every paramiko or socket failure becomes a ``TransportError`` whose message
  says what to do.
- The service spaces failed sessions with ``shared.backoff.Retries`` (exponential, jittered);
  a success resets it.

The landing layout is the data centre's (docs/landing.md; tests/fixtures/sshd.py stands in): the
session starts in the agent's own chroot (``/incoming``, ``/receipts``, ``/heartbeats``: set
``uplink.remote_dir`` and ``uplink.receipts_dir`` as `edge-agent enroll --import` prints), or in
the tenant's older shared folder (``incoming``, ``receipts``, the defaults).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.proxy import open_tunnel
from edge_agent.delivery.receipts import ReceiptInbox, ReceiptOutcome
from edge_agent.delivery.ssh import paramiko
from edge_agent.spool import BatchStatus, Spool
from shared.crashpoints import crash_point
from shared.durable import durable_move
from shared.errors import ConfigError, HostKeyMismatch, TransportError
from shared.receipts import MAX_RECEIPT_BYTES

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


class UploadStatus(StrEnum):
    UPLOADED = "uploaded"
    ALREADY_THERE = "already_there"  # a previous session renamed it but died before recording


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    file_name: str
    status: UploadStatus
    bytes: int


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one session did: receipts first, then uploads."""

    receipts: list[ReceiptOutcome] = field(default_factory=list)
    uploaded: list[UploadOutcome] = field(default_factory=list)
    session_opened: bool = False


class Throttle:
    """Paces a transfer to ``kbps`` kilobits per second; used as paramiko's progress callback."""

    def __init__(
        self,
        kbps: int,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bytes_per_second = kbps * 1000 / 8
        self._monotonic = monotonic
        self._sleep = sleep
        self._start = monotonic()

    def __call__(self, done: int, total: int) -> None:
        ahead = done / self.bytes_per_second - (self._monotonic() - self._start)
        if ahead > 0:
            self._sleep(ahead)


def check_key_files(u: UplinkSettings) -> None:
    """The private key loads and known_hosts pins the landing host (``edge-agent check``)."""
    if not u.private_key.is_file():
        raise ConfigError(
            "uplink.private_key",
            f"{u.private_key} does not exist",
            f"generate it with `ssh-keygen -t ed25519 -N '' -f {u.private_key}` and give the "
            ".pub to the data centre, or fix the path",
        )
    try:
        load_private_key(u.private_key)
    except TransportError as exc:
        raise ConfigError("uplink.private_key", str(exc), "see above") from exc
    if not u.known_hosts.is_file():
        raise ConfigError(
            "uplink.known_hosts",
            f"{u.known_hosts} does not exist",
            "create it with the data centre's host key (confirm its fingerprint with them)",
        )
    try:
        pinned = paramiko.HostKeys(str(u.known_hosts)).lookup(host_key_name(u.host, u.port))
    except (OSError, paramiko.SSHException) as exc:
        raise ConfigError("uplink.known_hosts", f"cannot read it: {exc}", "fix the file") from exc
    if pinned is None:
        raise ConfigError(
            "uplink.known_hosts",
            f"{u.known_hosts} pins no key for {host_key_name(u.host, u.port)}",
            f"add the data centre's key (ssh-keyscan -p {u.port} {u.host}, then confirm "
            "its fingerprint with the data centre)",
        )


def host_key_name(host: str, port: int) -> str:
    """How known_hosts names a host (OpenSSH brackets a non-standard port)."""
    return host if port == 22 else f"[{host}]:{port}"


class UplinkSession:
    """One SSH connection with its SFTP channel; use ``Uplink.connect()`` to open one."""

    def __init__(self, settings: UplinkSettings, client: paramiko.SSHClient) -> None:
        self.settings = settings
        self._client = client
        self._sftp = client.open_sftp()
        channel = self._sftp.get_channel()
        if channel is not None:  # every later SFTP read and write waits at most this long
            channel.settimeout(settings.transfer_timeout_seconds)

    def __enter__(self) -> UplinkSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The session's SFTP channel (health writes its heartbeat and clock probe with it)."""
        return self._sftp

    def close(self) -> None:
        """Close the session; on a link that already died this must not raise, or it would
        replace the TransportError that says what went wrong (paramiko raises EOFError)."""
        try:
            self._sftp.close()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("uplink: closing SFTP on a broken link: %r", exc)
        finally:
            self._client.close()

    def put_file(
        self, local: Path, name: str, *, remote_dir: str | None = None, kbps: int | None = None
    ) -> UploadOutcome:
        """Upload ``local`` as ``REMOTE_DIR/name`` through ``name.part``; never overwrite ``name``.

        The ``.part`` is opened with truncation, so a stale one from an interrupted session is
        overwritten, never appended to. ``remote_dir`` and ``kbps`` override the uplink's
        (recording batches have their own folder and bandwidth share).
        """
        final = f"{remote_dir or self.settings.remote_dir}/{name}"
        part = final + PART_SUFFIX
        size = local.stat().st_size
        with _sftp_errors(final):
            existing = self._size_of(final)
            if existing is not None:
                if existing != size:
                    raise TransportError(
                        f"{final} already exists at the data centre with {existing} bytes, ours "
                        f"has {size}: refusing to overwrite it. Another agent may be using agent "
                        "id or this agent's state was reset; ask the data centre to check it"
                    )
                return UploadOutcome(name, UploadStatus.ALREADY_THERE, size)
            limit = self.settings.max_kbps if kbps is None else kbps
            throttle = Throttle(limit) if limit else None
            with local.open("rb") as source:
                self._sftp.putfo(source, part, file_size=size, callback=throttle, confirm=True)
            self._sftp.posix_rename(part, final)
        return UploadOutcome(name, UploadStatus.UPLOADED, size)

    def list_remote_dir(self) -> list[str]:
        with _sftp_errors(self.settings.remote_dir):
            return sorted(self._sftp.listdir(self.settings.remote_dir))

    # --- receipts (edge_agent.delivery.receipts.RemoteReceipts) ------------------------------

    def list_receipts(self) -> list[str] | None:
        """Names in the receipts folder, or None when the data centre has not made one."""
        folder = self.settings.receipts_dir
        with _sftp_errors(folder):
            try:
                return sorted(self._sftp.listdir(folder))
            except FileNotFoundError:
                return None

    def read_receipt(self, name: str) -> bytes:
        path = f"{self.settings.receipts_dir}/{name}"
        with _sftp_errors(path), self._sftp.open(path, "rb") as remote:
            return bytes(remote.read(MAX_RECEIPT_BYTES + 1))  # a larger file is refused whole

    def remove_receipt(self, name: str) -> bool:
        """Delete a collected receipt; False when the landing does not let the agent.

        In an agent's own landing account ``receipts/`` is the data centre's (read-only for the
        agent, docs/landing.md) and the data centre prunes it.
        """
        path = f"{self.settings.receipts_dir}/{name}"
        # already gone: removed by a session that died before it could record that
        with _sftp_errors(path), contextlib.suppress(FileNotFoundError):
            try:
                self._sftp.remove(path)
            except PermissionError:
                return False
        return True

    def _size_of(self, path: str) -> int | None:
        try:
            attrs = self._sftp.stat(path)
        except FileNotFoundError:
            return None
        return attrs.st_size


class Uplink:
    """Delivers sealed batches: connect, upload each in sequence order, record the outcome."""

    def __init__(
        self,
        settings: UplinkSettings,
        *,
        spool: Spool,
        batcher: Batcher,
        clock: Callable[[], datetime],
        inbox: ReceiptInbox | None = None,
        client_factory: Callable[[], paramiko.SSHClient] = paramiko.SSHClient,
        on_session: Callable[[UplinkSession], None] | None = None,
        receipt_timeout: timedelta | None = None,
        after_records: Callable[[UplinkSession], object] | None = None,
        on_upload: Callable[[UploadOutcome], object] | None = None,
    ) -> None:
        self.after_records = after_records  # recording batches: only once every record is up
        # After each batch is up: the service tells systemd's watchdog it is alive, so a long
        # backlog on a slow link is not mistaken for a hung agent (WatchdogSec in the unit).
        self.on_upload = on_upload
        self.settings = settings
        self.receipt_timeout = receipt_timeout  # None: never re-send an unreceipted batch
        self.on_session = on_session  # health's heartbeat: every session, and a session each time
        self.spool = spool
        self.batcher = batcher
        self.clock = clock
        self.inbox = inbox  # None: receipts are not read (no receipts certificate configured)
        self._client_factory = client_factory

    def connect(self) -> UplinkSession:
        return connect(self.settings, client_factory=self._client_factory)

    def deliver(self) -> DeliveryReport:
        """One session: collect receipts, then upload every sealed batch; ``TransportError``.

        No session is opened when nothing is sealed and no uploaded batch awaits a receipt,
        unless ``on_session`` is set: then every call is a session and ends with the hook.
        """
        counts = self.spool.batch_counts()
        awaiting = counts[BatchStatus.UPLOADED] if self.inbox is not None else 0
        if not counts[BatchStatus.SEALED] and not awaiting and self.on_session is None:
            return DeliveryReport()
        with self.connect() as session:
            try:
                receipts = self.inbox.collect(session) if self.inbox is not None else []
                self._requeue_unreceipted()
                uploaded = self._upload_sealed(session)
                if self.after_records is not None:
                    self.after_records(session)
            finally:
                if (
                    self.on_session is not None
                ):  # never raises (edge_agent.health.status.on_session)
                    self.on_session(session)
        return DeliveryReport(receipts=receipts, uploaded=uploaded, session_opened=True)

    def _requeue_unreceipted(self) -> None:
        """Send again what got no receipt in time (checked after this session's receipts)."""
        if self.inbox is None or self.receipt_timeout is None:
            return
        overdue = self.spool.requeue_overdue(uploaded_before=self.clock() - self.receipt_timeout)
        self.batcher.back_to_outbox(overdue)
        for batch in overdue:
            log.warning("uplink: no receipt for %s since %s: sending it again",
                        batch.file_name, batch.uploaded)  # fmt: skip

    def send_sealed(self) -> list[UploadOutcome]:
        """Upload every sealed batch, oldest first, in one session; raises ``TransportError``.

        Batches uploaded before a failure stay recorded as uploaded.
        """
        if not self.spool.batches(status=BatchStatus.SEALED):
            return []
        with self.connect() as session:
            return self._upload_sealed(session)

    def _upload_sealed(self, session: UplinkSession) -> list[UploadOutcome]:
        outcomes: list[UploadOutcome] = []
        for batch in self.spool.batches(status=BatchStatus.SEALED):
            path = self.batcher.path_of(batch)
            if not path.exists():  # Batcher.recover rebuilds it on the next start
                raise TransportError(f"batch file {path} is missing; restart the agent")
            outcome = session.put_file(path, batch.file_name)
            crash_point("upload.put")
            self.spool.mark_uploaded(batch.sequence, at=self.clock())
            crash_point("upload.marked")
            if path.parent == self.batcher.outbox:
                durable_move(path, self.batcher.sent / batch.file_name)
            log.info("uplink: %s %s (%d bytes)", batch.file_name, outcome.status, outcome.bytes)
            outcomes.append(outcome)
            if self.on_upload is not None:
                self.on_upload(outcome)
        return outcomes


def connect(
    s: UplinkSettings,
    *,
    client_factory: Callable[[], paramiko.SSHClient] = paramiko.SSHClient,
) -> UplinkSession:
    """Open a session: pinned host key, this appliance's key only, every step timed out."""
    key = load_private_key(s.private_key)
    client = client_factory()
    sock: socket.socket | None = None
    try:
        _pin_host_key(client, s)
        if s.proxy is not None:
            sock = open_tunnel(s.proxy, s.host, s.port, timeout=s.connect_timeout_seconds)
        client.connect(
            s.host,
            sock=sock,
            port=s.port,
            username=s.username,
            pkey=key,
            look_for_keys=False,
            allow_agent=False,
            timeout=s.connect_timeout_seconds,
            banner_timeout=s.connect_timeout_seconds,
            auth_timeout=s.connect_timeout_seconds,
            channel_timeout=s.connect_timeout_seconds,
        )
        return UplinkSession(s, client)
    except BaseException as exc:
        client.close()
        if sock is not None:  # paramiko closes it only once a transport has taken it over
            sock.close()
        raise _transport_error(exc, s, key) from exc


def load_private_key(path: Path) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError as exc:
        raise TransportError(
            f"the uplink private key {path} does not exist: generate one "
            f"(ssh-keygen -t ed25519 -N '' -f {path}) and give its .pub to the data centre, "
            "or fix uplink.private_key"
        ) from exc
    except paramiko.PasswordRequiredException as exc:
        raise TransportError(
            f"the uplink private key {path} has a passphrase; the agent runs unattended, so "
            f"remove it (ssh-keygen -p -N '' -f {path})"
        ) from exc
    except (paramiko.SSHException, OSError, ValueError) as exc:
        raise TransportError(
            f"cannot read the uplink private key {path}: {exc}; use an OpenSSH ed25519, ECDSA "
            "or RSA key file"
        ) from exc


def _pin_host_key(client: paramiko.SSHClient, s: UplinkSettings) -> None:
    try:
        client.load_host_keys(str(s.known_hosts))
    except (OSError, paramiko.SSHException) as exc:
        raise HostKeyMismatch(
            f"cannot read the pinned host keys in {s.known_hosts}: {exc}; create it with the "
            "data centre's host key (confirm the fingerprint with them) or fix uplink.known_hosts"
        ) from exc
    name = host_key_name(s.host, s.port)
    if client.get_host_keys().lookup(name) is None:
        raise HostKeyMismatch(
            f"{s.known_hosts} pins no host key for {name}: add the data centre's key "
            f"(`ssh-keyscan -p {s.port} {s.host}`, then confirm its fingerprint with the data "
            "centre); the agent never trusts a key on first use"
        )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())


def _transport_error(exc: BaseException, s: UplinkSettings, key: paramiko.PKey) -> BaseException:
    where = f"{s.host}:{s.port}"
    if isinstance(exc, TransportError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyMismatch(
            f"the data centre {where} presented host key {exc.key.fingerprint}, but "
            f"{s.known_hosts} pins {exc.expected_key.fingerprint}. If the data centre has really "
            f"replaced its key (confirm the new fingerprint with them), replace the line for "
            f"{host_key_name(s.host, s.port)} in {s.known_hosts}; otherwise the connection may "
            "be intercepted"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        return TransportError(
            f"the data centre refused key {key.fingerprint} ({s.private_key}) for user "
            f"{s.username!r}: add its public key ({s.private_key}.pub) to that account at the "
            "data centre, or check uplink.username"
        )
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError | ConnectionRefusedError):
        return TransportError(
            f"cannot connect to the data centre at {where}: connection refused; check that "
            "uplink.host and uplink.port are right and that the landing server is up"
        )
    if isinstance(exc, socket.gaierror):
        return TransportError(f"cannot resolve uplink.host {s.host!r}: {exc.strerror}")
    if isinstance(exc, TimeoutError):
        return TransportError(
            f"the data centre at {where} did not answer within {s.connect_timeout_seconds:g} s; "
            "check the network path and any firewall between the appliance and the data centre"
        )
    if isinstance(exc, paramiko.SSHException | OSError | EOFError):
        return TransportError(f"SSH session with {where} failed: {exc or type(exc).__name__}")
    return exc


@contextmanager
def _sftp_errors(remote: str) -> Iterator[None]:
    """Map a failing SFTP step to a TransportError naming the remote file."""
    try:
        yield
    except TransportError:
        raise
    except TimeoutError as exc:
        raise TransportError(
            f"SFTP transfer of {remote} stalled past uplink.transfer_timeout_seconds"
        ) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
            raise TransportError(
                f"SFTP refused {remote}: {exc.strerror or exc}; check that uplink.remote_dir "
                "exists in the landing folder and that the account may write there"
            ) from exc
        raise TransportError(f"SFTP transfer of {remote} failed: {exc}") from exc
    except (paramiko.SSHException, EOFError) as exc:
        raise TransportError(
            f"SFTP transfer of {remote} failed: {exc or type(exc).__name__}"
        ) from exc
