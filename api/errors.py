"""One place that turns every error into ``{"detail": {"code", "message", ...}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from models.errors import ServiceError

log = logging.getLogger(__name__)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_message(errors: list[dict[str, Any]]) -> str:
    """Pydantic errors as sentences: where, what was wrong, and the value received."""
    sentences = []
    for error in errors[:10]:
        where = _location(tuple(error.get("loc", ())))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "missing":
            sentences.append(f"`{where}` is required.")
        elif error.get("type") == "extra_forbidden":
            sentences.append(f"`{where}` is not a known field; remove it or check its spelling.")
        elif error.get("type") in ("value_error", "assertion_error"):
            sentences.append(f"`{where}`: {message}")
        else:
            received = _preview(error.get("input"))
            sentences.append(f"`{where}`: {message}. Received: {received}.")
    if len(errors) > 10:
        sentences.append(f"({len(errors) - 10} more problems not shown.)")
    return " ".join(sentences)


def _json(status: int, detail: dict[str, Any]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        return _json(error.status_code, error.detail())

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": _location(tuple(e.get("loc", ()))), "msg": e.get("msg"), "type": e.get("type")}
            for e in error.errors()
        ]
        return _json(
            422,
            {
                "code": "invalid_request",
                "message": validation_message(list(error.errors())),
                "errors": errors[:50],
            },
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        # FastAPI turns any failure while reading the body into a bare 400 "error parsing the
        # body": a body over the limit (raised by BodyLimit as it streams in) or JSON nested
        # deeper than json.loads can go. Answer those as themselves.
        if isinstance(error.__cause__, ServiceError):
            return await service_error(request, error.__cause__)
        if isinstance(error.__cause__, RecursionError):
            return await too_deep(request, error.__cause__)
        return _json(
            error.status_code, {"code": f"http_{error.status_code}", "message": str(error.detail)}
        )

    @app.exception_handler(RecursionError)
    async def too_deep(_: Request, __: RecursionError) -> JSONResponse:
        return _json(
            422,
            {
                "code": "limit_exceeded",
                "message": "The request JSON is nested too deeply to read; Keras never writes "
                "configs that deep. Send model.to_json() as Keras wrote it.",
            },
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json(
            500,
            {
                "code": "internal_error",
                "message": "The server failed unexpectedly; this is a bug in remotefit, not in "
                f"your request. Error type: {type(error).__name__}.",
            },
        )
