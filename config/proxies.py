"""Whose forwarding headers count: only the proxies in TRUSTED_PROXIES.

Behind nginx every connection comes from the proxy, which says who the client
was in `X-Forwarded-For` and whether it spoke HTTPS in `X-Forwarded-Proto`.
Anyone can send those headers, so they are believed only when the connection
itself comes from a trusted proxy; from anyone else the peer address stands.
That address is what the rate limits count (accounts.limits), and the scheme
decides HTTPS redirects and secure cookies.

`daphne --proxy-headers` trusts every peer, so it is not used: this ASGI
middleware replaces it, for HTTP and WebSocket alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """'10.0.0.1', '10.0.0.0/8', '::1' → networks; a bad entry is a start-up error."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxyHeaders:
    """ASGI middleware: the client's address and scheme from a trusted
    proxy's headers, the connection's own otherwise."""

    # `__call__` returns the inner application's coroutine rather than being
    # one, so an idle socket keeps no frame of ours; this tells servers that
    # it is still a single-callable ASGI 3 application.
    _asgi_single_callable = True

    def __init__(self, app: Any, trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = parse_networks(trusted)

    def _is_trusted(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.trusted)

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            if client and self._is_trusted(client[0]):
                scope = self._forwarded(scope)
        return self.app(scope, receive, send)

    def _forwarded(self, scope: dict[str, Any]) -> dict[str, Any]:
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                forwarded_for.extend(value.decode("latin-1").split(","))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").split(",")[0].strip().lower()
        changes: dict[str, Any] = {}
        # Right to left: each trusted proxy appended the address it saw. The
        # first one no trusted proxy vouches for is the client (anything left
        # of it the client may have written itself).
        hops = [hop.strip() for hop in forwarded_for if hop.strip()]
        client_host = None
        for hop in reversed(hops):
            if _address(hop) is None:
                break
            client_host = str(_address(hop))
            if not self._is_trusted(hop):
                break
        if client_host is not None:
            changes["client"] = (client_host, 0)
        if proto in ("http", "https"):
            secure = proto == "https"
            if scope["type"] == "websocket":
                changes["scheme"] = "wss" if secure else "ws"
            else:
                changes["scheme"] = proto
        return {**scope, **changes} if changes else scope
