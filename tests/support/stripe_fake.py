"""Helpers for tests of Stripe contributions: the app served over real HTTP on loopback, wired to
a running ``FakeStripe`` (the app calls the fake's API; the fake posts webhooks to the app)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from fundcircle.integrations.fakes.stripe import FakeStripe
from tests.support.live_server import serve


@contextmanager
def stripe_world(app: Flask) -> Iterator[tuple[FakeStripe, str]]:
    """A fake Stripe and the live app pointed at each other; yields (fake, app base URL)."""
    with FakeStripe() as fake, serve(app, quiet=True) as base_url:
        fake.webhook_url = f"{base_url}/webhooks/stripe"
        app.config.update(STRIPE_SECRET_KEY=fake.api_key, STRIPE_API_BASE=fake.url,
                          STRIPE_WEBHOOK_SECRET=fake.webhook_secret)
        yield fake, base_url
