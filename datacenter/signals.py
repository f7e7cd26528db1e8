"""Running a long-lived loop until SIGTERM or Ctrl-C: one way for every `datacenter` service.

``run_until_signalled(loop)`` sets up logging (journald under systemd, stderr otherwise, unless
the process configured it already), makes a stop event that SIGTERM and SIGINT set, and calls
``loop(stop)``. The loop finishes its current pass, sees the event and returns.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def run_until_signalled(loop: Callable[[threading.Event], None]) -> None:
    """Call ``loop(stop)``; SIGTERM or SIGINT sets ``stop``, which the loop checks between passes."""
    if not logging.getLogger().handlers:  # journald under systemd, stderr otherwise
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after this pass", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    loop(stop)
