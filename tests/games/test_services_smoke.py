from games import services
from games.models import GameEvent, GameStatus
from tests.factories import GameFactory, UserFactory, make_ceremony, pick_all


def test_reveal_locks_and_completes(db, django_capture_on_commit_callbacks):
    ceremony = make_ceremony(categories=2)
    game = GameFactory(ceremony=ceremony)
    player = UserFactory()
    services.game_join(user=player, access_code=game.access_code.lower())
    pick_all(game, player, choose=0)
    pick_all(game, game.host, choose=1)
    cats = list(ceremony.categories.all())
    with django_capture_on_commit_callbacks(execute=True):
        services.category_reveal(category_id=cats[0].pk, nomination_id=cats[0].nominations.first().pk)
    game.refresh_from_db()
    assert game.status == GameStatus.LIVE
    with django_capture_on_commit_callbacks(execute=True):
        services.category_reveal(category_id=cats[1].pk, nomination_id=cats[1].nominations.first().pk)
    game.refresh_from_db()
    assert game.status == GameStatus.COMPLETED
    types = list(GameEvent.objects.filter(game=game).values_list("seq", "type"))
    assert types == [
        (1, "participant:joined"),
        (2, "game:status"),
        (3, "leaderboard:update"),
        (4, "leaderboard:update"),
        (5, "game:completed"),
    ]
    last = GameEvent.objects.get(game=game, seq=4).payload
    assert [p["userId"] for p in last["players"]] == [player.pk, game.host_id]
    assert last["players"][0]["totalScore"] == 2
