"""What our server offers the application beyond ASGI (server/extension.py),
on the real daphne/autobahn classes: a send on a connection already closed
raises an OSError (not autobahn's own exception), and shutdown hooks run
before the connections drop."""

from __future__ import annotations

import ast
import inspect
from typing import Any

from server import extension
from server.extension import ClientGone
from tests.server.harness import Client, settle, start


def closing_application(outcome: list[Any]) -> Any:
    """Accepts, closes, then sends once more: what a consumer does when a
    group message reaches a socket whose client just left."""

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        try:
            await send({"type": "websocket.send", "text": "too late"})
        except Exception as error:
            outcome.append(error)
        else:
            outcome.append(None)

    return application


async def test_a_send_after_the_close_raises_an_oserror(monkeypatch):
    outcome: list[Any] = []
    server = start(monkeypatch, closing_application(outcome))
    Client(server).send_upgrade()
    await settle(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientGone)
    assert isinstance(outcome[0], OSError)


async def test_shutdown_hooks_run_before_the_connections_drop(monkeypatch):
    ran: list[str] = []

    async def hook() -> None:
        ran.append("closed the sockets")

    monkeypatch.setattr(extension, "_shutdown_hooks", [])
    extension.on_shutdown(hook)
    server = start(monkeypatch, closing_application([]))
    triggers = server.test_reactor.triggers["before"]["shutdown"]
    assert any(getattr(f, "__self__", None) is server for f, _, _ in triggers)
    waiting = server._before_shutdown()
    assert waiting is not None  # a Deferred the reactor waits on
    await settle()
    assert ran == ["closed the sockets"]
    assert waiting.called


def test_the_application_side_imports_neither_twisted_nor_autobahn():
    tree = ast.parse(inspect.getsource(extension))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not {module.split(".")[0] for module in modules if module} & {
        "twisted",
        "autobahn",
        "daphne",
    }
