"""Django admin for Envelope (README, Pages).

Every write here goes through games.services, exactly as the API's do:
marking a winner is validated, recorded as game events and broadcast;
adding or deleting a category or a nominee keeps the score counters and the
boards right, or is refused once picks are locked. A refusal is an error
message on the page, never a half-done write. Fields that only services may
change (winner timestamps, status, seq) are read-only, and participants,
picks and events are shown read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db import models
from django.db.models import Count, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import formats, timezone

from games import errors, selectors, services
from games.admin_import import import_urls
from games.models import (
    PICKABLE_STATUSES,
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


def _refusal(model_admin: admin.ModelAdmin, request: HttpRequest, exc: errors.DomainError) -> None:
    model_admin.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)


def _try(model_admin: admin.ModelAdmin, request: HttpRequest, write: Callable[[], Any]) -> Any:
    """The service call's result, or None with its refusal shown on the page."""
    try:
        return write()
    except errors.DomainError as exc:
        _refusal(model_admin, request, exc)
        return None


class ServiceWritesMixin:
    """Deletes and the inline's rows go through the services the admin names
    (`delete_through_service`, `inline_create`, `inline_update`,
    `inline_delete`). A refusal on the delete page sends the user back to
    the object's page with the reason; one in the inline is a message.

    The bulk "delete selected" action is off: Django counts as deleted every
    row it was given, refused or not.
    """

    def delete_through_service(self, pk: int) -> None:
        raise NotImplementedError

    def inline_create(self, obj: Any) -> Any:
        raise NotImplementedError

    def inline_update(self, pk: int, changes: dict[str, Any]) -> Any:
        raise NotImplementedError

    def inline_delete(self, pk: int) -> Any:
        raise NotImplementedError

    def save_formset(
        self, request: HttpRequest, form: forms.ModelForm, formset: BaseInlineFormSet, change: bool
    ) -> None:
        formset.save(commit=False)  # fills new_objects, changed_objects, deleted_objects
        for obj in formset.deleted_objects:
            _try(self, request, lambda obj=obj: self.inline_delete(obj.pk))
        for obj, fields in formset.changed_objects:
            changes = {field: getattr(obj, field) for field in fields}
            _try(
                self, request, lambda obj=obj, changes=changes: self.inline_update(obj.pk, changes)
            )
        for obj in formset.new_objects:
            created = _try(self, request, lambda obj=obj: self.inline_create(obj))
            if created is not None:
                obj.pk = created.pk  # for the change message

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple:
        # The service deletes the rows that go with the object (picks, which
        # no admin may delete by hand) and keeps their counters right.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_through_service(obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for pk in queryset.values_list("pk", flat=True):
            self.delete_through_service(pk)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        try:
            # Django's view is atomic: a refusal also rolls back its log entry.
            return super().delete_view(request, object_id, extra_context)
        except errors.DomainError as exc:
            _refusal(self, request, exc)
            opts = self.model._meta
            url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[unquote(object_id)]
            )
            return HttpResponseRedirect(url)


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
class CeremonyAdmin(ServiceWritesMixin, admin.ModelAdmin):
    list_display = ("name", "date", "category_count", "revealed_count", "created_at")
    search_fields = ("name",)
    date_hierarchy = "date"
    inlines = [CategoryInline]

    def get_urls(self) -> list[Any]:
        # "Import from Wikipedia" (games.admin_import), linked from the list's tools.
        return [*import_urls(self), *super().get_urls()]

    def save_model(
        self, request: HttpRequest, obj: Ceremony, form: forms.ModelForm, change: bool
    ) -> None:
        # Categories are added on the category page (category_create).
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            _try(self, request, lambda: services.ceremony_update(ceremony_id=obj.pk, **changes))
        else:
            data = {"name": obj.name, "date": obj.date, "categories": []}
            obj.pk = services.ceremony_create(data=data).pk
        obj.refresh_from_db()

    # The categories inline edits names and deletes; it cannot add.
    def inline_update(self, pk: int, changes: dict[str, Any]) -> Category:
        return services.category_update(category_id=pk, **changes)

    def inline_delete(self, pk: int) -> None:
        services.category_delete(category_id=pk)

    def delete_through_service(self, pk: int) -> None:
        services.ceremony_delete(ceremony_id=pk)

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

    def clean_ceremony(self) -> Ceremony:
        # Only a new category has the field; the service checks again under lock.
        ceremony = self.cleaned_data["ceremony"]
        if selectors.ceremony_ballot_locked(ceremony_id=ceremony.pk):
            raise forms.ValidationError(services.CATEGORY_ADD_REFUSED, code=errors.PicksLocked.code)
        return ceremony

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
class CategoryAdmin(ServiceWritesMixin, admin.ModelAdmin):
    form = CategoryAdminForm
    # The winner's title and a short time: the full credit line and date
    # pushed "Revealed at" out of view on a laptop screen.
    list_display = ("name", "ceremony", "order", "points", "winner_title", "revealed")
    list_display_links = ("name",)
    list_filter = ("ceremony", RevealedFilter)
    list_select_related = ("ceremony", "winner")
    search_fields = ("name", "ceremony__name", "nominations__title")
    inlines = [NominationInline]
    actions = ["undo_winner"]

    @admin.display(description="Winner", ordering="winner__title")
    def winner_title(self, obj: Category) -> str:
        return obj.winner.title if obj.winner else "-"

    @admin.display(description="Revealed at", ordering="revealed_at")
    def revealed(self, obj: Category) -> str:
        if obj.revealed_at is None:
            return "-"
        return formats.date_format(timezone.localtime(obj.revealed_at), "M j, H:i")

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
            fields = {name: getattr(obj, name) for name in ("name", "order", "points")}
            obj.pk = services.category_create(ceremony_id=obj.ceremony_id, **fields).pk
            obj.refresh_from_db()
            return
        # The plain fields first, then the service marks or clears the winner
        # (its events go out on commit). A refusal means someone else changed
        # the category since the form was validated.
        plain = {name: form.cleaned_data[name] for name in form.changed_data if name != "winner"}
        if plain:
            _try(self, request, lambda: services.category_update(category_id=obj.pk, **plain))
        if "winner" in form.changed_data:
            winner = form.cleaned_data["winner"]
            if winner is None:
                _try(self, request, lambda: services.category_undo(category_id=obj.pk))
            else:
                _try(
                    self,
                    request,
                    lambda: services.category_reveal(category_id=obj.pk, nomination_id=winner.pk),
                )
        obj.refresh_from_db()

    # The nominations inline.
    def inline_create(self, obj: Nomination) -> Nomination:
        fields = {name: getattr(obj, name) for name in ("title", "subtitle", "image_url", "order")}
        return services.nomination_create(category_id=obj.category_id, **fields)

    def inline_update(self, pk: int, changes: dict[str, Any]) -> Nomination:
        return services.nomination_update(nomination_id=pk, **changes)

    def inline_delete(self, pk: int) -> None:
        services.nomination_delete(nomination_id=pk)

    def delete_through_service(self, pk: int) -> None:
        services.category_delete(category_id=pk)

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
        if value != self.instance.picks_lock_at and self.instance.status not in PICKABLE_STATUSES:
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

    def has_delete_permission(self, request: HttpRequest, obj: Game | None = None) -> bool:
        # A game always has players (its host at least), whose rows only
        # services delete; Django would refuse the delete page for them anyway.
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
            _try(
                self,
                request,
                lambda: services.game_update(game_id=obj.pk, actor=obj.host, **changes),
            )
        obj.refresh_from_db()

    @admin.action(description="Lock picks now")
    def lock_picks(self, request: HttpRequest, queryset: QuerySet[Game]) -> None:
        locked, skipped = 0, 0
        for game in queryset.select_related("host"):
            if game.status not in PICKABLE_STATUSES:
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
