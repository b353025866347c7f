"""The admin site, with its login behind the same rate limits as the API's
sign-in (accounts.limits): a staff password is the one most worth guessing."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from accounts import limits


class EnvelopeAdminSite(admin.AdminSite):
    site_header = "Envelope administration"
    site_title = "Envelope admin"
    index_title = "Ceremonies, games and winners"

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.method != "POST":
            return super().login(request, extra_context)
        counters = limits.sign_in_counters(request, request.POST.get("username", ""))
        wait = limits.seconds_blocked(request, counters)
        if wait is not None:
            return too_many_attempts(wait)
        response = super().login(request, extra_context)
        if not (request.user.is_active and request.user.is_staff):
            limits.count(request, counters)
        return response


def too_many_attempts(wait: int) -> HttpResponse:
    page = render_to_string(
        "pages/error.html",
        {
            "status": 429,
            "title": "Too many sign-in attempts",
            "message": f"Try again in {max(1, round(wait / 60))} minutes.",
        },
    )
    response = HttpResponse(page, status=429)
    response["Retry-After"] = str(wait)
    return response
