"""What the agent does for systemd: readiness and watchdog notifications, journald logging.

Contract:

- ``Notifier`` speaks the ``sd_notify`` protocol through systemd-python
  (``systemd.daemon.notify``) to the socket in ``$NOTIFY_SOCKET``. Without that variable (not
  under systemd, or a unit without ``Type=notify``/``NotifyAccess``) every call is a no-op, and
  so it is when systemd-python is not installed (a developer's machine): the agent never fails
  for want of systemd.
- The service sends ``READY=1`` once its sources are started, ``WATCHDOG=1`` from every pass of
  the supervisor loop (the unit's ``WatchdogSec=`` must exceed ``uplink.interval_seconds``, the
  longest the loop sleeps), ``STATUS=...`` with a one-line summary, and ``STOPPING=1`` at shutdown.
- ``under_systemd(env)`` is True when systemd started the process (``$INVOCATION_ID``, or
  ``$JOURNAL_STREAM`` naming the stream stderr is connected to). ``configure_logging`` then logs
  to the journal through ``systemd.journal.JournalHandler`` (structured: the logger name and
  level are fields, journalctl -u shows them); otherwise to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"  # the journal adds time, level and unit itself
SYSLOG_IDENTIFIER = "edge-agent"

SendNotify = Callable[[str], bool]


def _systemd_notify() -> SendNotify | None:
    try:
        from systemd import daemon
    except ImportError:
        return None

    def send(state: str) -> bool:
        return bool(daemon.notify(state))

    return send


class Notifier:
    """``sd_notify`` messages, or nothing when not under a notify-type unit."""

    def __init__(
        self, *, env: Mapping[str, str] | None = None, send: SendNotify | None = None
    ) -> None:
        environ = os.environ if env is None else env
        self.enabled = bool(environ.get("NOTIFY_SOCKET"))
        self._send = send if send is not None else (_systemd_notify() if self.enabled else None)
        if self.enabled and self._send is None:
            log.warning("NOTIFY_SOCKET is set but systemd-python is not installed: "
                        "systemd will not see the agent become ready")  # fmt: skip
            self.enabled = False

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one message; False when disabled or the socket refused it."""
        if not self.enabled or self._send is None:
            return False
        # A newline inside a STATUS would start another assignment: keep each to one line.
        message = "\n".join(line.replace("\n", " ") for line in lines)
        try:
            return self._send(message)
        except OSError as exc:  # systemd gone or restarting: the agent carries on
            log.debug("sd_notify failed: %s", exc)
            return False

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def watchdog(self, status: str | None = None) -> bool:
        return self.notify("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")


def under_systemd(env: Mapping[str, str] | None = None) -> bool:
    """True when systemd started this process (so stderr goes to the journal anyway)."""
    environ = os.environ if env is None else env
    if environ.get("INVOCATION_ID"):
        return True
    stream = environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def configure_logging(level: str, *, env: Mapping[str, str] | None = None) -> str:
    """Log to the journal under systemd, to stderr otherwise; returns ``journal``/``stderr``."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    handler: logging.Handler | None = None
    where = "stderr"
    if under_systemd(env):
        try:
            from systemd.journal import JournalHandler
        except ImportError:
            handler = None
        else:
            handler = JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
            handler.setFormatter(logging.Formatter(JOURNAL_FORMAT))
            where = "journal"
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    return where
