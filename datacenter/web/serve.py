"""The web console under gunicorn: what `datacenter serve` (``datacenter.commands.serve``) runs.

gunicorn runs in this process (a ``BaseApplication`` subclass), so the settings loaded and
checked here are the ones the workers use. Each worker builds its own app with
``create_app(settings)`` after the fork, so no database connection is shared between processes.
The store's schema is checked once before gunicorn starts: an empty or outdated store stops
the command with the fix (`datacenter init`), instead of every page failing.

gunicorn's control socket (``~/.gunicorn/gunicorn.ctl`` by default in gunicorn 27) is
disabled: instances on one machine would delete each other's, and nothing here uses it. The
access log and the error log both go to stderr, which systemd hands to journald.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from datacenter.settings import Settings
from datacenter.web import create_app, metrics

PROC_NAME = "datacenter-web"
WORKER_THREADS = 4
WORKER_TIMEOUT_SECONDS = 30
GRACEFUL_TIMEOUT_SECONDS = 20
KEEPALIVE_SECONDS = 5


class StderrLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with the access log on stderr rather than stdout."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if cfg.accesslog == "-":
            fmt = logging.Formatter(self.access_fmt)
            self._set_handler(self.access_log, "-", fmt, stream=sys.stderr)


class WebServer(BaseApplication):  # type: ignore[misc]
    """gunicorn running ``create_app(settings)`` in every worker."""

    def __init__(
        self, settings: Settings, *, options: dict[str, Any], app_config: dict[str, Any]
    ) -> None:
        self._settings = settings
        self._options = options
        self._app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self._settings, test_config=self._app_config)


def gunicorn_options(*, bind: str, workers: int) -> dict[str, Any]:
    """The gunicorn settings `datacenter serve` runs with."""
    return {
        "bind": [bind],
        "workers": workers,
        # Threads, so a request that waits (a failed login's delay, a slow report) does not
        # hold up every other user of the worker.
        "worker_class": "gthread",
        "threads": WORKER_THREADS,
        "proc_name": PROC_NAME,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "control_socket_disable": True,
        # gunicorn trusts X-Forwarded-Proto from loopback by default; the app decides instead,
        # with web.proxy_hops (werkzeug's ProxyFix), so one setting says whether to trust them.
        "forwarded_allow_ips": "",
        "accesslog": "-",
        "errorlog": "-",
        "logger_class": StderrLogger,
        "child_exit": metrics.child_exit,  # a dead worker's metrics files are marked
    }
