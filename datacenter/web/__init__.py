"""The data centre's web console: a Flask app factory that gunicorn serves.

``create_app(settings)`` only wires things together: it binds the store (an engine that
connects lazily), registers the blueprints, CSRF protection, error pages and security headers.
It never migrates the store and never touches the network: `datacenter init` migrates, and
`datacenter serve` checks the schema before gunicorn starts.

Session cookie: signed with the secret in ``web.secret_key_file`` (generated on first use;
there is no default secret), HttpOnly, SameSite=Lax, and Secure unless the caller turns it off
for a plain-HTTP demo (``SESSION_COOKIE_SECURE`` in ``test_config``, or
``datacenter serve --insecure-cookies``). Browsers count http://127.0.0.1 as secure, so a
loopback demo works with the flag on. Pages and what they show: docs/web.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from datacenter.settings import Settings, load_secret_key, load_settings
from datacenter.web import (
    account,
    admin,
    api,
    auth,
    cost_alarms,
    directory,
    errors,
    exports,
    headers,
    metrics,
    portal,
    recordings,
    reports,
    saved_reports,
    tech,
    tenants,
    tokens,
)
from datacenter.web.database import store, web_engine
from datacenter.web.display import JINJA_FILTERS
from datacenter.web.rating_text import JINJA_FILTERS as RATING_FILTERS

__all__ = ["create_app"]

SESSION_LIFETIME = timedelta(hours=12)  # replaced by web.session_lifetime_hours
SESSION_COOKIE_NAME = "callcollect_session"
# Form tokens live as long as the longest session: a form left open over lunch still submits.
CSRF_TIME_LIMIT_SECONDS = 168 * 3600
DEFAULTS: Mapping[str, Any] = {
    "SESSION_COOKIE_NAME": SESSION_COOKIE_NAME,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": True,
    "PERMANENT_SESSION_LIFETIME": SESSION_LIFETIME,
    "WTF_CSRF_TIME_LIMIT": CSRF_TIME_LIMIT_SECONDS,
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # forms only; nothing large is ever posted
    "TEMPLATES_AUTO_RELOAD": False,
}

csrf = CSRFProtect()


def create_app(
    settings: Settings | None = None, *, test_config: Mapping[str, Any] | None = None
) -> Flask:
    """The WSGI app for ``settings`` (default: ``load_settings()``, i.e. $CALLCOLLECT_DC_CONFIG).

    ``test_config`` overrides Flask settings (tests, or ``SESSION_COOKIE_SECURE=False`` for a
    plain-HTTP demo); a ``SECRET_KEY`` there replaces the one from ``web.secret_key_file``.
    """
    settings = settings if settings is not None else load_settings()
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    if test_config is not None:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(settings.web.secret_key_file)
    app.config["CALLCOLLECT_SETTINGS"] = settings
    # The cookie lives as long as the longest session may; the store decides when it ends.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.web.session_lifetime_hours)

    read_url = settings.store.read_url
    store.init_app(app, web_engine(settings.store.url), web_engine(read_url) if read_url else None)
    csrf.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    app.jinja_env.filters.update(JINJA_FILTERS)
    app.jinja_env.filters.update(RATING_FILTERS)
    app.register_blueprint(auth.bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(saved_reports.bp)
    app.register_blueprint(recordings.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(tech.bp)
    app.register_blueprint(directory.bp)
    app.register_blueprint(tokens.bp)
    csrf.exempt(api.bp)  # bearer tokens, not cookies: nothing for another site to forge
    app.register_blueprint(api.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(tenants.bp)
    app.register_blueprint(cost_alarms.bp)
    metrics.init_app(app)
    _trust_proxies(app, settings)
    return app


def _trust_proxies(app: Flask, settings: Settings) -> None:
    """Behind ``web.proxy_hops`` reverse proxies, take the client's address and scheme from
    the X-Forwarded-For / -Proto they set (never X-Forwarded-Host: the recommended nginx
    passes a client's own through). Directly connected, those headers are ignored."""
    hops = settings.web.proxy_hops
    if hops == 0:
        return
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if settings.metrics.token_file is None:
        app.logger.warning(
            "web.proxy_hops is %d and metrics.token_file is not set: /metrics refuses every "
            "request (behind a proxy every client looks local); set metrics.token_file",
            hops,
        )
