"""The demo as ``fundcircle up`` serves it, on loopback for browser journeys: the migrated test
database seeded with the demo circle, the app on a real HTTP server, and the local fake Stripe and
fake Open Collective started by the same function ``up`` uses (so webhooks travel over HTTP too)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.live_server import HOST, serve


@dataclass(frozen=True)
class LiveDemo:
    app: Any
    url: str  # the app, e.g. http://127.0.0.1:40123
    fake_stripe: Any  # FakeStripe
    fake_oc: Any  # FakeOpenCollective


@pytest.fixture
def live_demo(app) -> Iterator[LiveDemo]:  # type: ignore[no-untyped-def]
    from fundcircle.cli import _seed_demo, start_offline_fakes
    from fundcircle.treasury.demo import stop_local_fake

    assert _seed_demo(app), "the test database already had a circle"
    # serve first: the fakes must know the app's port for their webhooks
    with serve(app, name="live-demo") as url:
        fake_stripe, fake_oc = start_offline_fakes(app, HOST, urlsplit(url).port)
        assert fake_stripe is not None and fake_oc is not None, "the test app must run without Stripe/OC keys"
        try:
            yield LiveDemo(app=app, url=url, fake_stripe=fake_stripe, fake_oc=fake_oc)
        finally:
            fake_stripe.stop()
            stop_local_fake(app)
