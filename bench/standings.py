"""Benchmark: how long one game's standings take on PostgreSQL.

Not a test. Builds a game of --players players with a pick in every one of
--categories categories in a dedicated database (`envelope_bench`, created on
the server of DATABASE_URL), reveals about half the categories through the
service, then times `leaderboard.selectors.game_standings` and
`leaderboard_payload` (plus the JSON encoding every broadcast pays).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/envelope \\
        .venv/bin/python bench/standings.py [--players 5000] [--categories 24] [--runs 20]

The bench database is dropped afterwards unless --keep. --explain prints
EXPLAIN ANALYZE of every query the standings run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "envelope_bench"
TARGET_MS = 50.0
WARMUP_RUNS = 3


def main() -> int:
    args = parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlparse(url).scheme not in {"postgres", "postgresql"}:
        print(
            "bench/standings.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/db "
            "(it creates and uses its own database, envelope_bench, on that server).",
            file=sys.stderr,
        )
        return 2
    admin_url = database_url(url, "postgres")
    create_database(admin_url)
    try:
        setup_django(database_url(url, BENCH_DB))
        game = build_game(args.players, args.categories, args.nominees)
        results = {
            "game_standings": time_runs(lambda: standings(game), args.runs),
            "leaderboard_payload+json": time_runs(lambda: payload_json(game), args.runs),
        }
        if args.explain:
            explain(game)
    finally:
        close_django()
        if not args.keep:
            drop_database(admin_url)
    for label, timings in results.items():
        print(f"{label:>26}: {summary(timings)}")
    median = statistics.median(results["game_standings"])
    verdict = "PASS" if median <= TARGET_MS else "FAIL"
    print(
        f"standings: {args.players} players x {args.categories} categories: "
        f"median {median:.1f} ms (target <= {TARGET_MS:.0f} ms) {verdict}"
    )
    return 0 if verdict == "PASS" else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--players", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=24)
    parser.add_argument("--nominees", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="timed runs after a warm-up")
    parser.add_argument("--keep", action="store_true", help="keep the envelope_bench database")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE")
    return parser.parse_args()


# --- the bench database ------------------------------------------------------------------


def database_url(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{name}"))


def create_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


def setup_django(url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("SECRET_KEY", "envelope-bench-only-" + uuid.uuid4().hex)
    # Broadcasts go to the in-memory layer: the bench must not touch a real Redis.
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def close_django() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


# --- data ----------------------------------------------------------------------------------


def build_game(players: int, categories: int, nominees: int) -> Any:
    from django.db import connection

    from accounts.models import User
    from bench.seed import ceremony_document
    from games import services
    from games.models import GameParticipant, Pick

    started = time.perf_counter()
    tag = uuid.uuid4().hex[:8]  # lets --keep runs accumulate side by side
    ceremony = services.ceremony_create(data=ceremony_document(tag, categories, nominees))
    users = User.objects.bulk_create(
        # "!" is an unusable password: bench users cannot sign in.
        User(username=f"bench-{tag}-{i}", display_name=f"Player {i}", password="!")
        for i in range(players)
    )
    game = services.game_create(host=users[0], ceremony_id=ceremony.pk, name=f"Bench {tag}")
    GameParticipant.objects.bulk_create(GameParticipant(game=game, user=user) for user in users[1:])
    rng = random.Random(2025)
    cats = list(ceremony.categories.prefetch_related("nominations"))
    Pick.objects.bulk_create(
        (
            Pick(
                game=game,
                user=user,
                category=category,
                nomination=rng.choice(list(category.nominations.all())),
            )
            for user in users
            for category in cats
        ),
        batch_size=5000,
    )
    # Picks were bulk-written around pick_submit: bring the counters up to date.
    services.participant_scores_recompute(game_id=game.pk)
    for category in cats[::2]:  # about half revealed, through the real service
        services.category_reveal(
            category_id=category.pk, nomination_id=rng.choice(list(category.nominations.all())).pk
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would give a live server
    game.refresh_from_db()
    print(
        f"built {players} players x {categories} categories "
        f"({players * categories} picks, {len(cats[::2])} revealed) "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return game


# --- timing --------------------------------------------------------------------------------


def standings(game: Any) -> None:
    from games.standings import game_standings

    game_standings(game=game)


def payload_json(game: Any) -> None:
    from games.standings import game_standings, leaderboard_frame
    from leaderboard.protocol import encode

    standings = game_standings(game=game)
    encode(
        leaderboard_frame(game_id=game.pk, seq=game.seq, standings=standings, last_revealed=None)
    )


def time_runs(run: Callable[[], None], runs: int) -> list[float]:
    for _ in range(WARMUP_RUNS):
        run()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"min {ordered[0]:.1f}  median {statistics.median(ordered):.1f}  "
        f"p95 {p95:.1f}  max {ordered[-1]:.1f} ms  ({len(ordered)} runs)"
    )


def explain(game: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        standings(game)
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            print(f"\n-- {query['sql']}", file=sys.stderr)
            print("\n".join(row[0] for row in cursor.fetchall()), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
