"""Fast seeding for benchmarks: bulk inserts straight through the ORM.

Precondition: Django is set up against the benchmark stack's database. Users,
participants and picks are bulk-created (no password hashing, no per-row
services); the ceremony and the game still go through `games.services`, so
they are exactly what the product would have written.
"""

from __future__ import annotations

import datetime
import random
from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from games import services
from games.models import Category, GameParticipant, Pick

CATEGORIES = 24
NOMINEES = 5
USERNAME_PREFIX = "bench"
BATCH = 5000


@dataclass(frozen=True)
class SeededGame:
    game_id: int
    user_ids: list[int]  # every participant, host first
    # (category id, nomination ids) in ceremony order: the reveals to make.
    categories: list[tuple[int, list[int]]]


def users_ensure(count: int) -> list[int]:
    """Ids of `count` bench users, creating the missing ones (reused across modes)."""
    existing = list(
        User.objects.filter(username__startswith=USERNAME_PREFIX)
        .order_by("username")
        .values_list("pk", flat=True)[:count]
    )
    start = len(existing)
    if start < count:
        users = []
        for index in range(start, count):
            user = User(username=f"{USERNAME_PREFIX}{index:06d}", display_name=f"Player {index}")
            user.set_unusable_password()
            users.append(user)
        User.objects.bulk_create(users, batch_size=BATCH)
    return list(
        User.objects.filter(username__startswith=USERNAME_PREFIX)
        .order_by("username")
        .values_list("pk", flat=True)[:count]
    )


def ceremony_document(label: str, categories: int = CATEGORIES, nominees: int = NOMINEES) -> dict:
    """A ceremony of `categories` categories of `nominees` nominees (24 of 5 by
    default), as games.ceremony_file validates it."""
    return {
        "name": f"Bench ceremony {label}",
        "date": datetime.date(2026, 3, 1),
        "categories": [
            {
                "name": f"Category {c + 1}",
                "points": 1 + c % 5,
                "nominations": [
                    {"title": f"Nominee {c + 1}.{n + 1}", "subtitle": "", "imageUrl": None}
                    for n in range(nominees)
                ],
            }
            for c in range(categories)
        ],
    }


def game_seed(*, participants: int, players: int, label: str) -> SeededGame:
    """A LIVE game of `participants` users; the first `players` have picked every
    category (they are the leaderboard's rows), the rest have no picks."""
    user_ids = users_ensure(participants)
    host = User.objects.get(pk=user_ids[0])
    ceremony = services.ceremony_create(data=ceremony_document(label))
    game = services.game_create(host=host, ceremony_id=ceremony.pk, name=f"Bench {label}")
    categories = [
        (category.pk, [nom.pk for nom in category.nominations.order_by("order")])
        for category in Category.objects.filter(ceremony=ceremony).order_by("order")
    ]
    rng = random.Random(label)  # varied but reproducible scores
    with transaction.atomic():
        GameParticipant.objects.bulk_create(
            [GameParticipant(game=game, user_id=uid) for uid in user_ids[1:]], batch_size=BATCH
        )
        Pick.objects.bulk_create(
            [
                Pick(game=game, user_id=uid, category_id=cat_id, nomination_id=rng.choice(noms))
                for uid in user_ids[:players]
                for cat_id, noms in categories
            ],
            batch_size=BATCH,
        )
    # The bulk inserts bypass pick_submit, which keeps the participants' score
    # counters that the leaderboard reads: rebuild them from the picks.
    services.participant_scores_recompute(game_id=game.pk)
    # Locked before anyone connects, as during the show: every reveal then sends
    # exactly one frame per game, the leaderboard:update being measured.
    services.game_lock(game_id=game.pk, actor=host)
    return SeededGame(game_id=game.pk, user_ids=user_ids, categories=categories)


# --- many parties on one ceremony (bench/parties.py) ---------------------------------

STAFF_USERNAME = "partiesstaff"  # not "bench…": users_ensure counts those


@dataclass(frozen=True)
class SeededParties:
    ceremony_id: int
    # (category id, nomination ids) in ceremony order: the reveals to make.
    categories: list[tuple[int, list[int]]]
    # (game id, participant user ids, host first), one per party.
    games: list[tuple[int, list[int]]]
    staff_token: str  # DRF token of a staff user: `Authorization: Token …`


def staff_token_ensure() -> str:
    """The token of the bench's staff user (made once per database), who may
    reveal winners through the API as the show's staff does."""
    from rest_framework.authtoken.models import Token

    staff = User.objects.filter(username=STAFF_USERNAME).first()
    if staff is None:
        staff = User(username=STAFF_USERNAME, display_name="Bench staff", is_staff=True)
        staff.set_unusable_password()
        staff.save()
    elif not staff.is_staff:
        staff.is_staff = True
        staff.save(update_fields=["is_staff"])
    token, _ = Token.objects.get_or_create(user=staff)
    return token.key


def parties_seed(*, games: int, sockets_per_game: int, label: str) -> SeededParties:
    """`games` LIVE games on ONE new ceremony of 24 categories, each of
    `sockets_per_game` participants (distinct users; the first is the host)
    who all picked every category at random, plus a staff user's token.

    The ceremony and the games go through `games.services`; participants and
    picks are bulk inserts, after which each game's score counters are
    rebuilt and the game is locked (OPEN → LIVE) by its host, as before a
    show: every reveal then sends one leaderboard:update per game.
    """
    if games < 1 or sockets_per_game < 1:
        raise ValueError("games and sockets_per_game must be at least 1")
    user_ids = users_ensure(games * sockets_per_game)
    members = [
        user_ids[start : start + sockets_per_game]
        for start in range(0, games * sockets_per_game, sockets_per_game)
    ]
    hosts = User.objects.in_bulk([party[0] for party in members])
    ceremony = services.ceremony_create(data=ceremony_document(label))
    categories = [
        (category.pk, [nom.pk for nom in category.nominations.order_by("order")])
        for category in Category.objects.filter(ceremony=ceremony).order_by("order")
    ]
    game_ids = [
        services.game_create(
            host=hosts[party[0]], ceremony_id=ceremony.pk, name=f"Party {label}.{number}"
        ).pk
        for number, party in enumerate(members, start=1)
    ]
    rng = random.Random(label)  # varied but reproducible scores
    with transaction.atomic():
        # game_create made the host a participant already.
        GameParticipant.objects.bulk_create(
            [
                GameParticipant(game_id=game_id, user_id=uid)
                for game_id, party in zip(game_ids, members, strict=True)
                for uid in party[1:]
            ],
            batch_size=BATCH,
        )
        Pick.objects.bulk_create(
            [
                Pick(
                    game_id=game_id, user_id=uid, category_id=cat_id, nomination_id=rng.choice(noms)
                )
                for game_id, party in zip(game_ids, members, strict=True)
                for uid in party
                for cat_id, noms in categories
            ],
            batch_size=BATCH,
        )
    for game_id, party in zip(game_ids, members, strict=True):
        # As in game_seed: the bulk inserts bypassed the score counters.
        services.participant_scores_recompute(game_id=game_id)
        services.game_lock(game_id=game_id, actor=hosts[party[0]])
    return SeededParties(
        ceremony_id=ceremony.pk,
        categories=categories,
        games=list(zip(game_ids, members, strict=True)),
        staff_token=staff_token_ensure(),
    )
