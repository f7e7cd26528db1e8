"""The OpenAPI 3.1 document of ``/api/v1``, written by hand beside the routes in api.py.

tests/integration/test_web_api.py checks that every ``/api/v1`` route is here and every path
here is a route, and validates real responses against these schemas: change both together.
"""

from __future__ import annotations

from typing import Any

from datacenter import __version__

_TEXT = {"type": "string"}
_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_CALL_PROPERTIES: dict[str, Any] = {
    "record_id": _TEXT, "start_utc": _TIME, "answer_utc": _NULL_TIME, "end_utc": _TIME,
    "direction": {"type": "string", "enum": ["in", "out", "internal", "tandem", "unknown"]},
    "calling": _TEXT, "called": _TEXT, "dialled_digits": _TEXT, "extension": _TEXT,
    "trunk": _TEXT, "ring_seconds": _INT, "talk_seconds": _INT, "hold_seconds": _INT,
    "answered": {"type": "boolean"}, "completion": _TEXT, "account_code": _TEXT,
    "person": _TEXT, "department": _TEXT, "cost_centre": _TEXT, "site": _TEXT,
    "cost": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/Cost"}]},
    "unrated_reason": {"type": ["string", "null"]},
}  # fmt: skip

_COST_PROPERTIES: dict[str, Any] = {
    "amount": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
               "description": "Exact decimal, in currency"},
    "currency": _TEXT, "destination": _TEXT, "number_class": _TEXT, "carrier": _TEXT,
    "billed_seconds": _INT, "e164": _TEXT, "tariff_version": _TEXT,
    "zero_reason": {"type": ["string", "null"]},
}  # fmt: skip

_ENTRY_PROPERTIES: dict[str, Any] = {
    "entry_id": _TEXT, "extension": _TEXT, "person": _TEXT, "email": _TEXT,
    "department": _TEXT, "cost_centre": _TEXT, "site": _TEXT,
    "valid_from": _TIME, "valid_to": _NULL_TIME,
    "source": {"type": "string", "enum": ["csv", "ldap", "manual"]},
}  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Call": _object(_CALL_PROPERTIES),
    "CallDetail": _object(
        {**_CALL_PROPERTIES, "flags": {"type": "array", "items": _TEXT}, "ingested_at": _TIME}
    ),
    "CallPage": _object(
        {
            "calls": {"type": "array", "items": _ref("Call")},
            "next_cursor": {"type": ["string", "null"]},
        }
    ),
    "CallResponse": _object({"call": _ref("CallDetail")}),
    "Cost": _object(_COST_PROPERTIES),
    "DirectoryEntry": _object(_ENTRY_PROPERTIES),
    "DirectoryList": _object({"entries": {"type": "array", "items": _ref("DirectoryEntry")}}),
    "Error": _object({"error": _object({"status": _INT, "title": _TEXT, "message": _TEXT})}),
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema)}}}  # fmt: skip


_ERRORS = {
    "400": _json("Error", "A parameter is wrong; the message names it."),
    "401": _json("Error", "No token, or an unknown or revoked one."),
    "403": _json("Error", "The token's owner has no tenant."),
}
_DAY = {"type": "string", "format": "date"}

PATHS: dict[str, Any] = {
    "/api/v1/calls": {"get": {
        "operationId": "listCalls",
        "summary": "Calls, newest first, a page at a time",
        "parameters": [
            _query("from", "First day (tenant's time zone), inclusive", _DAY),
            _query("to", "Last day (tenant's time zone), inclusive", _DAY),
            _query("direction", "in, out, internal, tandem or unknown", _TEXT),
            _query("extension", "Exact extension", _TEXT),
            _query("number", "Part of the calling, called or dialled number", _TEXT),
            _query("answered", "true or false", {"type": "string", "enum": ["true", "false"]}),
            _query("class", "Rated destination class (mobile, international, premium...)",
                   _TEXT),
            _query("carrier", "The carrier that rated the call", _TEXT),
            _query("cost_min", "Cost at least, in the call's currency (0.10)", _TEXT),
            _query("cost_max", "Cost at most, in the call's currency", _TEXT),
            _query("limit", "Calls per page, 1-500 (default 50)", _INT),
            _query("cursor", "next_cursor of the previous page", _TEXT),
        ],
        "responses": {"200": _json("CallPage", "One page of calls"), **_ERRORS},
    }},
    "/api/v1/calls/{record_id}": {"get": {
        "operationId": "getCall",
        "summary": "One call",
        "parameters": [{"name": "record_id", "in": "path", "required": True, "schema": _TEXT}],
        "responses": {
            "200": _json("CallResponse", "The call"),
            "404": _json("Error", "No such call in this tenant"),
            **_ERRORS,
        },
    }},
    "/api/v1/directory": {"get": {
        "operationId": "listDirectory",
        "summary": "Directory entries (who had which extension when)",
        "parameters": [
            _query("search", "Part of an extension, name, email, department, cost centre, site",
                   _TEXT),
            _query("department", "Exact department", _TEXT),
            _query("current", "true: only periods that have not ended",
                   {"type": "string", "enum": ["true", "false"]}),
        ],
        "responses": {"200": _json("DirectoryList", "Up to 1000 entries"), **_ERRORS},
    }},
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi",
        "summary": "This document",
        "security": [],
        "responses": {"200": {"description": "The OpenAPI document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }},
}  # fmt: skip


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callcollect data centre API",
            "version": __version__,
            "description": "A tenant's calls and directory. Authenticate with "
            "`Authorization: Bearer <token>`; make a token at /account/tokens.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
