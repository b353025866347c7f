"""server/autobahn_debug.py: a connection pays for autobahn's debug
formatting only when autobahn's debug log is on."""

from __future__ import annotations

import pprint

import pytest
import txaio

from tests.server.asgi_app import make_application
from tests.server.harness import Client, start


@pytest.fixture
def pformat_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every value pretty-printed, by whoever calls pprint."""
    calls: list[object] = []
    real_pformat = pprint.PrettyPrinter.pformat

    def counting_pformat(self: pprint.PrettyPrinter, value: object) -> str:
        calls.append(value)
        return real_pformat(self, value)

    monkeypatch.setattr(pprint.PrettyPrinter, "pformat", counting_pformat)
    return calls


@pytest.fixture
def autobahn_debug_log():
    txaio.set_global_log_level("debug")
    yield
    txaio.set_global_log_level("info")


async def test_a_connection_formats_nothing_while_debug_is_off(monkeypatch, pformat_calls):
    server = start(monkeypatch, make_application())
    await Client(server).upgrade()
    assert pformat_calls == []


async def test_with_autobahns_debug_log_on_the_options_are_formatted(
    monkeypatch, pformat_calls, autobahn_debug_log
):
    server = start(monkeypatch, make_application())
    await Client(server).upgrade()
    formatted_options = [value for value in pformat_calls if isinstance(value, list)]
    assert formatted_options, pformat_calls
    assert any(option[0] == "autoPingTimeout" for option in formatted_options[0])


@pytest.fixture
def colour_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text autobahn colours (hltype, hlval) for a log line."""
    import click

    calls: list[str] = []
    real_style = click.style

    def counting_style(text: str, *args: object, **kwargs: object) -> str:
        calls.append(text)
        return real_style(text, *args, **kwargs)

    monkeypatch.setattr(click, "style", counting_style)
    return calls


async def test_a_connection_colours_no_names_while_debug_is_off(monkeypatch, colour_calls):
    server = start(monkeypatch, make_application())
    await Client(server).upgrade()
    assert colour_calls == []


async def test_with_autobahns_debug_log_on_names_are_coloured(
    monkeypatch, colour_calls, autobahn_debug_log
):
    server = start(monkeypatch, make_application())
    await Client(server).upgrade()
    assert any("connectionMade" in text for text in colour_calls), colour_calls
