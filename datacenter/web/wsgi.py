"""The WSGI entry point for running gunicorn directly.

    CALLCOLLECT_DC_CONFIG=/etc/callcollect/datacenter.toml \\
        gunicorn --no-control-socket --bind 127.0.0.1:8080 datacenter.web.wsgi:app

Settings come from ``$CALLCOLLECT_DC_CONFIG`` (and ``CALLCOLLECT_DC_*`` overrides).
`datacenter serve` does the same with the settings' bind and workers, and checks the store's
schema first; prefer it.
"""

from __future__ import annotations

from datacenter.web import create_app

app = create_app()
