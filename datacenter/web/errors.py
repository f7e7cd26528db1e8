"""Error pages: HTML for people, JSON under ``/api/``, and never a stack trace.

Every HTTP error (and any unhandled exception, which Flask logs and turns into a 500) is answered
with a short page naming what happened and what to do. Paths under ``/api/`` get
``{"error": {"status": 404, "title": "Not Found", "message": "..."}}`` instead. The exception
itself goes to the log only; its text is never shown, because it can carry SQL, paths or data of
another tenant.
"""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

API_PREFIX = "/api/"

# What a person is told, per status; anything else gets the status's standard description.
_MESSAGES: dict[int, str] = {
    400: "The request could not be understood. Go back, reload the page and try again.",
    401: "Sign in first; the API needs an 'Authorization: Bearer' header with a live token.",
    403: "Your account does not have access to this page.",
    404: "There is nothing at this address, or it belongs to another account.",
    405: "This page cannot be used that way.",
    500: "Something went wrong on our side. It has been logged; please try again in a minute.",
}
_CSRF_MESSAGE = (
    "The form had expired or did not come from this site. Reload the page and submit it again."
)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _handle_csrf)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(InternalServerError, _handle_http)


def _handle_csrf(exc: CSRFError) -> Response:
    return _respond(400, "Bad Request", _CSRF_MESSAGE)


def _handle_http(exc: HTTPException) -> Response:
    if exc.code is None:  # a RoutingException such as a redirect: let it through
        return exc.get_response()
    code = exc.code
    response = _respond(code, exc.name, _MESSAGES.get(code, "The request could not be completed."))
    # Keep headers the status needs (Allow on 405, WWW-Authenticate on 401), not the body type.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _respond(code: int, title: str, message: str) -> Response:
    if request.path.startswith(API_PREFIX):
        response = jsonify(error={"status": code, "title": title, "message": message})
    else:
        page = render_template("errors/error.html", code=code, title=title, message=message)
        response = make_response(page)
    response.status_code = code
    return response
