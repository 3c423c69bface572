"""Values no route can store or compute with, refused for every route before any of them runs.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity``, which are not JSON (RFC 8259):
they would reach Keras as a loss weight or an inline array, and PostgreSQL refuses them in a JSON
column. PostgreSQL also refuses NUL characters in any text, so a ``\\u0000`` in a job's name or a
``%00`` in an id would end as a 500 on one stack and be stored on the other. Both are answered
here, once, with a 422 naming where they were found.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.limits import send_error
from models.errors import InvalidRequest, ServiceError

# Either may stand inside a string too; only then is the body parsed to see where it is.
_SUSPECT = (b"NaN", b"Infinity", b"\\u0000")
# A body up to this size is checked on the event loop: a thread costs more than its parse.
_ON_THE_LOOP = 256 * 1024


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(
        f"The request JSON holds `{name}`, which is not a JSON number (RFC 8259) and cannot "
        "be trained on or stored. Send finite numbers only: replace it, or drop the samples "
        f"that hold it. Received: {name}.",
        received=name,
    )


def _path_with_nul(value: Any, where: str = "body") -> str | None:
    """The location of the first string (or key) holding a NUL character, if any."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if isinstance(value, list):
        for index, item in enumerate(value):
            if found := _path_with_nul(item, f"{where}[{index}]"):
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{where} (a key)"
            if found := _path_with_nul(item, f"{where}.{key}"):
                return found
    return None


def check_json(body: bytes) -> None:
    """Refuse ``NaN``/``Infinity`` and NUL characters anywhere in a JSON body.

    Raises:
        InvalidRequest: the body holds one; malformed JSON is left to the route to answer.
    """
    if not any(suspect in body for suspect in _SUSPECT):
        return
    try:
        parsed = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return  # not JSON at all: the route answers that in its own words
    where = _path_with_nul(parsed)
    if where is not None:
        raise InvalidRequest(
            f"`{where}` holds a NUL character (\\u0000), which no name, id or value may "
            "contain. Remove it from the string.",
            field=where,
        )


def check_url(scope: Scope) -> None:
    """Refuse a NUL character in the path or the query string (``%00`` once decoded)."""
    for where, raw in (
        ("the URL path", scope.get("raw_path") or scope["path"].encode()),
        ("the query string", scope.get("query_string", b"")),
    ):
        if b"\x00" in unquote_to_bytes(raw):
            raise InvalidRequest(
                f"{where[0].upper()}{where[1:]} holds a NUL character (%00), which no id, name or "
                f"parameter may contain. Remove it. Received: {raw.decode('latin-1')[:200]!r}.",
                field=where,
            )


class RequestGuard:
    """ASGI middleware: checks the URL of every request and the whole body of a JSON one.

    A JSON body is bounded (``BodyLimit``, outside this one) and read whole by the route anyway;
    here it is read first, checked, and handed on unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope)
        except InvalidRequest as error:
            await send_error(send, error)
            return
        headers = dict(scope.get("headers", []))
        if not headers.get(b"content-type", b"").lower().startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        chunks = []
        message: Message = {"type": "http.request", "more_body": True}
        try:
            while message.get("more_body", False):
                message = await receive()  # BodyLimit's receive: over the limit it raises
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
            body = b"".join(chunks)
            if len(body) > _ON_THE_LOOP:
                await run_in_threadpool(check_json, body)  # parsing megabytes would hold it up
            else:
                check_json(body)
        except ServiceError as error:
            await send_error(send, error)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
