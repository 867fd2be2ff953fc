"""The ``fake`` fixture: the fake Open Collective with the OC world's collective and token
(tests/fixtures/opencollective/world.py), running on loopback for one test. Import it into a test
module to use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fundcircle.integrations.fakes.opencollective import FakeOpenCollective
from tests.fixtures.opencollective.world import start_fake


@pytest.fixture
def fake() -> Iterator[FakeOpenCollective]:
    server = start_fake()
    yield server
    server.stop()
