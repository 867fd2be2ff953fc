"""URL converters shared by every blueprint."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

from fundcircle.db import MAX_ROW_ID


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in every route: an id beyond the database's integer range matches no route (404)
    instead of reaching PostgreSQL as an out-of-range parameter (a 500)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)
