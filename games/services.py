"""Every write of the games domain (docs/api.md, game rules), one function per write.

Each state change of a game appends its events to an EventLog (games.event_log)
under the game's row lock, in the same transaction as the change: numbered,
with their frames rendered, announced to the real-time layer after commit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    prefetch_related_objects,
)
from django.utils import timezone

from accounts.models import User
from games import errors
from games.event_log import EventLog
from games.formatting import iso_utc
from games.models import (
    PICKABLE_STATUSES,
    Category,
    Ceremony,
    Game,
    GameParticipant,
    GameStatus,
    Nomination,
    Pick,
    new_access_code,
)
from games.selectors import (
    CeremonyStage,
    ceremony_ballot_locked,
    ceremony_last_revealed,
    ceremony_progress,
    game_is_participant,
    game_participant_count,
    last_revealed_json,
)
from games.sql import id_set
from games.standings import category_counts

UNSET: Any = object()


# --- events -----------------------------------------------------------------


def _status_event(log: EventLog, game: Game | LockedGame) -> None:
    log.append(game, "game:status", status=game.status, picksLockAt=iso_utc(game.picks_lock_at))


def _locked_game(game_id: int) -> Game:
    try:
        return Game.objects.select_for_update().get(pk=game_id)
    except Game.DoesNotExist:
        raise errors.NotFound("No game with that id.") from None


# --- ceremonies ---------------------------------------------------------------


@transaction.atomic
def ceremony_create(*, data: dict[str, Any]) -> Ceremony:
    """Write an already validated ceremony document (see games.ceremony_file)."""
    _require_new_ceremony(data["name"], data["date"])
    ceremony = Ceremony.objects.create(name=data["name"], date=data["date"])
    for order, cat in enumerate(data["categories"], start=1):
        category = Category.objects.create(
            ceremony=ceremony, name=cat["name"], order=order, points=cat["points"]
        )
        Nomination.objects.bulk_create(
            Nomination(
                category=category,
                title=nom["title"],
                subtitle=nom["subtitle"],
                image_url=nom["imageUrl"],
                order=index,
            )
            for index, nom in enumerate(cat["nominations"], start=1)
        )
    return ceremony


@transaction.atomic
def ceremony_update(*, ceremony_id: int, name: str = UNSET, date: Any = UNSET) -> Ceremony:
    """Rename or redate a ceremony: nothing a board or an event shows."""
    ceremony = _locked_ceremony(ceremony_id)
    _require_new_ceremony(
        ceremony.name if name is UNSET else name,
        ceremony.date if date is UNSET else date,
        ceremony_id=ceremony_id,
    )
    return _save_changes(ceremony, name=name, date=date)


def _require_new_ceremony(name: str, date: Any, *, ceremony_id: int | None = None) -> None:
    if Ceremony.objects.filter(name=name, date=date).exclude(pk=ceremony_id).exists():
        raise errors.ValidationFailed(f"A ceremony named {name!r} on {date} already exists.")


def _save_changes(obj: Any, **changes: Any) -> Any:
    """Set and save the fields given a value (UNSET ones are left alone)."""
    fields = [field for field, value in changes.items() if value is not UNSET]
    for field in fields:
        setattr(obj, field, changes[field])
    if fields:
        obj.save(update_fields=fields)
    return obj


@transaction.atomic
def ceremony_delete(*, ceremony_id: int) -> None:
    """Delete a ceremony nobody plays: its games would lose their ballot."""
    _locked_ceremony(ceremony_id)
    if Game.objects.filter(ceremony_id=ceremony_id).exists():
        raise errors.InvalidTransition("This ceremony has games: delete them first.")
    # A winner protects its nominee from deletion; without games nothing counts it.
    Category.objects.filter(ceremony_id=ceremony_id).update(winner=None, revealed_at=None)
    Ceremony.objects.filter(pk=ceremony_id).delete()


# --- the ballot: categories and nominations --------------------------------------
#
# A ceremony's categories and nominees change only while every game of it
# still takes picks: once one has locked, its players could neither pick a
# new category nor pick again in place of a deleted nominee, and each
# change would take them off the board for good.


CATEGORY_ADD_REFUSED = "Picks are locked in a game of this ceremony: no category can be added."


def _ballot_games_locked(ceremony_id: int, refusal: str) -> list[LockedGame]:
    """Every game of the ceremony, locked, once its ballot may change; else
    PicksLocked with `refusal`. Precondition: inside atomic, ceremony row locked."""
    games = _ceremony_games_locked(ceremony_id, GameStatus.values)
    if ceremony_ballot_locked(ceremony_id=ceremony_id):
        raise errors.PicksLocked(refusal)
    return games


def _require_free_order(ceremony_id: int, order: int, *, category_id: int | None = None) -> None:
    taken = Category.objects.filter(ceremony_id=ceremony_id, order=order).exclude(pk=category_id)
    if taken.exists():
        raise errors.ValidationFailed("Another category of this ceremony has this order.")


def _pick_counts_drop(picks: QuerySet[Pick]) -> None:
    """Take one off the pick count of each player with a pick in `picks`,
    which are about to be deleted. Precondition: at most one of them per
    player and game (the picks of one category, or of one nominee)."""
    picked = picks.filter(game_id=OuterRef("game_id"), user_id=OuterRef("user_id"))
    GameParticipant.objects.filter(Exists(picked)).update(pick_count=F("pick_count") - 1)


def _ballot_boards(games: list[LockedGame], ceremony_id: int) -> None:
    """Every game's board after its category count changed: complete players
    may now be incomplete. Nothing is revealed while the ballot may change."""
    log = EventLog()
    log.append_boards(games, ceremony_id=ceremony_id, last_revealed=None)
    log.save()


@transaction.atomic
def category_create(*, ceremony_id: int, name: str, order: int, points: int = 1) -> Category:
    _locked_ceremony(ceremony_id)
    games = _ballot_games_locked(ceremony_id, CATEGORY_ADD_REFUSED)
    _require_free_order(ceremony_id, order)
    category = Category.objects.create(
        ceremony_id=ceremony_id, name=name, order=order, points=points
    )
    _ballot_boards(games, ceremony_id)
    return category


@transaction.atomic
def category_update(
    *, category_id: int, name: str = UNSET, order: int = UNSET, points: int = UNSET
) -> Category:
    """Name, order and points: pages show them when they load; points count
    only once revealed, and a revealed category's are in every score sent."""
    category = _locked_category(category_id)
    if points is not UNSET and points != category.points and category.is_revealed:
        raise errors.InvalidTransition(
            "This category is revealed and its points are in every score: undo the winner first."
        )
    if order is not UNSET:
        _require_free_order(category.ceremony_id, order, category_id=category.pk)
    return _save_changes(category, name=name, order=order, points=points)


@transaction.atomic
def category_delete(*, category_id: int) -> None:
    """With its nominations and picks; the pickers' counters and every
    board of the ceremony follow."""
    category = _locked_category(category_id)
    games = _ballot_games_locked(
        category.ceremony_id,
        "Picks are locked in a game of this ceremony: its categories can no longer be deleted.",
    )
    _pick_counts_drop(Pick.objects.filter(category_id=category.pk))
    # A winner protects its nominee; a ballot that may change has none
    # unless the ceremony has no games.
    Category.objects.filter(pk=category.pk).update(winner=None, revealed_at=None)
    Category.objects.filter(pk=category.pk).delete()
    _ballot_boards(games, category.ceremony_id)


@transaction.atomic
def nomination_create(
    *,
    category_id: int,
    title: str,
    subtitle: str = "",
    image_url: str | None = None,
    order: int = 0,
) -> Nomination:
    """A nominee more changes no pick, score or board: allowed at any time."""
    category = _locked_category(category_id)
    return Nomination.objects.create(
        category=category, title=title, subtitle=subtitle, image_url=image_url, order=order
    )


@transaction.atomic
def nomination_update(*, nomination_id: int, **fields: Any) -> Nomination:
    """Title, subtitle, image URL or order: boards show a winner's title as
    of their seq, pages as of their load, as for a category's name."""
    nomination = Nomination.objects.select_for_update().filter(pk=nomination_id).first()
    if nomination is None:
        raise errors.NotFound("No nomination with that id.")
    return _save_changes(nomination, **fields)


@transaction.atomic
def nomination_delete(*, nomination_id: int) -> None:
    """With the picks of it; their players have one pick fewer and may pick again."""
    category_id = (
        Nomination.objects.filter(pk=nomination_id).values_list("category_id", flat=True).first()
    )
    if category_id is None:
        raise errors.NotFound("No nomination with that id.")
    category = _locked_category(category_id)
    if category.winner_id == nomination_id:
        raise errors.InvalidTransition("This nominee won its category: undo the winner first.")
    _ballot_games_locked(
        category.ceremony_id,
        "Picks are locked in a game of this ceremony: its nominees can no longer be deleted.",
    )
    picks = Pick.objects.filter(nomination_id=nomination_id)
    _pick_counts_drop(picks)
    picks.delete()
    Nomination.objects.filter(pk=nomination_id).delete()


# --- games ----------------------------------------------------------------------


def normalize_access_code(code: str) -> str:
    return code.strip().upper()


CEREMONY_OVER = (
    "Every category of this ceremony is revealed: the night is over. "
    "Choose a ceremony that is still to come."
)


@transaction.atomic
def game_create(
    *, host: User, ceremony_id: int, name: str, picks_lock_at: datetime | None = None
) -> Game:
    """A game of the ceremony, `OPEN` — or `LIVE` (watch only) from the start
    when the ceremony has begun or `picks_lock_at` has passed. A ceremony that
    is over takes no new game (InvalidTransition)."""
    # The ceremony's row lock orders this with reveals (they take it first),
    # so a game never starts OPEN beside a reveal that just committed.
    _locked_ceremony(ceremony_id)
    progress = ceremony_progress(ceremony_id=ceremony_id)
    if progress.stage == CeremonyStage.OVER:
        raise errors.InvalidTransition(CEREMONY_OVER)
    lock_passed = picks_lock_at is not None and picks_lock_at <= timezone.now()
    begun = progress.stage == CeremonyStage.BEGUN or lock_passed
    for _ in range(10):
        try:
            with transaction.atomic():
                game = Game.objects.create(
                    ceremony_id=ceremony_id,
                    host=host,
                    name=name,
                    picks_lock_at=picks_lock_at,
                    access_code=new_access_code(),
                    status=GameStatus.LIVE if begun else GameStatus.OPEN,
                )
            break
        except IntegrityError:  # access code collision: draw again
            continue
    else:  # pragma: no cover - 31^8 codes make ten collisions in a row implausible
        raise errors.DomainError("Could not allocate an access code.")
    GameParticipant.objects.create(game=game, user=host)
    return game


def _lock_due(game: Game, now: datetime) -> bool:
    if game.status not in PICKABLE_STATUSES:
        return False
    if game.picks_lock_at is not None and game.picks_lock_at <= now:
        return True
    # A revealed category locks every game of the ceremony, even one made after.
    return Category.objects.filter(ceremony_id=game.ceremony_id, winner__isnull=False).exists()


def _lock(log: EventLog, game: Game) -> None:
    """OPEN → LIVE with its events. Precondition: inside atomic, game row locked."""
    game.status = GameStatus.LIVE
    game.save(update_fields=["status"])
    _status_event(log, game)
    _board_event(log, game)


def _board_event(log: EventLog, game: Game) -> None:
    log.append_boards(
        [game],
        ceremony_id=game.ceremony_id,
        last_revealed=ceremony_last_revealed(ceremony_id=game.ceremony_id),
    )


def game_lock_if_due(*, game_id: int, game: Game | None = None) -> Game:
    """Lock a game whose picksLockAt passed (or whose ceremony began) even if
    no timer ran. Cheap when nothing is due: one unlocked read, none when the
    caller passes the row it just read (`game`, of `game_id`)."""
    now = timezone.now()
    if game is None:
        try:
            game = Game.objects.get(pk=game_id)
        except Game.DoesNotExist:
            raise errors.NotFound("No game with that id.") from None
    if not _lock_due(game, now):
        return game
    with transaction.atomic():
        game = _locked_game(game_id)
        if _lock_due(game, now):
            log = EventLog()
            _lock(log, game)
            log.save()
    return game


@transaction.atomic
def game_update(
    *,
    game_id: int,
    actor: User,
    name: str | None = None,
    picks_lock_at: datetime | None = UNSET,
    status: str | None = None,
) -> Game:
    game = _locked_game(game_id)
    _require_host(game, actor)
    log = EventLog()
    if name is not None and name != game.name:
        game.name = name
        game.save(update_fields=["name"])
    if picks_lock_at is not UNSET and picks_lock_at != game.picks_lock_at:
        if game.status not in PICKABLE_STATUSES:
            raise errors.InvalidTransition("picksLockAt can only change while picks are open.")
        game.picks_lock_at = picks_lock_at
        game.save(update_fields=["picks_lock_at"])
        _status_event(log, game)
    if status is not None and status != game.status:
        if not (game.status in PICKABLE_STATUSES and status == GameStatus.LIVE):
            raise errors.InvalidTransition(f"A game cannot go from {game.status} to {status}.")
        _lock(log, game)
    elif _lock_due(game, timezone.now()):
        _lock(log, game)
    log.save()
    return game


def game_lock(*, game_id: int, actor: User) -> Game:
    """The host locks picks now (OPEN → LIVE)."""
    return game_update(game_id=game_id, actor=actor, status=GameStatus.LIVE)


def _require_host(game: Game, actor: User) -> None:
    if game.host_id == actor.pk:
        return
    if game_is_participant(game_id=game.pk, user_id=actor.pk):
        raise errors.Forbidden("Only the host can do that.")
    raise errors.NotParticipant()


def game_join(*, user: User, access_code: str) -> Game:
    code = normalize_access_code(access_code)
    game_id = Game.objects.filter(access_code=code).values_list("pk", flat=True).first()
    if game_id is None:
        raise errors.InvalidCode()
    game_lock_if_due(game_id=game_id)
    with transaction.atomic():
        game = _locked_game(game_id)
        if game_is_participant(game_id=game.pk, user_id=user.pk):
            return game  # joining again is a no-op that succeeds
        if game.status == GameStatus.COMPLETED:
            raise errors.GameNotJoinable("This game is over and cannot be joined.")
        GameParticipant.objects.create(game=game, user=user)
        log = EventLog()
        log.append(
            game,
            "participant:joined",
            userId=user.pk,
            name=user.public_name,
            participantCount=game_participant_count(game_id=game.pk),
        )
        log.save()
    return game


@transaction.atomic
def participant_remove(*, game_id: int, actor: User, user_id: int) -> None:
    game = _locked_game(game_id)
    _require_host(game, actor)
    if user_id == game.host_id:
        raise errors.Forbidden("The host cannot be removed from their own game.")
    participant = (
        GameParticipant.objects.select_related("user").filter(game=game, user_id=user_id).first()
    )
    if participant is None:
        raise errors.NotFound("That user is not a participant of this game.")
    name = participant.user.public_name
    Pick.objects.filter(game=game, user_id=user_id).delete()
    participant.delete()
    # The removed user's sockets learn it from this event (the real-time
    # layer answers it with `game:removed`): it is in the log, so it reaches
    # them after any fault, like every other event.
    log = EventLog()
    log.append(
        game,
        "participant:left",
        userId=user_id,
        name=name,
        participantCount=game_participant_count(game_id=game.pk),
    )
    _board_event(log, game)
    log.save()


# --- picks ------------------------------------------------------------------------


def pick_submit(*, game_id: int, user: User, category_id: int, nomination_id: int) -> Pick:
    # Persist a lock that came due (time passed, ceremony started) before refusing.
    game_lock_if_due(game_id=game_id)
    with transaction.atomic():
        # The game row lock serialises this pick with a reveal: a pick cannot
        # slip in after the reveal that locks the game commits.
        game = _locked_game(game_id)
        if not game_is_participant(game_id=game.pk, user_id=user.pk):
            raise errors.NotParticipant()
        category = Category.objects.filter(pk=category_id, ceremony_id=game.ceremony_id).first()
        if category is None:
            raise errors.NotFound("No category with that id in this game's ceremony.")
        if not Nomination.objects.filter(pk=nomination_id, category=category).exists():
            raise errors.NominationNotInCategory()
        if game.status not in PICKABLE_STATUSES or _lock_due(game, timezone.now()):
            raise errors.PicksLocked()
        pick, created = Pick.objects.update_or_create(
            game=game,
            user=user,
            category=category,
            defaults={"nomination_id": nomination_id},
        )
        if created:
            # Scores need no change: picks close before any category is revealed.
            GameParticipant.objects.filter(game=game, user=user).update(
                pick_count=F("pick_count") + 1
            )
    return pick


# --- reveals ------------------------------------------------------------------------


def _locked_category(category_id: int) -> Category:
    """The category, with its ceremony's row locked first.

    Reveals and undos of one ceremony are serialised on the ceremony row, so
    two last reveals racing each other cannot both miss that all is revealed.
    """
    # The ceremony is found through the category in the locking statement
    # itself: one round trip, and the ceremony's row is still locked first.
    category_ceremony = Category.objects.filter(pk=category_id).values("ceremony_id")[:1]
    ceremony = Ceremony.objects.select_for_update().filter(pk=Subquery(category_ceremony))
    if not ceremony.values_list("pk", flat=True):
        raise errors.NotFound("No category with that id.")
    category = Category.objects.select_for_update().filter(pk=category_id).first()
    if category is None:  # deleted between the two statements
        raise errors.NotFound("No category with that id.")
    return category


def _locked_category_with_nominations(category_id: int) -> Category:
    """The locked category, its nominations loaded: a reveal checks its
    nominee among them, and its answer shows them without another query."""
    category = _locked_category(category_id)
    prefetch_related_objects([category], "nominations")
    return category


def _locked_ceremony(ceremony_id: int) -> Ceremony:
    ceremony = Ceremony.objects.select_for_update().filter(pk=ceremony_id).first()
    if ceremony is None:
        raise errors.NotFound("No ceremony with that id.")
    return ceremony


@dataclass(slots=True)
class LockedGame:
    """A game row locked by a write to its whole ceremony: what its events
    need, without building a model instance for each of a thousand parties."""

    pk: int
    ceremony_id: int
    seq: int
    status: str
    picks_lock_at: datetime | None
    completed_at: datetime | None


def _ceremony_games_locked(ceremony_id: int, statuses: Iterable[str]) -> list[LockedGame]:
    # Ordered by id so concurrent reveals take row locks in the same order.
    rows = (
        Game.objects.select_for_update()
        .filter(ceremony_id=ceremony_id, status__in=list(statuses))
        .order_by("pk")
        .values_list("pk", "ceremony_id", "seq", "status", "picks_lock_at", "completed_at")
    )
    return [LockedGame(*row) for row in rows]


def _scores_adjust(*, category: Category, winner_id: int, sign: int) -> None:
    """Add (sign 1) or take back (sign -1) the category's points for every
    participant, in every game of the ceremony, who picked `winner_id`.

    Precondition: inside atomic, with the ceremony's games locked, so no pick
    or other reveal of these games runs meanwhile.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _scores_adjust_sql(), [sign * category.points, sign, category.ceremony_id, winner_id]
        )


@functools.cache
def _scores_adjust_sql() -> str:
    """The participants who picked the winner, found through their picks of
    it in the ceremony's games (index pick(game, nomination)). Written out:
    the ORM's form, an Exists per participant, cost a reveal more Python to
    build than the database took to run it (bench/README.md, "One trip per
    request")."""
    quote = connection.ops.quote_name
    participant, pick, game = (
        quote(model._meta.db_table) for model in (GameParticipant, Pick, Game)
    )
    return (
        f"UPDATE {participant} SET total_score = total_score + %s,"
        " correct_count = correct_count + %s"
        f" WHERE id IN (SELECT p.id FROM {pick} k JOIN {participant} p"
        " ON p.game_id = k.game_id AND p.user_id = k.user_id"
        f" WHERE k.game_id IN (SELECT g.id FROM {game} g WHERE g.ceremony_id = %s)"
        " AND k.nomination_id = %s)"
    )


@transaction.atomic
def participant_scores_recompute(*, game_id: int) -> None:
    """Rebuild a game's participant counters from its picks and the winners.

    The services keep them current; this is for data written around them
    (bulk seeding in benchmarks and test factories) and for repairs.
    """
    game = _locked_game(game_id)
    correct = Q(category__winner_id=F("nomination_id"))
    totals = {
        row["user_id"]: row
        for row in Pick.objects.filter(game=game)
        .values("user_id")
        .annotate(
            picked=Count("id"),
            total=Sum("category__points", filter=correct, default=0),
            right=Count("id", filter=correct),
        )
        .order_by()
    }
    participants = list(GameParticipant.objects.filter(game=game))
    for participant in participants:
        row = totals.get(participant.user_id, {"picked": 0, "total": 0, "right": 0})
        participant.pick_count = row["picked"]
        participant.total_score = row["total"]
        participant.correct_count = row["right"]
    GameParticipant.objects.bulk_update(
        participants, ["pick_count", "total_score", "correct_count"], batch_size=1000
    )


@transaction.atomic
def category_reveal(*, category_id: int, nomination_id: int) -> tuple[Category, bool]:
    """Mark a winner. Returns (category, changed), the category as committed
    with its nominations loaded; the same winner again is a no-op."""
    category = _locked_category_with_nominations(category_id)
    nomination = next((n for n in category.nominations.all() if n.pk == nomination_id), None)
    if nomination is None:
        raise errors.NominationNotInCategory()
    if category.winner_id == nomination.pk:
        return category, False
    if category.winner_id is not None:
        raise errors.AlreadyRevealed()
    now = timezone.now()
    category.winner = nomination
    category.revealed_at = now
    category.save(update_fields=["winner", "revealed_at"])
    counts = category_counts(ceremony_id=category.ceremony_id)
    all_revealed = counts.revealed == counts.total
    last_revealed = last_revealed_json(category=category, winner=nomination)
    statuses = (*PICKABLE_STATUSES, GameStatus.LIVE)
    games = _ceremony_games_locked(category.ceremony_id, statuses)
    _scores_adjust(category=category, winner_id=nomination.pk, sign=1)
    # Set-based whatever the number of games (a public night has hundreds of
    # small parties on one ceremony): the statuses in at most two UPDATEs, the
    # standings in one read, the seqs in one UPDATE, the events in one INSERT.
    log = EventLog()
    newly_live = [game for game in games if game.status in PICKABLE_STATUSES]
    _games_set_status(newly_live, GameStatus.LIVE)
    for game in newly_live:
        _status_event(log, game)
    log.append_boards(
        games, ceremony_id=category.ceremony_id, last_revealed=last_revealed, counts=counts
    )
    if all_revealed:
        _games_set_status(games, GameStatus.COMPLETED, completed_at=now)
        for game in games:
            log.append(game, "game:completed", completedAt=iso_utc(now))
    log.save()
    return category, True


def _games_set_status(
    games: list[LockedGame], status: str, *, completed_at: datetime | None = None
) -> None:
    """Set the status (and completed_at) of locked games, in memory and in one UPDATE."""
    for game in games:
        game.status = status
        game.completed_at = completed_at
    if games:
        Game.objects.filter(pk__in=id_set([game.pk for game in games])).update(
            status=status, completed_at=completed_at
        )


@transaction.atomic
def category_undo(*, category_id: int) -> tuple[Category, bool]:
    """Clear a winner. Returns (category, changed), the category as committed
    with its nominations loaded; undoing nothing is a no-op."""
    category = _locked_category_with_nominations(category_id)
    if category.winner_id is None:
        return category, False
    games = _ceremony_games_locked(category.ceremony_id, (GameStatus.LIVE, GameStatus.COMPLETED))
    _scores_adjust(category=category, winner_id=category.winner_id, sign=-1)
    category.winner = None
    category.revealed_at = None
    category.save(update_fields=["winner", "revealed_at"])
    log = EventLog()
    completed = [game for game in games if game.status == GameStatus.COMPLETED]
    _games_set_status(completed, GameStatus.LIVE)
    for game in completed:
        _status_event(log, game)
    log.append_boards(
        games,
        ceremony_id=category.ceremony_id,
        last_revealed=ceremony_last_revealed(ceremony_id=category.ceremony_id),
    )
    log.save()
    return category, True
