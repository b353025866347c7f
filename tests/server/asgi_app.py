"""A small ASGI application for the server's tests (no Django): HTTP answers
one line; a WebSocket is accepted and obeys its text messages.

- `extension?`  -> "yes" if the prepared-send extension is on the scope, else "no"
- `prepared X`  -> X, written through the extension
- `plain X`     -> X, through `websocket.send`
- `close N`     -> closes the socket with code N
- anything else -> "len N", N its length in UTF-8 bytes
"""

from __future__ import annotations

from typing import Any

from server.extension import EXTENSION


def make_application(received: list[str] | None = None, scopes: list[dict] | None = None):
    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scopes is not None:
            scopes.append(scope)
        if scope["type"] == "http":
            while (await receive()).get("more_body"):
                pass
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"envelope server"})
            return
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        extension = scope.get("extensions", {}).get(EXTENSION)
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            text = event.get("text") or ""
            if received is not None:
                received.append(text)
            command, _, rest = text.partition(" ")
            if command == "extension?":
                await send({"type": "websocket.send", "text": "yes" if extension else "no"})
            elif command == "prepared":
                extension.send(extension.prepare(rest))
            elif command == "plain":
                await send({"type": "websocket.send", "text": rest})
            elif command == "close":
                await send({"type": "websocket.close", "code": int(rest)})
            else:
                size = len(text.encode("utf-8"))
                await send({"type": "websocket.send", "text": f"len {size}"})

    return application


application = make_application()
