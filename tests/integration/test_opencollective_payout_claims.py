"""The payout request claims the award's payout row and commits it before calling Open Collective
with no transaction open, then records OC's answer (on both databases).

On SQLite a write transaction holds the database's only write lock, so it must not stay open while
OC answers; on PostgreSQL the claim (not a row lock held across the call) keeps a second treasurer
from creating a second OC expense, since OC has no idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlalchemy as sa

from fundcircle.audit.models import AuditEvent
from fundcircle.auth import second_factor as sf
from fundcircle.circles.models import Circle
from fundcircle.db import utcnow
from fundcircle.errors import RuleViolation
from fundcircle.extensions import db
from fundcircle.integrations.fakes.opencollective import FAKE_TOKEN
from fundcircle.treasury import operations as ops
from fundcircle.treasury import queries
from fundcircle.treasury.models import PayoutRecord
from tests.fixtures.opencollective.world import NOW, OC_SLUG, build_world, client_for
from tests.support.locks import take_sqlite_write_lock_at_once
from tests.support.opencollective import fake  # noqa: F401  (the fixture)
from tests.support.web import WebClient

SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
BUSY = "being created by someone else right now"


@pytest.fixture
def web(app: Any, fake: Any) -> dict[str, Any]:
    """The world behind the treasurer's dashboard, and a treasurer past the second factor."""
    app.config.update(OPENCOLLECTIVE_API_URL=fake.graphql_url, OPENCOLLECTIVE_TOKEN=FAKE_TOKEN,
                      OPENCOLLECTIVE_WEBSITE_URL=fake.url, OPENCOLLECTIVE_TIMEOUT_S=5,
                      OPENCOLLECTIVE_BACKOFF_S=0.01)
    with app.app_context():
        w = build_world(db.session, [400_00], slug="claim-circle")
        db.session.commit()
        circle_id, award_id, treasurer = w.circle.id, w.awards[0].id, w.treasurer.email
    client = WebClient(app)
    client.sign_in(treasurer)
    page = "/c/claim-circle/treasury"
    found = SECRET_RE.search(client.text("/account/second-factor"))
    assert found is not None
    secret = found.group(1).replace(" ", "")
    assert client.post("/account/second-factor", {"code": sf.totp(secret, utcnow()), "next": page}).status_code == 302
    return {"client": client, "page": page, "circle_id": circle_id, "award_id": award_id,
            "payout_path": f"{page}/awards/{award_id}/payout"}


def payout_row(app: Any) -> Any:
    """The payout row's columns as committed (the app context's session closes with the context)."""
    with app.app_context():
        return db.session.execute(sa.select(PayoutRecord.__table__)).one_or_none()


def test_no_write_is_held_open_while_oc_answers(app: Any, web: dict[str, Any], fake: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """While OC creates the expense, the claimed payout row is committed, another connection can
    take SQLite's write lock at once, and on PostgreSQL nobody holds the row's lock."""
    from fundcircle.treasury import views

    real_client = views._client
    seen: dict[str, object] = {}

    class Probe:
        def __init__(self) -> None:
            self.real = real_client()

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

        def create_grant_expense(self, grant: Any) -> object:
            table = PayoutRecord.__table__
            with db.engine.connect() as conn:  # another connection, as another request would have
                row = conn.execute(sa.select(table.c.claimed_at, table.c.claim_token).where(
                    table.c.award_id == web["award_id"])).one_or_none()
                seen["claimed_and_committed"] = row is not None and row[0] is not None and len(row[1] or "") == 32
                if db.engine.dialect.name == "postgresql":
                    # NOWAIT: fails at once if the request still held the row
                    conn.execute(sa.select(table.c.id).where(table.c.award_id == web["award_id"])
                                 .with_for_update(nowait=True))
                    conn.rollback()
            take_sqlite_write_lock_at_once(db.engine)
            seen["other_writer_went_ahead"] = True
            return self.real.create_grant_expense(grant)

    monkeypatch.setattr(views, "_client", Probe)
    response = web["client"].post(web["payout_path"], {}, form_page=web["page"])
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert seen == {"claimed_and_committed": True, "other_writer_went_ahead": True}
    assert fake.expense_count(OC_SLUG) == 1
    payout = payout_row(app)
    assert payout is not None and payout.oc_public_id and payout.oc_status == "PENDING"
    assert (payout.claimed_at, payout.claim_token) == (None, None)


def test_a_fresh_claim_turns_a_second_request_away(app: Any, web: dict[str, Any], fake: Any) -> None:
    """Another treasurer's request is asking OC right now (its claim is committed): this one is
    refused with a reason and OC is not asked at all."""
    with app.app_context():
        award = queries.award_in_circle(db.session, web["circle_id"], web["award_id"])
        circle = db.session.get(Circle, web["circle_id"])
        ops.claim_payout(db.session, circle, award, actor=None, now=utcnow() - dt.timedelta(seconds=30))
        db.session.commit()
    response = web["client"].post(web["payout_path"], {}, form_page=web["page"])
    assert response.status_code == 409 and BUSY in response.get_data(as_text=True)
    assert fake.expense_count(OC_SLUG) == 0 and fake.requests_by_op.get("createExpense", 0) == 0
    payout = payout_row(app)
    assert payout is not None and payout.claim_token and payout.oc_public_id is None


def test_a_stale_claim_is_taken_over_and_finds_the_first_expense(session: Any, fake: Any) -> None:
    """A request claimed the row and OC created the expense, then it died before recording it: a
    retry within CLAIM_TTL is refused; after it, the retry takes over and the client's lookup finds
    the expense, so OC still holds exactly one."""
    world = build_world(session, [300_00])
    circle, award = world.circle, world.awards[0]
    first = ops.claim_payout(session, circle, award, actor=world.treasurer, now=NOW)
    session.commit()
    created = ops.send_payout(client_for(fake), first)
    assert created.created and fake.expense_count(OC_SLUG) == 1
    # ... and the first request crashes here: its claim stays
    with pytest.raises(RuleViolation, match=BUSY):
        ops.claim_payout(session, circle, award, actor=None, now=NOW + dt.timedelta(minutes=1))
    session.rollback()
    later = NOW + ops.CLAIM_TTL + dt.timedelta(seconds=1)
    payout = ops.create_payout(session, circle, award, actor=None, client=client_for(fake), now=later)
    session.commit()
    assert fake.expense_count(OC_SLUG) == 1 and fake.requests_by_op["createExpense"] == 1
    assert payout.oc_public_id == created.expense.public_id
    assert (payout.claimed_at, payout.claim_token) == (None, None)
    # the first request waking up late records the same expense: nothing changes, nothing breaks
    again = ops.record_payout(session, first, created, actor=None, client=client_for(fake), now=later)
    session.commit()
    assert again.oc_public_id == created.expense.public_id and fake.expense_count(OC_SLUG) == 1


def test_oc_failure_records_the_error_and_releases_the_claim(app: Any, web: dict[str, Any], fake: Any) -> None:
    fake.inject("*", "http_503", times=100)
    response = web["client"].post(web["payout_path"], {}, form_page=web["page"])
    assert response.status_code == 303
    payout = payout_row(app)
    assert payout is not None and "unavailable" in payout.last_error and payout.oc_public_id is None
    assert (payout.claimed_at, payout.claim_token) == (None, None)
    assert fake.expense_count(OC_SLUG) == 0
    with app.app_context():
        actions = db.session.scalars(sa.select(AuditEvent.action).where(
            AuditEvent.circle_id == web["circle_id"])).all()
    assert "treasury.payout.failed" in actions
    # released: trying again at once is allowed and creates the expense
    fake.faults.clear()
    retried = web["client"].post(web["payout_path"], {}, form_page=web["page"])
    assert retried.status_code == 303
    payout = payout_row(app)
    assert payout is not None and payout.oc_public_id and payout.last_error == ""
    assert fake.expense_count(OC_SLUG) == 1
