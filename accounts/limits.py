"""Rate limits on the doors an attacker knocks at: sign-in (API and admin),
registration, join by code and guest join, each per client address and per
account (a guest's account is its name in its game).

Counted by django-ratelimit in Django's cache, which is Redis when REDIS_URL
is set, so every server process shares the counts (its `add` + `incr` are
atomic there). Two kinds of count:

- failures: only a wrong password or a wrong code counts. A party of phones
  shares one Wi-Fi address, and its own sign-ins must not lock it out.
- attempts: every request counts (registration, where there is no failure
  an attacker could not avoid).

While any counter of a door is at its limit, the door is shut, even for the
right password. The client address is REMOTE_ADDR: config.proxies sets it
from X-Forwarded-For only for a proxy listed in TRUSTED_PROXIES.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework import exceptions


@dataclass(frozen=True, slots=True)
class Limit:
    """`ENVELOPE_<limit_setting>` counts per `ENVELOPE_<window_setting>` seconds."""

    group: str
    limit_setting: str
    window_setting: str = "ENVELOPE_FAILURE_WINDOW"

    @property
    def limit(self) -> int:
        return int(getattr(settings, self.limit_setting))

    @property
    def rate(self) -> str:
        return f"{self.limit}/{int(getattr(settings, self.window_setting))}s"


# Per username: a guessed password. Per address: higher, since a whole party
# shares one address and one guest's typos must not lock everyone out.
SIGN_IN_BY_ACCOUNT = Limit("sign-in:account", "ENVELOPE_LOGIN_FAILURE_LIMIT")
SIGN_IN_BY_ADDRESS = Limit("sign-in:address", "ENVELOPE_LOGIN_IP_FAILURE_LIMIT")
REGISTER_BY_ADDRESS = Limit("register:address", "ENVELOPE_REGISTER_IP_LIMIT")
REGISTER_BY_ACCOUNT = Limit("register:account", "ENVELOPE_REGISTER_LIMIT")
JOIN_BY_ACCOUNT = Limit("join:account", "ENVELOPE_JOIN_FAILURE_LIMIT")
JOIN_BY_ADDRESS = Limit("join:address", "ENVELOPE_JOIN_IP_FAILURE_LIMIT")
# Guest join (name + PIN). Wrong PINs per (game, name): a 4-digit PIN falls to
# 10,000 guesses, so this is what keeps it a secret. Per address: failures
# like sign-in, and guests made (attempts): each one is a new account.
GUEST_PIN_BY_NAME = Limit("guest-pin:name", "ENVELOPE_GUEST_PIN_FAILURE_LIMIT")
GUEST_PIN_BY_ADDRESS = Limit("guest-pin:address", "ENVELOPE_GUEST_PIN_IP_FAILURE_LIMIT")
GUEST_CREATE_BY_ADDRESS = Limit("guest-create:address", "ENVELOPE_GUEST_IP_LIMIT")


@dataclass(frozen=True, slots=True)
class Counter:
    """One limit applied to one identity (an address, a username, a user id)."""

    limit: Limit
    identity: str

    def usage(self, request: HttpRequest, *, increment: bool) -> dict[str, int]:
        # Hashed: identities are user input of any length and alphabet.
        value = hashlib.sha256(self.identity.encode("utf-8", "surrogatepass")).hexdigest()
        usage = get_usage(
            request,
            group=self.limit.group,
            key=lambda _group, _request: value,
            rate=self.limit.rate,
            increment=increment,
        )
        # None only when RATELIMIT_ENABLE is off.
        return usage or {"count": 0, "time_left": 0}


def client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR") or "unknown"


def account_key(username: str) -> str:
    # Casefolded: case variants of a username must not buy extra tries.
    return username.casefold()


def sign_in_counters(request: HttpRequest, username: str) -> list[Counter]:
    """The API's sign-in and the admin login count together: one password."""
    return [
        Counter(SIGN_IN_BY_ACCOUNT, account_key(username)),
        Counter(SIGN_IN_BY_ADDRESS, client_address(request)),
    ]


class GuestAddressCounters(NamedTuple):
    """Every door of a guest join keyed by the address."""

    wrong_pins: Counter
    guests_made: Counter
    wrong_codes: Counter  # join by code's own counter: one door for codes


def guest_address_counters(request: HttpRequest) -> GuestAddressCounters:
    address = client_address(request)
    return GuestAddressCounters(
        wrong_pins=Counter(GUEST_PIN_BY_ADDRESS, address),
        guests_made=Counter(GUEST_CREATE_BY_ADDRESS, address),
        wrong_codes=Counter(JOIN_BY_ADDRESS, address),
    )


def guest_name_counter(game_id: int, name_key: str) -> Counter:
    """Wrong PINs for one guest name of one game, from any address."""
    return Counter(GUEST_PIN_BY_NAME, f"{game_id}:{name_key}")


def seconds_blocked(request: HttpRequest, counters: Iterable[Counter]) -> int | None:
    """Seconds until the door opens again, or None if no counter is at its
    limit. Counts nothing."""
    waits = []
    for counter in counters:
        usage = counter.usage(request, increment=False)
        if usage["count"] >= counter.limit.limit:
            waits.append(max(1, usage["time_left"]))
    return max(waits) if waits else None


def require_open(request: HttpRequest, counters: Iterable[Counter], detail: str) -> None:
    """For API views: 429 RATE_LIMITED, with Retry-After, while shut."""
    wait = seconds_blocked(request, counters)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail=detail)


def count(request: HttpRequest, counters: Iterable[Counter]) -> None:
    """One more failure (or attempt) on each counter."""
    for counter in counters:
        counter.usage(request, increment=True)
