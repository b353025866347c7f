"""Request bodies over MAX_REQUEST_BODY_BYTES (1 MiB) get 413
PAYLOAD_TOO_LARGE, before Django reads them.

Django spools any body to a temporary file whatever its size, and only some
of its readers check DATA_UPLOAD_MAX_MEMORY_SIZE (DRF's JSON parser reads
the stream past it). This ASGI middleware answers a declared Content-Length
over the limit at once, and counts the bytes of a body sent without one
(chunked), holding at most the limit in memory.
"""

from __future__ import annotations

from typing import Any

from config.errors import error_body
from config.parsers import PayloadTooLarge
from games.formatting import json_text

MESSAGE = str(PayloadTooLarge.default_detail)


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value
    return None


async def payload_too_large(scope: dict[str, Any], send: Any) -> None:
    """The contract's error body for /api/, a short text for pages."""
    if scope.get("path", "").startswith("/api/"):
        body = json_text(error_body("PAYLOAD_TOO_LARGE", MESSAGE)).encode()
        content_type = b"application/json"
    else:
        body = MESSAGE.encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the client must not reuse
                # the connection for another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = False  # the server refuses a malformed length itself
            if too_large:
                await payload_too_large(scope, send)
                return
            # The server reads exactly the declared length, no more.
            await self.app(scope, receive, send)
            return
        # No declared length: read the body here, up to the limit, then hand
        # the same messages on.
        messages: list[dict[str, Any]] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await payload_too_large(scope, send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def receive_replayed() -> dict[str, Any]:
            message = next(replay, None)
            return message if message is not None else await receive()

        await self.app(scope, receive_replayed, send)
