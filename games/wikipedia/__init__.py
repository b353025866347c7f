"""Import an Academy Awards ceremony from its Wikipedia page (docs/api.md,
`POST /api/ceremonies/import`; `manage.py import_wikipedia`; the admin's
"Import from Wikipedia").

`parse` reads wikitext into the ceremony file's format, `fetch` gets a
page's wikitext from the MediaWiki API. Every failure is a
games.errors.ImportInvalid whose message names the part at fault.
"""

from __future__ import annotations

from typing import Any

from games.wikipedia.fetch import fetch_page, page_from_url
from games.wikipedia.parse import ceremony_from_wikitext

__all__ = ["ceremony_from_url", "ceremony_from_wikitext"]


def ceremony_from_url(url: str) -> dict[str, Any]:
    """Validated ceremony data from a Wikipedia article URL."""
    fetched = fetch_page(page_from_url(url))
    return ceremony_from_wikitext(fetched.wikitext, page_title=fetched.title)
