"""Game statuses on the pages have one home (games.models): the home page's
chips and the data block the scripts read (static/js/api.js) come from it."""

from __future__ import annotations

import json
import re

from games.models import PICKABLE_STATUSES, STATUS_LABELS, GameStatus
from tests.factories import GameFactory, make_ceremony


def test_pages_render_the_labels_and_give_them_to_the_scripts(client, db):
    game = GameFactory(ceremony=make_ceremony(categories=1), status=GameStatus.LIVE)
    client.force_login(game.host)
    body = client.get("/").content.decode()
    assert '<span class="status status-live">Picks locked</span>' in body
    block = re.search(r'<script id="game-statuses" type="application/json">(.*?)</script>', body)
    assert json.loads(block.group(1)) == {
        "labels": {str(status): label for status, label in STATUS_LABELS.items()},
        "pickable": ["SETUP", "OPEN"],
    }
    assert set(STATUS_LABELS) == set(GameStatus) and set(PICKABLE_STATUSES) < set(GameStatus)
