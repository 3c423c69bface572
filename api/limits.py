"""Request-body limits, counted while the body streams in (``Content-Length`` is not trusted)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.errors import ServiceError, UploadTooLarge

UPLOAD_PATHS = ("/v1/datasets",)


class BodyLimit:
    """ASGI middleware: 413 once a body passes its limit (uploads have a larger one)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_upload = scope["path"].rstrip("/") in UPLOAD_PATHS
        limit = self.max_upload_bytes if is_upload else self.max_request_bytes
        what = "upload" if is_upload else "request body"
        variable = "REMOTEFIT_MAX_UPLOAD_BYTES" if is_upload else "REMOTEFIT_MAX_REQUEST_BYTES"
        received = 0

        def too_large(size: int) -> UploadTooLarge:
            hint = (
                " Upload large arrays as a dataset file (POST /v1/datasets) instead of inline."
                if not is_upload
                else ""
            )
            return UploadTooLarge(
                f"The {what} is {size}+ bytes, over this server's limit of {limit} bytes "
                f"({variable}).{hint}",
                limit=limit,
            )

        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_error(send, too_large(int(value)))
                return

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(received)
            return message

        await self.app(scope, counting_receive, send)


async def send_error(
    send: Send, error: ServiceError, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer with ``error`` straight from middleware, before any route has run."""
    import json

    body = json.dumps({"detail": error.detail()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
