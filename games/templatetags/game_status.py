"""Game statuses on the pages: the labels and which statuses take picks,
from games.models, for templates (`status_label`) and for the scripts
(`game_statuses_json`, read by static/js/api.js)."""

from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString

from games.models import PICKABLE_STATUSES, STATUS_LABELS

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@register.simple_tag
def game_statuses_json() -> SafeString:
    """A JSON data block (not script to CSP), like the pages' initial data."""
    data = {
        "labels": {str(status): label for status, label in STATUS_LABELS.items()},
        "pickable": [str(status) for status in PICKABLE_STATUSES],
    }
    return json_script(data, "game-statuses")
