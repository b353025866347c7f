"""`manage.py demo`: a ready-to-try Oscars party (README, Configuration).

Safe to run again: the ceremony, users and game are reused when present, and
only missing picks are added, so a demo in progress is not reset.
"""

from __future__ import annotations

import random
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from games import services
from games.ceremony_file import parse_ceremony
from games.errors import DomainError
from games.models import Category, Ceremony, Game, GameStatus, Pick

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
        ceremony = self._ceremony()
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
        game = self._game(ceremony, host)
        everyone = [host, *players]
        for user in players:
            self._join(game, user)
        self._pick(game, everyone)
        game.refresh_from_db()
        self._print(base_url.rstrip("/"), game)

    def _ceremony(self) -> Ceremony:
        data = parse_ceremony(FIXTURE.read_bytes())
        existing = Ceremony.objects.filter(name=data["name"], date=data["date"]).first()
        if existing is not None:
            self.stderr.write(f"Reusing ceremony {existing.name!r} (id {existing.pk}).")
            return existing
        ceremony = services.ceremony_create(data=data)
        self.stderr.write(f"Imported ceremony {ceremony.name!r} (id {ceremony.pk}).")
        return ceremony

    def _game(self, ceremony: Ceremony, host: User) -> Game:
        game = Game.objects.filter(ceremony=ceremony, host=host, name=GAME_NAME).first()
        if game is not None:
            self.stderr.write(f"Reusing game {game.name!r} (id {game.pk}, {game.status}).")
            return game
        return services.game_create(host=host, ceremony_id=ceremony.pk, name=GAME_NAME)

    def _join(self, game: Game, user: User) -> None:
        try:
            services.game_join(user=user, access_code=game.access_code)
        except DomainError as exc:
            # A finished demo game cannot be joined; report it, keep the rest.
            self.stderr.write(f"{user.username} could not join: {exc.message}")

    def _pick(self, game: Game, users: list[User]) -> None:
        """Seeded random picks for every category a user has not picked yet."""
        game.refresh_from_db()
        if game.status not in services.PICKABLE_STATUSES:
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
