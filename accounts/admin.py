from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from accounts.models import GuestPass, User


@admin.register(User)
class EnvelopeUserAdmin(UserAdmin):
    """Django's user admin plus the name other players see."""

    fieldsets = (
        *UserAdmin.fieldsets,
        ("Envelope", {"fields": ("display_name", "is_guest")}),
    )
    add_fieldsets = (
        *UserAdmin.add_fieldsets,
        ("Envelope", {"fields": ("display_name",)}),
    )
    list_display = (
        "username",
        "display_name",
        "email",
        "is_staff",
        "is_guest",
        "is_active",
        "date_joined",
    )
    list_filter = (*UserAdmin.list_filter, "is_guest")
    search_fields = ("username", "display_name", "email")


@admin.register(GuestPass)
class GuestPassAdmin(admin.ModelAdmin):
    """Who joined which game as a guest, by name. Read-only, and the PIN hash
    is never shown: it is the guest's password."""

    list_display = ("name_key", "game", "user", "created_at")
    search_fields = ("name_key", "user__username", "game__access_code")
    fields = ("game", "user", "name_key", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
