"""`manage.py demo`: a ready-to-try Oscars party (README, Configuration).

Safe to run again, and always leaves a night that can be played: the users
are reused, and so are the ceremony and game while picks are still open
(only missing picks are added, so a demo in progress is not reset). Once the
demo ceremony has begun (a winner is revealed) or its game is locked, a run
sets up a fresh copy of the ceremony, "… · demo night 2" (3, …), with a new
game on it; earlier nights are kept as they are.
"""

from __future__ import annotations

import itertools
import random
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from games import selectors, services
from games.ceremony_file import parse_ceremony
from games.errors import DomainError
from games.models import PICKABLE_STATUSES, Category, Ceremony, Game, GameStatus, Pick
from games.selectors import CeremonyStage

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "97th-academy-awards.json"
GAME_NAME = "Oscars Night Demo"
HOST_USERNAME = "host"
HOST_PASSWORD = "envelope-host"
PLAYER_PASSWORD = "envelope-player"
PLAYER_NAMES = [
    "Ava",
    "Mateo",
    "Zoë",
    "Priya",
    "Kenji",
    "Olu",
    "Sofía",
    "Liam",
    "Grace",
    "Björn",
    "Amara",
    "Noah",
]
# A fixed seed: every run (and every machine) gets the same demo picks.
PICK_SEED = 97


class Command(BaseCommand):
    help = (
        "Create a demo party: the 97th Academy Awards ceremony, a staff host "
        f"({HOST_USERNAME} / {HOST_PASSWORD}), {len(PLAYER_NAMES)} players "
        f"(player1.. / {PLAYER_PASSWORD}) with complete picks and the game "
        f"{GAME_NAME!r}; then print the URLs and logins. Reuses what exists."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the server runs, for the printed URLs (default %(default)s)",
        )

    @transaction.atomic  # one commit (fast on SQLite); a failed run leaves nothing behind
    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        usernames = [HOST_USERNAME, *(f"player{n}" for n in range(1, len(PLAYER_NAMES) + 1))]
        reused = list(
            User.objects.filter(username__in=usernames).values_list("username", flat=True)
        )
        if reused:
            self.stderr.write(f"Reusing existing users (passwords unchanged): {', '.join(reused)}")
        host = _user(HOST_USERNAME, "Host", make_password(HOST_PASSWORD), staff=True)
        # Hashed once: twelve slow hashes of the same demo password buy nothing.
        player_hash = make_password(PLAYER_PASSWORD)
        players = [
            _user(f"player{number}", name, player_hash)
            for number, name in enumerate(PLAYER_NAMES, start=1)
        ]
        game = self._playable_night(host)
        everyone = [host, *players]
        for user in players:
            self._join(game, user)
        self._pick(game, everyone)
        game.refresh_from_db()
        self._print(base_url.rstrip("/"), game)

    def _playable_night(self, host: User) -> Game:
        """The demo ceremony and game where picks are still open: the newest
        demo night not yet begun, else a fresh one."""
        data = parse_ceremony(FIXTURE.read_bytes())
        for night in itertools.count(1):
            name = data["name"] if night == 1 else f"{data['name']} · demo night {night}"
            ceremony = Ceremony.objects.filter(name=name, date=data["date"]).first()
            if ceremony is None:
                ceremony = services.ceremony_create(data={**data, "name": name})
                self.stderr.write(f"Imported ceremony {ceremony.name!r} (id {ceremony.pk}).")
                return self._new_game(ceremony, host)
            progress = selectors.ceremony_progress(ceremony_id=ceremony.pk)
            if progress.stage != CeremonyStage.UPCOMING:
                self.stderr.write(
                    f"Ceremony {name!r} has begun ({progress.revealed_count} of "
                    f"{progress.category_count} revealed): kept as it is."
                )
                continue
            game = Game.objects.filter(ceremony=ceremony, host=host, name=GAME_NAME).first()
            if game is None:
                self.stderr.write(f"Reusing ceremony {ceremony.name!r} (id {ceremony.pk}).")
                return self._new_game(ceremony, host)
            game = services.game_lock_if_due(game_id=game.pk, game=game)
            if game.status in PICKABLE_STATUSES:
                self.stderr.write(f"Reusing game {game.name!r} (id {game.pk}, {game.status}).")
                return game
            self.stderr.write(f"Game {game.name!r} (id {game.pk}) is {game.status}: kept as it is.")
        raise AssertionError("unreachable: itertools.count never ends")  # pragma: no cover

    def _new_game(self, ceremony: Ceremony, host: User) -> Game:
        game = services.game_create(host=host, ceremony_id=ceremony.pk, name=GAME_NAME)
        self.stderr.write(f"Created game {game.name!r} (id {game.pk}).")
        return game

    def _join(self, game: Game, user: User) -> None:
        try:
            services.game_join(user=user, access_code=game.access_code)
        except DomainError as exc:
            # A finished demo game cannot be joined; report it, keep the rest.
            self.stderr.write(f"{user.username} could not join: {exc.message}")

    def _pick(self, game: Game, users: list[User]) -> None:
        """Seeded random picks for every category a user has not picked yet."""
        game.refresh_from_db()
        if game.status not in PICKABLE_STATUSES:
            self.stderr.write(f"Picks are locked ({game.status}); existing picks kept.")
            return
        categories = list(
            Category.objects.filter(ceremony=game.ceremony).prefetch_related("nominations")
        )
        rng = random.Random(PICK_SEED)
        for user in users:
            picked = set(
                Pick.objects.filter(game=game, user=user).values_list("category_id", flat=True)
            )
            for category in categories:
                # Draw even for picked categories, so each user's choices stay stable.
                nomination = rng.choice(list(category.nominations.all()))
                if category.pk in picked:
                    continue
                try:
                    services.pick_submit(
                        game_id=game.pk,
                        user=user,
                        category_id=category.pk,
                        nomination_id=nomination.pk,
                    )
                except DomainError as exc:
                    raise CommandError(
                        f"Could not pick for {user.username}: {exc.message}"
                    ) from exc

    def _print(self, base: str, game: Game) -> None:
        lines = [
            f"Envelope demo: {game.name} ({game.ceremony.name}), status {game.status}",
            "",
            f"  Home:         {base}/",
            f"  Live board:   {base}/games/{game.pk}/live",
            f"  TV board:     {base}/games/{game.pk}/live?tv=1",
            f"  Picks:        {base}/games/{game.pk}/picks",
            f"  Host page:    {base}/games/{game.pk}/host",
            f"  Join link:    {base}/join/{game.access_code}",
            f"  Admin:        {base}/admin/",
            "",
            f"  Access code:  {game.access_code}",
            f"  Host (staff): {HOST_USERNAME} / {HOST_PASSWORD}",
            f"  Players:      player1 .. player{len(PLAYER_NAMES)} / {PLAYER_PASSWORD}",
        ]
        if game.status == GameStatus.OPEN:
            lines.append("  Picks are open: sign in as a player, or reveal a winner to go live.")
        self.stdout.write("\n".join(lines))


def _user(username: str, display_name: str, password_hash: str, *, staff: bool = False) -> User:
    """The demo user, created with the documented login. An existing account is
    reused untouched: the demo never resets a password or grants rights."""
    user, _ = User.objects.get_or_create(
        username=username,
        defaults={
            "display_name": display_name,
            "password": password_hash,
            # Superuser too, so the admin shows every model to the demo host.
            "is_staff": staff,
            "is_superuser": staff,
        },
    )
    return user
