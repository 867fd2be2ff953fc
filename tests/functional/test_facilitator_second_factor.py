"""Facilitators run a circle (rounds, screening, invitations, moderation, closing a vote), so their
actions need the second factor (TOTP) once per sign-in, as the treasury does; members and the
public are never asked, and reading a page shared with members needs nothing."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient, csrf_from

FACILITATOR = "fac@example.org"
MEMBER = "mina@example.org"
APPLICANT = "rosa@example.org"
OPEN = T0 + 2 * DAY  # the call and the discussion are open


@pytest.fixture
def circle_world(app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A circle (facilitator, one member), a published round with a submitted proposal carrying a
    member's comment, a draft round, and an open invitation."""
    from fundcircle.circles import operations as circle_ops
    from fundcircle.deliberation import operations as deliberation_ops
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        circle = f.create_circle(s)
        round_ = f.create_round(s, circle)
        draft = f.create_round(s, circle, publish=False, title="Next year")
        member = f.create_user(s, MEMBER)
        circle_ops.add_member(s, circle=circle, user=member, now=T0 - DAY)
        proposal = f.create_proposal(s, round_, f.create_user(s, APPLICANT))
        comment = deliberation_ops.post_comment(s, proposal=proposal, author=member, body="Lovely idea.",
                                                now=OPEN, base_url="http://localhost").comment
        facilitator = next(m.user for m in circle.memberships if m.is_facilitator)
        invitation = circle_ops.invite(s, circle=circle, actor=facilitator, email="new@example.org",
                                       as_facilitator=False, as_treasurer=False, message="", now=T0,
                                       base_url="http://localhost", lifetime=30 * DAY)
        s.commit()
        c = f"/c/{circle.slug}"
        r = f"{c}/r/{round_.id}"
        p = f"{r}/p/{proposal.id}"
        return {
            "circle_id": circle.id, "invitation_id": invitation.id, "draft_id": draft.id, "proposal_id": proposal.id,
            "comment_id": comment.id,
            # pages members (or everyone) read: never a second factor
            "shared": [c, f"{c}/members", r, p, f"{r}/my-conflicts", f"{p}/conflict"],
            # (method, path): what only facilitators do
            "actions": [
                ("POST", f"{c}/members"),
                ("POST", f"{c}/invitations/{invitation.id}/revoke"),
                ("GET", f"{c}/rounds/new"), ("POST", f"{c}/rounds/new"),
                ("GET", f"{r}/edit"), ("POST", f"{r}/edit"),
                ("POST", f"{c}/r/{draft.id}/publish"),
                ("GET", f"{r}/screening"),
                ("POST", f"{p}/screen"),
                ("GET", f"{p}/comments/{comment.id}/hide"), ("POST", f"{p}/comments/{comment.id}/hide"),
                ("GET", f"{r}/conflicts"),
                ("POST", f"{r}/close"),
                ("POST", f"{r}/earmark"),
            ],
            "circle": c, "round": r, "proposal": p,
        }


def _send(client: WebClient, method: str, path: str, world: dict[str, Any]):  # type: ignore[no-untyped-def]
    if method == "GET":
        return client.get(path)
    # any page with a form gives the session's CSRF token; the proposal page has the screening form
    return client.post(path, {}, form_page=world["proposal"])


def _audit_actions(app) -> list[str]:  # type: ignore[no-untyped-def]
    from fundcircle.audit.models import AuditEvent
    from fundcircle.extensions import db

    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def test_every_facilitator_action_asks_for_the_second_factor_first(app, circle_world) -> None:  # type: ignore[no-untyped-def]
    before = _audit_actions(app)
    with freeze_time(OPEN) as clock:
        fac = WebClient(app)
        fac.sign_in(FACILITATOR)
        for method, path in circle_world["actions"]:
            response = _send(fac, method, path, circle_world)
            assert response.status_code == 302, (method, path, response.status_code)
            assert response.location.startswith("/account/second-factor?next="), (method, path, response.location)
            if method == "GET":  # back to the page itself afterwards
                assert response.location.endswith("next=" + path), response.location
        # a refused POST returns to the page its form was on (the POST is not replayed)
        token = csrf_from(fac.text(circle_world["proposal"]))
        referred = fac.http.post(f"{circle_world['proposal']}/screen", data={"csrf_token": token},
                                 headers={"Referer": "http://localhost" + circle_world["proposal"]})
        assert referred.location == "/account/second-factor?next=" + circle_world["proposal"]
        # nothing happened: no invitation, screening, hidden comment, publication or tally
        assert [a for a in _audit_actions(app) if not a.startswith("auth.")] == before

        fac.pass_second_factor()
        # once enrolled, a fresh sign-in gets the challenge instead of the enrolment
        clock.tick(60)
        other = WebClient(app)
        other.sign_in(FACILITATOR)
        for method, path in circle_world["actions"]:
            response = _send(other, method, path, circle_world)
            assert response.location.startswith("/account/second-factor/check?next="), (method, path)


def test_members_and_visitors_are_never_asked(app, circle_world) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        member = WebClient(app)
        member.sign_in(MEMBER)
        for path in circle_world["shared"]:
            response = member.get(path)
            assert response.status_code == 200, (path, response.status_code)
        # a member posting a comment or declaring a conflict is not asked either
        posted = member.post(f"{circle_world['proposal']}/comments", {"body": "When does it open?",
                                                                      "kind": "comment"},
                             form_page=circle_world["proposal"])
        assert posted.status_code == 302 and "second-factor" not in posted.location
        # facilitator actions are refused outright, never turned into a second-factor prompt (the
        # draft round is a 404 to members: it is not theirs to see)
        for method, path in circle_world["actions"]:
            response = _send(member, method, path, circle_world)
            expected = 404 if f"/r/{circle_world['draft_id']}/" in path else 403
            assert response.status_code == expected, (method, path, response.status_code)
        visitor = WebClient(app)
        for path in (circle_world["circle"], circle_world["round"], circle_world["proposal"]):
            assert visitor.get(path).status_code == 200, path


def test_a_facilitator_reads_shared_pages_without_the_second_factor(app, circle_world) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        fac = WebClient(app)
        fac.sign_in(FACILITATOR)
        for path in circle_world["shared"][:4]:
            response = fac.get(path)
            assert response.status_code == 200, (path, response.status_code)
        # the draft round is the facilitators' to read as well
        assert fac.get(f"{circle_world['circle']}/r/{circle_world['draft_id']}").status_code == 200


def test_after_the_second_factor_the_actions_work(app, circle_world) -> None:  # type: ignore[no-untyped-def]
    w = circle_world
    with freeze_time(OPEN):
        fac = WebClient(app)
        fac.sign_in(FACILITATOR)
        first = fac.get(f"{w['circle']}/rounds/new")
        assert "/account/second-factor?next=" in first.location
        back = fac.pass_second_factor(f"{w['circle']}/rounds/new")
        assert back.location == f"{w['circle']}/rounds/new"  # straight back to the page asked for
        for path in (f"{w['circle']}/rounds/new", f"{w['round']}/edit", f"{w['round']}/screening",
                     f"{w['round']}/conflicts", f"{w['proposal']}/comments/{w['comment_id']}/hide"):
            response = fac.get(path)
            assert response.status_code == 200, (path, response.status_code)
        invited = fac.post(f"{w['circle']}/members", {"email": "another@example.org", "message": ""})
        assert invited.status_code == 302 and invited.location.endswith(f"{w['circle']}/members")
        revoked = fac.post(f"{w['circle']}/invitations/{w['invitation_id']}/revoke", {},
                           form_page=f"{w['circle']}/members")
        assert revoked.status_code == 302
        published = fac.post(f"{w['circle']}/r/{w['draft_id']}/publish", {}, form_page=f"{w['circle']}/members")
        assert published.status_code == 302
        screened = fac.post(f"{w['proposal']}/screen", {"decision": "eligible", "reason": ""},
                            form_page=w["proposal"])
        assert screened.status_code == 302 and screened.location.endswith(w["proposal"])
        hidden = fac.post(f"{w['proposal']}/comments/{w['comment_id']}/hide", {"reason": "Off topic"})
        assert hidden.status_code == 302
    actions = _audit_actions(app)
    for action in ("member.invite", "member.revoke_invitation", "comment.hide"):
        assert action in actions, (action, actions)
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal
    from fundcircle.rounds.models import Round

    with app.app_context():
        assert db.session.get(Round, w["draft_id"]).published_at is not None
        assert db.session.get(Proposal, w["proposal_id"]).screened_at is not None
