"""HTTP caching for the public pages: weak ETags and Last-Modified from the data behind a page.

The validators are computed *before* rendering, from a few cheap queries (see
``queries.circle_freshness``), so a revalidation that matches costs no template work:

* ETag (weak): a digest of the page kind, the app version and a fingerprint of every source the
  page reads (the circle's audit log position, the ledger head, the stored results, each round's
  current phase). Weak, because two responses with the same data are equivalent, not
  byte-identical (the CSP nonce differs per response).
* Last-Modified: the newest of those sources' timestamps, including the phase boundaries that
  have passed (a page changes when a round moves phase even though no row changed).

Shared caching is only for anonymous visitors: ``Cache-Control: public`` is set only when the
request carries no signed-in user and the response sets no cookie; signed-in pages keep the
``no-store`` that ``fundcircle.security`` gives them, and every public page says ``Vary: Cookie``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Response, current_app, g, request, session

#: seconds a shared cache or browser may reuse an anonymous public page without asking again
DEFAULT_MAX_AGE_S = 60


@lru_cache(maxsize=1)
def _app_version() -> str:
    # Part of every ETag, so a deploy that changes templates invalidates what clients hold.
    try:
        return version("fundcircle")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "dev"


@dataclass(frozen=True)
class Freshness:
    """Validators for one page: ``etag`` (the opaque value, without ``W/`` and quotes) and
    ``last_modified`` (timezone-aware UTC, or None when the page has no dated source)."""

    etag: str
    last_modified: dt.datetime | None


def freshness(kind: str, parts: Iterable[Any], timestamps: Iterable[dt.datetime | None]) -> Freshness:
    """Validators from a page ``kind`` (e.g. "ledger"), the fingerprint ``parts`` and the
    ``timestamps`` of its sources (None entries are ignored)."""
    digest = hashlib.sha256()
    for part in (kind, _app_version(), *parts):
        digest.update(repr(part).encode())
        digest.update(b"\x1f")
    stamps = [t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in timestamps if t is not None]
    return Freshness(digest.hexdigest()[:32], max(stamps) if stamps else None)


def is_anonymous() -> bool:
    return g.get("user") is None


def not_modified(fresh: Freshness) -> Response | None:
    """A 304 response when the anonymous visitor's copy is current, else None (render the page).

    If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2); the weak comparison applies.
    Signed-in visitors always get a full page (their pages differ per person and are never stored).
    """
    if not is_anonymous() or request.method not in ("GET", "HEAD"):
        return None
    if request.if_none_match:
        if not request.if_none_match.contains_weak(fresh.etag):
            return None
    elif request.if_modified_since is None or fresh.last_modified is None:
        return None
    elif fresh.last_modified.replace(microsecond=0) > request.if_modified_since:
        return None
    response = current_app.response_class(status=304)
    return apply(response, fresh)


def apply(response: Response, fresh: Freshness, max_age_s: int = DEFAULT_MAX_AGE_S) -> Response:
    """Set the validators and the cache policy on a public page's response."""
    response.vary.add("Cookie")
    if not is_anonymous() or response.status_code >= 400:
        return response  # security.py marks signed-in responses no-store; errors carry no validators
    response.set_etag(fresh.etag, weak=True)
    if fresh.last_modified is not None:
        response.last_modified = fresh.last_modified
    if session.modified:
        # a cookie is about to be set (e.g. a flash message was shown): never share this response
        response.cache_control.no_store = True
        return response
    response.cache_control.public = True
    response.cache_control.max_age = max_age_s
    return response
