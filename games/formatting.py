from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z suffix, as every time in the contract."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_text(value: Any) -> str:
    """Compact JSON text, as every frame is stored and sent (encoded once,
    written to many sockets)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
