"""Creating an award's payout through the operation (database + fake OC over HTTP), on both databases."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from fundcircle.audit.models import AuditEvent
from fundcircle.errors import RuleViolation, ValidationError
from fundcircle.integrations.opencollective import OCTwoFactorRequired, OCUnavailable
from fundcircle.treasury import operations as ops
from fundcircle.treasury import queries
from fundcircle.treasury.models import AwardState, PayoutRecord
from tests.fixtures.opencollective.world import NOW, OC_SLUG, build_world, client_for
from tests.support.opencollective import fake  # noqa: F401  (the fixture)


def test_payout_survives_a_timeout_after_oc_created_it(session: Any, fake: Any) -> None:
    world = build_world(session, [300_00])
    award = world.awards[0]
    fake.inject("createExpense", "commit_then_timeout", delay_s=3.0)
    payout = ops.create_payout(session, world.circle, award, actor=world.treasurer,
                               client=client_for(fake, timeout_s=1.5), now=NOW)
    session.commit()
    assert fake.expense_count(OC_SLUG) == 1
    expense = fake.find_expense(payout.oc_public_id)
    assert expense["reference"] == f"fundcircle:award:{world.circle.id}:{award.id}"
    assert expense["customData"]["fundcircle_award_id"] == award.id
    assert (payout.oc_status, payout.oc_amount_minor, payout.oc_currency) == ("PENDING", 300_00, "EUR")
    assert payout.oc_url.endswith(f"/{OC_SLUG}/expenses/{expense['legacyId']}")
    # a second click (another treasurer, a retried form) creates nothing
    with pytest.raises(RuleViolation, match="already has an Open Collective expense"):
        ops.create_payout(session, world.circle, award, actor=world.treasurer, client=client_for(fake), now=NOW)
    assert fake.expense_count(OC_SLUG) == 1
    assert [s.state for s in queries.award_statuses(session, world.circle.id)] == [AwardState.EXPENSE_CREATED]
    events = session.scalars(sa.select(AuditEvent.action).where(AuditEvent.circle_id == world.circle.id)).all()
    assert "treasury.payout.create" in events


def test_lost_local_row_still_finds_the_oc_expense(session: Any, fake: Any) -> None:
    """The OC call succeeded but the request's transaction rolled back (crash before commit): the
    award reference is deterministic, so the next attempt finds the expense instead of creating one."""
    world = build_world(session, [300_00])
    session.commit()
    award_id = world.awards[0].id
    ops.create_payout(session, world.circle, world.awards[0], actor=world.treasurer, client=client_for(fake), now=NOW)
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(PayoutRecord)) == 0
    award = queries.award_in_circle(session, world.circle.id, award_id)
    circle = world.circle
    payout = ops.create_payout(session, circle, award, actor=None, client=client_for(fake), now=NOW)
    session.commit()
    assert fake.expense_count(OC_SLUG) == 1 and payout.oc_public_id


def test_oc_down_records_the_error_and_creates_nothing(session: Any, fake: Any) -> None:
    world = build_world(session, [300_00])
    fake.inject("*", "http_503", times=100)
    with pytest.raises(OCUnavailable):
        ops.create_payout(session, world.circle, world.awards[0], actor=world.treasurer, client=client_for(fake),
                          now=NOW)
    session.commit()  # the failure is remembered on the payout row
    payout = session.scalar(sa.select(PayoutRecord))
    assert payout is not None and "unavailable" in payout.last_error and payout.oc_public_id is None
    assert fake.expense_count(OC_SLUG) == 0
    fake.faults.clear()
    ops.create_payout(session, world.circle, world.awards[0], actor=world.treasurer, client=client_for(fake), now=NOW)
    assert fake.expense_count(OC_SLUG) == 1 and payout.last_error == ""


def test_two_factor_token_is_a_clear_configuration_error(session: Any, fake: Any) -> None:
    world = build_world(session, [300_00])
    fake.add_token("tfa", two_factor=True, preauthorized_2fa=False)
    c = client_for(fake)
    c.token = "tfa"
    with pytest.raises(OCTwoFactorRequired):
        ops.create_payout(session, world.circle, world.awards[0], actor=world.treasurer, client=c, now=NOW)
    assert fake.expense_count(OC_SLUG) == 0


def test_payee_by_email_is_invited(session: Any, fake: Any) -> None:
    world = build_world(session, [300_00])
    proposal = world.awards[0].proposal
    proposal.payee_kind, proposal.payee_oc_slug, proposal.payee_email = "email", "", "payee@example.org"
    session.flush()
    payout = ops.create_payout(session, world.circle, world.awards[0], actor=world.treasurer, client=client_for(fake),
                               now=NOW)
    assert payout.oc_status == "DRAFT" and payout.invited_email == "payee@example.org"
    assert fake.find_expense(payout.oc_public_id)["invite_email"] == "payee@example.org"


def test_unearmarked_award_or_missing_collective_is_refused(session: Any, fake: Any) -> None:
    world = build_world(session, [300_00])
    award = world.awards[0]
    award.earmarked_at = None
    with pytest.raises(ValidationError, match="not earmarked"):
        ops.create_payout(session, world.circle, award, actor=world.treasurer, client=client_for(fake), now=NOW)
    assert fake.expense_count(OC_SLUG) == 0


def test_two_treasurers_clicking_at_once_create_one_expense(database_url: str, session: Any, fake: Any) -> None:
    """Two requests race for the same award while OC is slow: the local row serialises them (the
    second waits for the first to commit), so OC sees one create and the loser gets a clear 409."""
    import threading

    from fundcircle.circles.models import Circle
    from fundcircle.db import begin_write
    from tests.integration.voting_db.helpers import sessions_for

    world = build_world(session, [300_00])
    session.commit()
    circle_id, award_id = world.circle.id, world.awards[0].id
    fake.inject("createExpense", "slow", delay_s=1.5)
    outcomes: list[str] = []

    def click(delay_s: float) -> None:
        import time

        time.sleep(delay_s)
        with sessions_for(database_url) as factory:
            s = factory()
            try:
                begin_write(s)
                circle = s.get(Circle, circle_id)
                award = queries.award_in_circle(s, circle_id, award_id)
                ops.create_payout(s, circle, award, actor=None, client=client_for(fake), now=NOW)
                s.commit()
                outcomes.append("created")
            except RuleViolation as err:
                s.rollback()
                outcomes.append(f"refused: {err.user_message}")
            finally:
                s.close()

    threads = [threading.Thread(target=click, args=(d,)) for d in (0.0, 0.4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(o.split(":")[0] for o in outcomes) == ["created", "refused"], outcomes
    assert fake.expense_count(OC_SLUG) == 1
    assert fake.requests_by_op["createExpense"] == 1
