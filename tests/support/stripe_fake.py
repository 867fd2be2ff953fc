"""Helpers for tests of Stripe contributions: the app served over real HTTP on loopback, wired to
a running ``FakeStripe`` (the app calls the fake's API; the fake posts webhooks to the app)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from fundcircle.integrations.fakes.stripe import FakeStripe


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def stripe_world(app: Flask) -> Iterator[tuple[FakeStripe, str]]:
    """A fake Stripe and the live app pointed at each other; yields (fake, app base URL)."""
    with FakeStripe() as fake, serve(app) as base_url:
        fake.webhook_url = f"{base_url}/webhooks/stripe"
        app.config.update(STRIPE_SECRET_KEY=fake.api_key, STRIPE_API_BASE=fake.url,
                          STRIPE_WEBHOOK_SECRET=fake.webhook_secret)
        yield fake, base_url
