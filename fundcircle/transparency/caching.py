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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
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
    parts, timestamps = tuple(parts), tuple(timestamps)
    try:
        return _freshness_memo(kind, parts, timestamps)
    except TypeError:  # an unhashable part: compute it directly
        return _freshness(kind, parts, timestamps)


def _freshness(kind: str, parts: tuple[Any, ...], timestamps: tuple[dt.datetime | None, ...]) -> Freshness:
    digest = hashlib.sha256()
    for part in (kind, _app_version(), *parts):
        digest.update(repr(part).encode())
        digest.update(b"\x1f")
    stamps = [t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc) for t in timestamps if t is not None]
    return Freshness(digest.hexdigest()[:32], max(stamps) if stamps else None)


# the same state arrives many times a second under load; hashing the tuple is cheaper than the digest
_freshness_memo = lru_cache(maxsize=1024)(_freshness)


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


# -- rendered pages for anonymous visitors ---------------------------------------------------------

#: rendered anonymous pages kept per process (each entry is one page's HTML)
DEFAULT_PAGE_CACHE_ENTRIES = 256


class PageCache:
    """A small in-process LRU of rendered anonymous public pages, keyed by (page kind, full path with
    query string, ETag). The ETag is derived from every source the page reads, so a stale entry is
    never served: when the data changes the key changes and the old entry simply ages out. Each
    gunicorn worker keeps its own; all state stays in the database."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._pages: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            html = self._pages.get(key)
            if html is not None:
                self._pages.move_to_end(key)
            return html

    def put(self, key: tuple[str, str, str], html: str) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._pages[key] = html
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_entries:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


def page_cache() -> PageCache:
    cache = current_app.extensions.get("fundcircle.pagecache")
    if cache is None:
        cache = current_app.extensions["fundcircle.pagecache"] = PageCache(
            int(current_app.config.get("PUBLIC_PAGE_CACHE_ENTRIES", DEFAULT_PAGE_CACHE_ENTRIES)))
    return cache


def _may_reuse() -> bool:
    """Only plain anonymous visits share renders: no signed-in user and nothing in the visitor's
    session that a page could show (a flash message) — a CSRF token is not shown on a page
    without a form (checked on the HTML when storing)."""
    return is_anonymous() and not (set(session.keys()) - {"csrf_token"})


def public_page(kind: str, parts: Sequence[Any], stamps: Iterable[dt.datetime | None],
                render: Callable[[], tuple[str, int]]) -> Response:
    """Answer a public page: 304 when the visitor's copy is current, the stored render when another
    anonymous visitor already caused one for the same data, else ``render()`` (and store it).

    ``parts``/``stamps`` come from ``queries.public_state`` (plus whatever else keys the page);
    ``render`` returns (html, status) and is only called when needed.
    """
    fresh = freshness(kind, parts, stamps)
    if (early := not_modified(fresh)) is not None:
        return early
    key = (kind, request.full_path, fresh.etag)
    reusable = _may_reuse() and request.method == "GET"
    if reusable and (html := page_cache().get(key)) is not None:
        return apply(current_app.response_class(html, mimetype="text/html"), fresh)
    html, status = render()
    response = apply(current_app.response_class(html, status=status, mimetype="text/html"), fresh)
    # a form's CSRF token would tie the HTML to one visitor's session; never share such a page
    # nor a page that printed this response's CSP nonce (a stored copy would carry a stale one)
    if reusable and status == 200 and 'name="csrf_token"' not in html and _may_reuse() \
            and g.get("_csp_nonce") is None:
        page_cache().put(key, html)
    return response


def private_page(html: str, status: int = 200) -> Response:
    """A public page rendered for a signed-in visitor: no validators, never stored anywhere
    (``fundcircle.security`` adds ``no-store``)."""
    response = current_app.response_class(html, status=status, mimetype="text/html")
    response.vary.add("Cookie")
    return response


# -- a very short memo of the pre-render state -----------------------------------------------------

class StateMemo:
    """Per-process memo of ``queries.public_state`` results for ``ttl_s`` seconds (micro-caching).

    Under load, many anonymous requests for the same circle arrive within one second; they share
    one read of the state instead of each running the queries. The cost is that a change becomes
    visible up to ``ttl_s`` later — far inside the ``max-age`` every shared cache is already
    allowed. A page rendered in that window shows the newer data under the older key, never the
    reverse, so the page cache never serves older data than the database held ``ttl_s`` ago.
    """

    def __init__(self, ttl_s: float, max_entries: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: Any, load: Callable[[], Any]) -> Any:
        if self.ttl_s <= 0:
            return load()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def state_memo() -> StateMemo:
    memo = current_app.extensions.get("fundcircle.statememo")
    if memo is None:
        # tests change data and look at once, so they get no memo unless they ask for one
        default_ttl_s = 0.0 if current_app.config.get("ENVIRONMENT") == "testing" else 1.0
        memo = current_app.extensions["fundcircle.statememo"] = StateMemo(
            float(current_app.config.get("PUBLIC_STATE_TTL_S", default_ttl_s)))
    return memo
