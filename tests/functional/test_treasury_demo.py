"""The demo's treasury: one award paid and reconciled, one approved, one planted mismatch with a
proposed correction; the fake Open Collective's state persists, so "re-check" works afterwards."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from fundcircle.circles.models import Circle
from fundcircle.db import utcnow
from fundcircle.demo import DEMO_SLUG, seed_demo
from fundcircle.extensions import db
from fundcircle.treasury import demo as treasury_demo
from fundcircle.treasury import queries
from fundcircle.treasury.models import AwardState, PayoutRecord


def test_demo_story_and_recheck_against_the_persisted_fake(app: Any) -> None:
    with app.app_context():
        seed_demo(db.session, utcnow())
        db.session.commit()
        circle = db.session.scalar(sa.select(Circle).where(Circle.slug == DEMO_SLUG))
        states = [s.state for s in queries.award_statuses(db.session, circle.id)]
        assert states == [AwardState.PAID, AwardState.APPROVED, AwardState.AMOUNT_DIFFERS]
        kinds = sorted(p.kind for p in queries.open_proposals(db.session, circle.id))
        assert kinds == ["record_payout", "release_remainder", "reverse_payout"]
        assert queries.current_report(db.session, circle.id).unexplained == []
        assert app.config["OPENCOLLECTIVE_API_URL"].startswith("https://api.opencollective.com")  # seeding fake gone
        approved = queries.award_statuses(db.session, circle.id)[1]

    # later (e.g. `fundcircle up`): the fake comes back with the seeded state
    fake = treasury_demo.local_fake(app, only_if_seeded=True)
    assert fake is not None
    try:
        payout_id = fake.find_expense(approved.oc_expense_id)["publicId"]
        fake.process(payout_id, "PAY", {})
        from fundcircle.treasury import operations as ops

        with app.app_context():
            circle = db.session.scalar(sa.select(Circle).where(Circle.slug == DEMO_SLUG))
            award = queries.award_in_circle(db.session, circle.id, approved.award_id)
            ops.recheck_award(db.session, circle, award, actor=None, client=ops.make_client(app.config), now=utcnow())
            db.session.commit()
            assert db.session.scalar(sa.select(PayoutRecord.oc_status).where(
                PayoutRecord.award_id == approved.award_id)) == "PAID"
            state = {s.award_id: s.state for s in queries.award_statuses(db.session, circle.id)}
            assert state[approved.award_id] is AwardState.PAID_NOT_IN_LEDGER
    finally:
        treasury_demo.stop_local_fake(app)


def test_a_new_demo_database_starts_a_new_fake_collective(app: Any, tmp_path: Any) -> None:
    """A state file left from an earlier demo database must not leak old expenses into the new one."""
    from fundcircle.integrations.fakes.opencollective import FakeOpenCollective

    stale = FakeOpenCollective(state_path=app.config["INSTANCE_PATH"] / treasury_demo.FAKE_STATE_FILE)
    stale.add_account(treasury_demo.DEMO_OC_SLUG)
    stale.state["expenses"].append({"id": "old", "publicId": "ex_old", "legacyId": 1, "status": "PAID",
                                    "customData": {"fundcircle_award_id": 1, "fundcircle_circle_id": 1},
                                    "reference": "fundcircle:award:1:1", "account": treasury_demo.DEMO_OC_SLUG})
    stale.save()
    with app.app_context():
        seed_demo(db.session, utcnow())
        db.session.commit()
        circle = db.session.scalar(sa.select(Circle).where(Circle.slug == DEMO_SLUG))
        states = [s.state for s in queries.award_statuses(db.session, circle.id)]
        assert states == [AwardState.PAID, AwardState.APPROVED, AwardState.AMOUNT_DIFFERS]
        assert "ex_old" not in {s.oc_expense_id for s in queries.award_statuses(db.session, circle.id)}
