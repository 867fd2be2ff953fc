"""The demo as ``fundcircle up`` serves it, on loopback for browser journeys: the migrated test
database seeded with the demo circle, the app on a real HTTP server, and the local fake Stripe and
fake Open Collective started by the same function ``up`` uses (so webhooks travel over HTTP too)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class LiveDemo:
    app: Any
    url: str  # the app, e.g. http://127.0.0.1:40123
    fake_stripe: Any  # FakeStripe
    fake_oc: Any  # FakeOpenCollective


@pytest.fixture
def live_demo(app) -> Iterator[LiveDemo]:  # type: ignore[no-untyped-def]
    from werkzeug.serving import make_server

    from fundcircle.cli import _seed_demo, start_offline_fakes
    from fundcircle.treasury.demo import stop_local_fake

    assert _seed_demo(app), "the test database already had a circle"
    host = "127.0.0.1"
    # bind first: the fakes must know the app's port for their webhooks
    server = make_server(host, 0, app, threaded=True)
    port = server.server_port
    fake_stripe, fake_oc = start_offline_fakes(app, host, port)
    assert fake_stripe is not None and fake_oc is not None, "the test app must run without Stripe/OC keys"
    thread = threading.Thread(target=server.serve_forever, name="live-demo", daemon=True)
    thread.start()
    try:
        yield LiveDemo(app=app, url=f"http://{host}:{port}", fake_stripe=fake_stripe, fake_oc=fake_oc)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        fake_stripe.stop()
        stop_local_fake(app)
