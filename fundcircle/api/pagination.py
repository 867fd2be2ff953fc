"""Page-number pagination for the JSON API: ``?page=N&per_page=M`` in, ``meta`` and ``links`` out.

Bad values are a 422 with the field named (never a silent default): a client that asks for
``per_page=1000`` learns the limit instead of quietly getting 100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import request, url_for

from fundcircle.errors import ValidationError

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100
#: pages beyond this are refused: nothing we publish is that long, and it bounds OFFSET
MAX_PAGE = 100_000


def int_arg(name: str, default: int | None, *, low: int, high: int) -> int | None:
    """A whole-number query argument within [low, high]; ValidationError naming it otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise ValidationError(f"Query parameter {name!r} must be a whole number.", field_errors={name: ["not a number"]})
    value = int(text)
    if not low <= value <= high:
        raise ValidationError(f"Query parameter {name!r} must be between {low} and {high}.",
                              field_errors={name: [f"between {low} and {high}"]})
    return value


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @classmethod
    def from_request(cls) -> PageRequest:
        page = int_arg("page", 1, low=1, high=MAX_PAGE)
        per_page = int_arg("per_page", DEFAULT_PER_PAGE, low=1, high=MAX_PER_PAGE)
        assert page is not None and per_page is not None
        return cls(page, per_page)


def paginated(items: list[Any], total: int, page: PageRequest, endpoint: str, **url_values: Any) -> dict[str, Any]:
    """The list envelope: ``{"data": [...], "meta": {...}, "links": {...}}``.

    ``url_values`` are the endpoint's path arguments and active filters; links keep them so a
    client can follow ``next`` without rebuilding the query."""
    last = max(1, -(-total // page.per_page))
    kept = {k: v for k, v in url_values.items() if v is not None}

    def link(n: int) -> str:
        return url_for(endpoint, **kept, page=n, per_page=page.per_page)

    return {
        "data": items,
        "meta": {"page": page.page, "per_page": page.per_page, "total": total, "pages": last},
        "links": {
            "self": link(page.page),
            "first": link(1),
            "last": link(last),
            "next": link(page.page + 1) if page.page < last else None,
            "prev": link(page.page - 1) if 1 < page.page <= last + 1 else None,
        },
    }
