"""The OpenAPI document says of every string what the request guard refuses in any of them.

``api.request_guard`` refuses a NUL character in every name, id and value (PostgreSQL cannot
store one). Left out of the schema, a client generating requests from ``/openapi.json`` (as
schemathesis does) reads strings with NUL as valid and gets a 422 for them; so each string of
a parameter or a body that the document does not already bound says so with a pattern.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

NO_NUL = "^[^\\x00]*$"
_BOUNDED = ("pattern", "enum", "const", "format")


def _bound(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "string" and not any(key in node for key in _BOUNDED):
            node["pattern"] = NO_NUL
        for value in node.values():
            _bound(value)
    elif isinstance(node, list):
        for value in node:
            _bound(value)


def install(app: FastAPI) -> None:
    """Add the pattern to the strings of ``app``'s parameters and request bodies."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()  # cached by FastAPI: the pattern is added once, in place
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _bound(operation.get("parameters", []))
                _bound(operation.get("requestBody", {}))
        _bound(schema.get("components", {}).get("schemas", {}))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
