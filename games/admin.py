"""Django admin for Envelope (CONTRACT §5).

Every change players can see goes through games.services, exactly as the API
does: marking a winner here is validated, recorded as game events and
broadcast. Fields that only services may change (winner timestamps, status,
seq) are read-only, and participants, picks and events are shown read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from games import errors, services
from games.models import (
    Category,
    Ceremony,
    Game,
    GameEvent,
    GameParticipant,
    GameStatus,
    Nomination,
    Pick,
)


class ReadOnlyAdminMixin:
    """View-only: the rows are written by services, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- ceremonies and categories ---------------------------------------------------


class CategoryInline(admin.TabularInline):
    """An overview: categories are added and reordered on the category page.

    A winner is marked there too, where it goes through the service. `order`
    is read-only here because swapping two orders in one formset save breaks
    the (ceremony, order) unique constraint row by row; `points` because only
    the category page knows whether the category is revealed (see there).
    """

    model = Category
    fields = ("order", "name", "points", "winner", "revealed_at")
    readonly_fields = ("order", "points", "winner", "revealed_at")
    show_change_link = True
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Ceremony)
class CeremonyAdmin(admin.ModelAdmin):
    list_display = ("name", "date", "category_count", "revealed_count", "created_at")
    search_fields = ("name",)
    date_hierarchy = "date"
    inlines = [CategoryInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ceremony]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _categories=Count("categories"),
                _revealed=Count("categories", filter=Q(categories__winner__isnull=False)),
            )
        )

    @admin.display(description="categories", ordering="_categories")
    def category_count(self, obj: Ceremony) -> int:
        return obj._categories

    @admin.display(description="revealed", ordering="_revealed")
    def revealed_count(self, obj: Ceremony) -> int:
        return obj._revealed


class NominationInline(admin.TabularInline):
    model = Nomination
    fields = ("order", "title", "subtitle", "image_url")
    # Django 6 defaults to https for scheme-less URLs; opt in now (and silence the warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    extra = 0


class RevealedFilter(admin.SimpleListFilter):
    title = "revealed"
    parameter_name = "revealed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Revealed"), ("no", "Not revealed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Category]) -> QuerySet[Category]:
        if self.value() in {"yes", "no"}:
            return queryset.filter(winner__isnull=self.value() == "no")
        return queryset


class CategoryAdminForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ("ceremony", "name", "order", "points", "winner")
        help_texts = {
            "winner": "Marking a winner reveals this category in every game of the ceremony "
            "and updates every leaderboard. Clear it to undo.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "winner" in self.fields:
            self.fields["winner"].queryset = (
                Nomination.objects.filter(category=self.instance)
                if self.instance.pk
                else Nomination.objects.none()
            )

    def clean_order(self) -> int:
        # With `ceremony` read-only on the change page, Django's own check of the
        # (ceremony, order) constraint is skipped; without this it would be a 500.
        order = self.cleaned_data["order"]
        if (
            self.instance.pk
            and Category.objects.filter(ceremony_id=self.instance.ceremony_id, order=order)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            raise forms.ValidationError("Another category of this ceremony has this order.")
        return order

    def clean_winner(self) -> Nomination | None:
        # Validate only; save_model applies the change through the service. The
        # instance still holds the stored winner here (the form updates it later).
        winner = self.cleaned_data.get("winner")
        current = self.instance.winner_id
        if winner is not None and current is not None and winner.pk != current:
            raise forms.ValidationError(
                errors.AlreadyRevealed().message, code=errors.AlreadyRevealed.code
            )
        return winner


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryAdminForm
    list_display = ("name", "ceremony", "order", "points", "winner", "revealed_at")
    list_display_links = ("name",)
    list_filter = ("ceremony", RevealedFilter)
    list_select_related = ("ceremony", "winner")
    search_fields = ("name", "ceremony__name", "nominations__title")
    inlines = [NominationInline]
    actions = ["undo_winner"]

    def get_fields(self, request: HttpRequest, obj: Category | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        # A new category has no nominations to win yet.
        return fields if obj is not None else [f for f in fields if f != "winner"]

    def get_readonly_fields(self, request: HttpRequest, obj: Category | None = None) -> tuple:
        if obj is None:
            return ("revealed_at",)
        # Moving a category to another ceremony would corrupt that ceremony's picks.
        # A revealed category's points are in every score already broadcast: undo first.
        return (
            ("ceremony", "points", "revealed_at")
            if obj.is_revealed
            else ("ceremony", "revealed_at")
        )

    def save_model(
        self, request: HttpRequest, obj: Category, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Save the plain fields without touching winner/revealed_at, then let
        # the service mark or clear the winner (its events go out on commit).
        plain = [name for name in form.changed_data if name != "winner"]
        if plain:
            obj.save(update_fields=plain)
        if "winner" in form.changed_data:
            winner = form.cleaned_data["winner"]
            try:
                if winner is None:
                    services.category_undo(category_id=obj.pk)
                else:
                    services.category_reveal(category_id=obj.pk, nomination_id=winner.pk)
            except errors.DomainError as exc:
                # Someone else changed the winner since the form was validated.
                self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
        obj.refresh_from_db()

    @admin.action(description="Undo the winner")
    def undo_winner(self, request: HttpRequest, queryset: QuerySet[Category]) -> None:
        undone = 0
        for category_id in queryset.values_list("pk", flat=True):
            _, changed = services.category_undo(category_id=category_id)
            undone += changed
        self.message_user(request, f"Undid the winner of {undone} category(ies).")


# --- games --------------------------------------------------------------------------


class ParticipantInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = GameParticipant
    fields = ("user", "joined_at")
    readonly_fields = ("user", "joined_at")
    extra = 0


class GameAdminForm(forms.ModelForm):
    class Meta:
        model = Game
        fields = ("name", "picks_lock_at")

    def clean_picks_lock_at(self) -> Any:
        value = self.cleaned_data.get("picks_lock_at")
        if (
            value != self.instance.picks_lock_at
            and self.instance.status not in services.PICKABLE_STATUSES
        ):
            raise forms.ValidationError(
                "Picks lock time can only change while picks are open.",
                code=errors.InvalidTransition.code,
            )
        return value


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    form = GameAdminForm
    list_display = (
        "name",
        "ceremony",
        "host",
        "status",
        "access_code",
        "participant_count",
        "picks_lock_at",
    )
    list_filter = ("status", "ceremony")
    list_select_related = ("ceremony", "host")
    search_fields = ("name", "access_code", "host__username")
    # Status moves only through services (lock action, reveals), never by hand.
    readonly_fields = (
        "ceremony",
        "host",
        "access_code",
        "status",
        "seq",
        "completed_at",
        "created_at",
    )
    inlines = [ParticipantInline]
    actions = ["lock_picks"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Games are created by their host on the site or the API (game_create).
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Game]:
        return super().get_queryset(request).annotate(_participants=Count("participants"))

    @admin.display(description="players", ordering="_participants")
    def participant_count(self, obj: Game) -> int:
        return obj._participants

    def save_model(
        self, request: HttpRequest, obj: Game, form: forms.ModelForm, change: bool
    ) -> None:
        # Staff act on the host's behalf, so the service's events and checks apply.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            try:
                services.game_update(game_id=obj.pk, actor=obj.host, **changes)
            except errors.DomainError as exc:
                self.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
        obj.refresh_from_db()

    @admin.action(description="Lock picks now")
    def lock_picks(self, request: HttpRequest, queryset: QuerySet[Game]) -> None:
        locked, skipped = 0, 0
        for game in queryset.select_related("host"):
            if game.status not in services.PICKABLE_STATUSES:
                skipped += 1
                continue
            try:
                services.game_update(game_id=game.pk, actor=game.host, status=GameStatus.LIVE)
            except errors.DomainError:
                skipped += 1
            else:
                locked += 1
        self.message_user(request, f"Locked {locked} game(s).")
        if skipped:
            self.message_user(
                request, f"Skipped {skipped} game(s) already live or completed.", messages.WARNING
            )


@admin.register(GameParticipant)
class GameParticipantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "game", "joined_at")
    list_filter = ("game__status", "game")
    list_select_related = ("user", "game")
    search_fields = ("user__username", "user__display_name", "game__name")


@admin.register(Pick)
class PickAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("user", "game", "category", "nomination", "updated_at")
    list_filter = ("game", "category__ceremony")
    list_select_related = ("user", "game", "category", "nomination")
    search_fields = ("user__username", "user__display_name", "game__name", "category__name")


@admin.register(GameEvent)
class GameEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("game", "seq", "type", "created_at")
    list_filter = ("type", "game")
    list_select_related = ("game",)
    search_fields = ("game__name", "type")
