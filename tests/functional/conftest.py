from __future__ import annotations

import pytest

from tests.support import factories as f


@pytest.fixture
def world(app):  # type: ignore[no-untyped-def]
    """A circle with a facilitator and a published round whose call is open [T0, T0+10d)."""
    from fundcircle.extensions import db

    with app.app_context():
        circle = f.create_circle(db.session)
        round_ = f.create_round(db.session, circle, required_fields=["description", "budget_lines"])
        db.session.commit()
        return {"slug": circle.slug, "round_id": round_.id, "circle_id": circle.id}
