"""Small query helpers for queries about thousands of rows by id (every game
of a ceremony, every signed-in user of a server process)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL


def id_set(ids: list[int]) -> Any:
    """The right-hand side of `pk__in=` for a set of ids that may run to
    thousands (every party of a ceremony).

    On PostgreSQL it is one array parameter: an `IN` list of a thousand
    parameters cost a reveal tens of milliseconds to build and quote
    (bench/README.md). Elsewhere, the list itself.
    """
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (list(ids),))
    return list(ids)


def in_ids(column: str, ids: list[int]) -> tuple[str, list[Any]]:
    """`column IN ids` for a statement written out, as SQL and its
    parameters: one array parameter on PostgreSQL (as `id_set`), else a
    placeholder per id."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [list(ids)]
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
