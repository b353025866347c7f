"""The admin's "Import from Wikipedia" page (README, Pages): paste a
ceremony page's URL (or its wikitext), see the preview, then import.

The preview carries the parsed ceremony in the form, so what is imported is
exactly what was shown, even if the page changes in between; it is validated
again as a ceremony file before anything is written. Nothing is written on a
preview or an error, and no winner is ever set (games.wikipedia.parse).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from games import errors, services
from games.ceremony_file import CeremonyFileError, ceremony_document, validate_ceremony
from games.wikipedia import ceremony_from_url, ceremony_from_wikitext

URL_NAME = "games_ceremony_import_wikipedia"
TEMPLATE = "admin/games/ceremony/import_wikipedia.html"


class WikipediaSourceForm(forms.Form):
    wikipedia_url = forms.CharField(
        label="Wikipedia page URL",
        required=False,
        max_length=2000,
        widget=forms.URLInput(
            attrs={"size": 80, "placeholder": "https://en.wikipedia.org/wiki/97th_Academy_Awards"}
        ),
    )
    wikitext = forms.CharField(
        label="or the page's wikitext",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="For a page saved earlier; used only when no URL is given.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("wikipedia_url") and not (cleaned.get("wikitext") or "").strip():
            raise forms.ValidationError("Paste a Wikipedia page URL or the page's wikitext.")
        return cleaned


def import_urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """The page's URL, for CeremonyAdmin.get_urls (staff only, CSRF-protected)."""
    view = model_admin.admin_site.admin_view(lambda request: import_view(model_admin, request))
    return [path("import-wikipedia/", view, name=URL_NAME)]


def import_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not model_admin.has_add_permission(request):
        raise PermissionDenied
    form = WikipediaSourceForm(request.POST if request.method == "POST" else None)
    context: dict[str, Any] = {}
    if request.method == "POST" and "_import" in request.POST:
        response = _import(model_admin, request)
        if response is not None:
            return response
    elif request.method == "POST" and form.is_valid():
        context.update(_preview(model_admin, request, form.cleaned_data))
    return _render(model_admin, request, form, context)


def _preview(
    model_admin: admin.ModelAdmin, request: HttpRequest, source: dict[str, Any]
) -> dict[str, Any]:
    try:
        if source["wikipedia_url"]:
            data = ceremony_from_url(source["wikipedia_url"])
        else:
            data = ceremony_from_wikitext(source["wikitext"])
    except errors.DomainError as exc:
        model_admin.message_user(request, f"{exc.code}: {exc.message}", messages.ERROR)
        return {}
    document = ceremony_document(data)
    return {
        "preview": document,
        "preview_json": json.dumps(document, ensure_ascii=False),
        "nomination_count": sum(len(c["nominations"]) for c in document["categories"]),
    }


def _import(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse | None:
    """The previewed ceremony written, then its page; None (and a message) if refused."""
    try:
        data = validate_ceremony(json.loads(request.POST.get("document", "")))
    except (json.JSONDecodeError, CeremonyFileError) as exc:
        model_admin.message_user(
            request, f"IMPORT_INVALID: the previewed ceremony is invalid ({exc})", messages.ERROR
        )
        return None
    try:
        with transaction.atomic():
            ceremony = services.ceremony_create(data=data)
    except errors.DomainError as exc:
        model_admin.message_user(request, f"IMPORT_INVALID: {exc.message}", messages.ERROR)
        return None
    except IntegrityError:
        model_admin.message_user(
            request,
            f"IMPORT_INVALID: A ceremony named {data['name']!r} on {data['date']} already exists.",
            messages.ERROR,
        )
        return None
    model_admin.log_addition(request, ceremony, [{"added": {}}])
    model_admin.message_user(
        request,
        f"Imported {ceremony.name!r}: {len(data['categories'])} categories, no winners.",
        messages.SUCCESS,
    )
    opts = model_admin.model._meta
    return HttpResponseRedirect(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[ceremony.pk])
    )


def _render(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    form: WikipediaSourceForm,
    context: dict[str, Any],
) -> TemplateResponse:
    return TemplateResponse(
        request,
        TEMPLATE,
        {
            **model_admin.admin_site.each_context(request),
            "title": "Import a ceremony from Wikipedia",
            "opts": model_admin.model._meta,
            "form": form,
            **context,
        },
    )
