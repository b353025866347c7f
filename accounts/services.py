"""Writes of the accounts domain: guest join (name + PIN) and claiming a
guest's account (docs/api.md, Auth). The game side of joining is
games.services.game_join, reused as is.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction

from accounts.models import GuestPass, User
from accounts.serializers import GUEST_USERNAME_PREFIX
from games import errors
from games.models import Game, GameParticipant, GameStatus
from games.services import game_join, game_lock_if_due, normalize_access_code


class WrongPin(errors.DomainError):
    """The name has a guest in this game and the PIN is not theirs."""

    code, status, default_message = (
        "INVALID_CREDENTIALS",
        401,
        "Wrong PIN for that name. If the name is not yours, pick another one.",
    )


class NameTaken(errors.DomainError):
    code, status, default_message = (
        "NAME_TAKEN",
        409,
        "Another player of this game already has that name. Pick another one.",
    )


class NotGuest(errors.DomainError):
    code, status, default_message = (
        "FORBIDDEN",
        403,
        "Only a guest can claim an account: you already have one.",
    )


@dataclass(frozen=True, slots=True)
class GuestJoin:
    user: User
    game: Game
    created: bool  # a new guest (201), or one signed back in (200)


def guest_name_key(display_name: str) -> str:
    """What makes two names the same name: case does not."""
    return display_name.casefold()


def guest_game_id(*, access_code: str) -> int:
    """The game a guest asks to join; InvalidCode for an unknown code."""
    game_id = (
        Game.objects.filter(access_code=normalize_access_code(access_code))
        .values_list("pk", flat=True)
        .first()
    )
    if game_id is None:
        raise errors.InvalidCode()
    return game_id


def guest_join(*, game_id: int, display_name: str, pin: str) -> GuestJoin:
    """Sign a guest in to a game by name and PIN, making them on first use.

    The name's guest, if any, must have this PIN (else WrongPin); a new name
    must not be any player's name in the game (NameTaken). The PIN is hashed
    and checked outside the game's row lock: the hash is slow on purpose, and
    a party's guests joining at once must not queue behind each other's.
    """
    name_key = guest_name_key(display_name)
    existing = GuestPass.objects.select_related("user").filter(game_id=game_id, name_key=name_key)
    guest = existing.first()
    if guest is not None:
        return _guest_return(guest, pin)
    pin_hash = make_password(pin)
    # A passed lock time turns the game LIVE first, as game_join does.
    game_lock_if_due(game_id=game_id)
    with transaction.atomic():
        # The game row lock serialises guest joins of one game: the name
        # check below and the guest it makes cannot interleave with another's.
        game = Game.objects.select_for_update().get(pk=game_id)
        guest = existing.first()
        if guest is not None:  # the same new name won a race just now
            return _guest_return(guest, pin)
        if game.status == GameStatus.COMPLETED:
            raise errors.GameNotJoinable("This game is over and cannot be joined.")
        if _name_held(game_id, name_key):
            raise NameTaken()
        user = _guest_user_create(display_name)
        GuestPass.objects.create(game=game, user=user, name_key=name_key, pin_hash=pin_hash)
        game = game_join(user=user, access_code=game.access_code)
    return GuestJoin(user=user, game=game, created=True)


def _guest_return(guest: GuestPass, pin: str) -> GuestJoin:
    """The same name and PIN again (another phone): back in, picks and all.
    A guest the host removed comes back as any player would by code."""
    if not guest.user.is_active or not check_password(pin, guest.pin_hash):
        raise WrongPin()
    game = game_join(user=guest.user, access_code=guest.game.access_code)
    return GuestJoin(user=guest.user, game=game, created=False)


def _name_held(game_id: int, name_key: str) -> bool:
    """Whether a player of the game (registered or guest) goes by this name.

    Compared in Python: casefold() is the rule the keys use, and the
    database's case-insensitive match is not the same (ß, ﬁ, …)."""
    names = GameParticipant.objects.filter(game_id=game_id).values_list(
        "user__display_name", "user__username"
    )
    return any(guest_name_key(shown or username) == name_key for shown, username in names)


def _guest_user_create(display_name: str) -> User:
    for _ in range(10):
        username = f"{GUEST_USERNAME_PREFIX}{secrets.token_hex(6)}"
        try:
            with transaction.atomic():
                # No password: a guest signs in by name and PIN (GuestPass).
                return User.objects.create_user(
                    username=username, password=None, display_name=display_name, is_guest=True
                )
        except IntegrityError:  # pragma: no cover - 16^12 names; draw again
            continue
    raise errors.DomainError("Could not allocate a guest username.")  # pragma: no cover


@transaction.atomic
def guest_claim(*, user: User, username: str, password: str, display_name: str | None) -> User:
    """Turn a guest into a full account: same user id, so their games and
    picks stay theirs. From now on they sign in by username and password;
    the name + PIN sign-in ends with the GuestPass. Raises NotGuest for a
    user who has an account already and IntegrityError if the username was
    taken meanwhile."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_guest:
        raise NotGuest()
    user.username = username
    user.set_password(password)
    user.is_guest = False
    fields = ["username", "password", "is_guest"]
    if display_name is not None:
        user.display_name = display_name
        fields.append("display_name")
    user.save(update_fields=fields)
    GuestPass.objects.filter(user=user).delete()
    return user
