"""factory_boy factories for Envelope's models."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from accounts.models import User
from games import services
from games.models import (
    Category,
    Ceremony,
    Game,
    GameParticipant,
    GameStatus,
    Nomination,
    Pick,
    new_access_code,
)

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"player{n}")
    display_name = factory.Sequence(lambda n: f"Player {n}")
    password = factory.django.Password(PASSWORD)


class CeremonyFactory(DjangoModelFactory):
    class Meta:
        model = Ceremony

    name = factory.Sequence(lambda n: f"Awards {n}")
    date = factory.Faker("date_object")


class CategoryFactory(DjangoModelFactory):
    class Meta:
        model = Category

    ceremony = factory.SubFactory(CeremonyFactory)
    name = factory.Sequence(lambda n: f"Category {n}")
    order = factory.Sequence(lambda n: n + 1)
    points = 1


class NominationFactory(DjangoModelFactory):
    class Meta:
        model = Nomination

    category = factory.SubFactory(CategoryFactory)
    title = factory.Sequence(lambda n: f"Nominee {n}")
    subtitle = ""
    order = factory.Sequence(lambda n: n)


class GameFactory(DjangoModelFactory):
    class Meta:
        model = Game
        skip_postgeneration_save = True

    ceremony = factory.SubFactory(CeremonyFactory)
    host = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Party {n}")
    access_code = factory.LazyFunction(new_access_code)
    status = GameStatus.OPEN

    @factory.post_generation
    def host_participates(obj: Game, create: bool, extracted: bool | None, **kwargs: object):
        if create and extracted is not False:
            GameParticipant.objects.get_or_create(game=obj, user=obj.host)


class ParticipantFactory(DjangoModelFactory):
    class Meta:
        model = GameParticipant

    game = factory.SubFactory(GameFactory)
    user = factory.SubFactory(UserFactory)


class PickFactory(DjangoModelFactory):
    class Meta:
        model = Pick

    game = factory.SubFactory(GameFactory)
    user = factory.SubFactory(UserFactory)
    nomination = factory.SubFactory(NominationFactory)
    category = factory.LazyAttribute(lambda o: o.nomination.category)


def make_ceremony(
    categories: int = 3, nominees: int = 4, points: list[int] | None = None
) -> Ceremony:
    """A ceremony with `categories` categories of `nominees` nominations each."""
    ceremony = CeremonyFactory()
    for index in range(categories):
        category = CategoryFactory(
            ceremony=ceremony, order=index + 1, points=(points[index] if points else 1)
        )
        for n in range(nominees):
            NominationFactory(category=category, order=n + 1, title=f"{category.name} #{n + 1}")
    return ceremony


def pick_all(game: Game, user: User, choose: int = 0) -> None:
    """Give `user` a pick in every category: the `choose`-th nominee of each."""
    for category in game.ceremony.categories.all():
        nomination = list(category.nominations.all())[choose]
        Pick.objects.update_or_create(
            game=game, user=user, category=category, defaults={"nomination": nomination}
        )
    # Written around pick_submit (which refuses picks once the ceremony has
    # begun): bring the participant's score counters up to date.
    services.participant_scores_recompute(game_id=game.pk)
