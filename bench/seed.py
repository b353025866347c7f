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
