"""Deliberation over HTTP: threaded comments, questions and answers, moderation, notifications,
permissions and phases, and invalid input (which writes nothing)."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient

APPLICANT = "rosa@example.org"
MEMBER = "mina@example.org"
OTHER = "otto@example.org"
OUTSIDER = "olga@example.org"
FACILITATOR = "fac@example.org"
OPEN = T0 + 2 * DAY  # call open; the discussion is open from the call to the voting close
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def disc(app):  # type: ignore[no-untyped-def]
    """A circle (facilitator, two members), a non-member applicant's submitted proposal and a
    second proposal, in a round whose call is open [T0, T0+10d) and voting closes at T0+27d."""
    from fundcircle.circles import operations as circle_ops
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        circle = f.create_circle(s)
        round_ = f.create_round(s, circle)
        for email in (MEMBER, OTHER):
            circle_ops.add_member(s, circle=circle, user=f.create_user(s, email), now=T0 - DAY)
        f.create_user(s, OUTSIDER)
        proposal = f.create_proposal(s, round_, f.create_user(s, APPLICANT, "Rosa Martins"))
        other = f.create_proposal(s, round_, f.create_user(s, "kwame@example.org"), title="Football")
        s.commit()
        page = f"/c/{circle.slug}/r/{round_.id}/p/{proposal.id}"
        return {"page": page, "post": f"{page}/comments", "proposal_id": proposal.id, "other_id": other.id,
                "other_page": f"/c/{circle.slug}/r/{round_.id}/p/{other.id}"}


def mails(app, to: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.notifications.models import OutgoingMail

    with app.app_context():
        return [(m.subject, m.body_text) for m in db.session.scalars(
            sa.select(OutgoingMail).where(OutgoingMail.to_address == to).order_by(OutgoingMail.id))
            if "sign-in" not in m.subject]


def comments(app) -> list:  # type: ignore[no-untyped-def]
    from fundcircle.deliberation.models import Comment
    from fundcircle.extensions import db

    with app.app_context():
        return [SimpleNamespace(**{k: getattr(c, k) for k in ("id", "parent_id", "kind", "body", "author_id",
                                                               "hidden_at", "hidden_by_id", "hidden_reason")})
                for c in db.session.scalars(sa.select(Comment).order_by(Comment.id))]


def comment_id(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(re.search(r"#comment-(\d+)$", response.headers["Location"]).group(1))


def signed_in(app, email: str) -> WebClient:  # type: ignore[no-untyped-def]
    client = WebClient(app)
    client.sign_in(email)
    return client


def test_threaded_comments_with_notifications(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina, otto, rosa = signed_in(app, MEMBER), signed_in(app, OTHER), signed_in(app, APPLICANT)
        first = comment_id(mina.post(disc["post"], {"body": "Who keeps the shop key?", "kind": "comment"},
                                     form_page=disc["page"]))
        reply_page = f"{disc['page']}/comments/{first}/reply"
        assert "Who keeps the shop key?" in otto.text(reply_page)  # the reply page quotes the parent
        reply = comment_id(otto.post(disc["post"], {"body": "The caretaker, I think.", "kind": "comment",
                                                    "parent_id": str(first)}, form_page=reply_page))
        deeper = comment_id(rosa.post(disc["post"], {"body": "Yes, and two volunteers.", "kind": "comment",
                                                     "parent_id": str(reply)}, form_page=reply_page))
        page = WebClient(app).text(disc["page"])  # the public reads the discussion
        member_view, applicant_view = mina.text(disc["page"]), rosa.text(disc["page"])
    rows = {c.id: c for c in comments(app)}
    assert rows[reply].parent_id == first and rows[deeper].parent_id == reply
    # Nested: each reply is rendered inside its parent's list of replies, with author and time.
    start, middle, end = (page.index(f'id="comment-{i}"') for i in (first, reply, deeper))
    assert start < middle < end
    # Members' names are for members; the public and the applicant see stable labels.
    assert "Replies to Member A" in page[start:middle] and "Replies to Member B" in page[middle:end]
    for view in (page, applicant_view):
        assert "Mina" not in view and "Otto" not in view and "Member A" in view
    assert "Replies to Mina" in member_view and "Replies to Otto" in member_view
    assert "Rosa Martins" in page[end:end + 600] and ">applicant<" in page[end:end + 600]
    assert f'datetime="{OPEN.replace(tzinfo=None).isoformat()}' in page or OPEN.isoformat() in page
    # Notifications: the applicant hears of each comment by others; authors hear of replies;
    # nobody hears of their own; one message per person per event.
    rosa_mail = [s for s, _ in mails(app, APPLICANT)]
    assert rosa_mail == ["New comment on your proposal: Community fridge"] * 2
    assert [s for s, _ in mails(app, MEMBER)] == ["Otto replied to you: Community fridge"]
    assert [s for s, _ in mails(app, OTHER)] == ["Rosa Martins replied to you: Community fridge"]
    assert "Member A commented on your proposal" in mails(app, APPLICANT)[0][1]
    assert "Member B commented on your proposal" in mails(app, APPLICANT)[1][1]
    assert not any("Mina" in b or "Otto" in b for _, b in mails(app, APPLICANT))
    body = mails(app, MEMBER)[0][1]
    assert "> The caretaker, I think." in body and f"{disc['page']}#comment-{reply}" in body


def test_question_and_answer(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina, rosa = signed_in(app, MEMBER), signed_in(app, APPLICANT)
        asked = comment_id(mina.post(disc["post"], {"body": "Who cleans the fridge?", "kind": "question"},
                                     form_page=disc["page"]))
        unanswered = comment_id(mina.post(disc["post"], {"body": "Is the shop open on Sundays?",
                                                         "kind": "question"}, form_page=disc["page"]))
        assert [s for s, _ in mails(app, APPLICANT)] == ["A question about your proposal: Community fridge"] * 2
        page = rosa.text(disc["page"])
        assert page.count("awaiting answer") == 2 and "2 awaiting an answer" in page
        answer_page = f"{disc['page']}/comments/{asked}/answer"
        assert "Answer this question" in page and answer_page in page
        # Only the applicant answers; members get 403.
        assert mina.get(answer_page).status_code == 403
        # The applicant cannot ask herself questions.
        assert rosa.post(disc["post"], {"body": "Me?", "kind": "question"}, form_page=disc["page"]).status_code == 403
        answered = rosa.post(answer_page, {"body": "A rota of six neighbours, weekly."})
        assert answered.status_code == 302 and answered.headers["Location"].endswith(f"#comment-{asked}")
        again = rosa.post(answer_page, {"body": "Also the shop owner."}, form_page=disc["page"])
        assert again.status_code == 409 and "already been answered" in again.get_data(as_text=True)
        page = WebClient(app).text(disc["page"])
    q_at, a_at, u_at = (page.index(f'id="comment-{i}"') for i in (asked, asked + 2, unanswered))
    assert "A rota of six neighbours, weekly." in page[q_at:u_at]  # the answer sits under its question
    assert q_at < a_at < u_at
    assert page.count("awaiting answer") == 1 and "answered</span>" in page
    rows = comments(app)
    assert [c.kind for c in rows] == ["question", "question", "answer"] and rows[2].parent_id == asked
    assert [s for s, _ in mails(app, MEMBER)] == ["Your question was answered: Community fridge"]
    assert "You asked:\n> Who cleans the fridge?" in mails(app, MEMBER)[0][1]
    assert len(mails(app, APPLICANT)) == 2  # no mail to the applicant about her own answer


def test_who_may_post_and_when(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    data = {"body": "Hello", "kind": "comment"}
    with freeze_time(OPEN):
        outsider = signed_in(app, OUTSIDER)
        page = outsider.text(disc["page"])
        assert "Only members of this circle and the applicant take part" in page and 'id="new-comment"' not in page
        assert outsider.post(disc["post"], data, form_page=disc["page"]).status_code == 403
        anonymous = WebClient(app)
        assert "Sign in</a> to take part" in anonymous.text(disc["page"])
        refused = anonymous.post(disc["post"], data, form_page="/signin")
        assert refused.status_code == 302 and "/signin" in refused.headers["Location"]
    for when, ok in ((T0 + 11 * DAY, True), (T0 + 15 * DAY, True), (T0 + 26 * DAY, True), (T0 + 27 * DAY, False)):
        with freeze_time(when):
            mina = signed_in(app, MEMBER)
            response = mina.post(disc["post"], data, form_page=disc["page"])
            if ok:
                assert response.status_code == 302, (when, response.status_code)
            else:
                text = response.get_data(as_text=True)
                assert response.status_code == 409 and "Voting has closed" in text
                assert 'id="new-comment"' not in mina.text(disc["page"])
    assert len(comments(app)) == 3
    assert [s for s, _ in mails(app, OUTSIDER)] == []


def test_withdrawn_proposal_is_read_only(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        rosa = signed_in(app, APPLICANT)
        assert rosa.post(f"{disc['page']}/withdraw", {}, form_page=disc["page"]).status_code == 302
        mina = signed_in(app, MEMBER)
        response = mina.post(disc["post"], {"body": "Too late?", "kind": "comment"}, form_page=disc["page"])
        assert response.status_code == 409 and "withdrawn" in response.get_data(as_text=True)
    assert comments(app) == []


def test_facilitator_hides_with_a_reason(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.audit.models import AuditEvent
    from fundcircle.extensions import db

    with freeze_time(OPEN):
        otto = signed_in(app, OTHER)
        rude = comment_id(otto.post(disc["post"], {"body": "Rosa's phone is 0151 2345678, call her at night.",
                                                   "kind": "comment"}, form_page=disc["page"]))
        hide_page = f"{disc['page']}/comments/{rude}/hide"
        mina = signed_in(app, MEMBER)
        assert mina.get(hide_page).status_code == 403  # only facilitators hide
        assert mina.post(hide_page, {"reason": "x"}, form_page=disc["page"]).status_code == 403
        fac = signed_in(app, FACILITATOR)
        assert "Hide<span" in fac.text(disc["page"])
        assert "/account/second-factor" in fac.get(hide_page).location  # hiding needs the second factor
        fac.pass_second_factor()
        no_reason = fac.post(hide_page, {"reason": "   "})
        assert no_reason.status_code == 422 and "Give a reason" in no_reason.get_data(as_text=True)
        assert fac.post(hide_page, {"reason": "Personal contact details"}).status_code == 302
        assert fac.post(hide_page, {"reason": "again"}).status_code == 409  # once
        for client in (WebClient(app), otto, fac):
            page = client.text(disc["page"])
            assert "0151 2345678" not in page
            assert "Hidden by a facilitator: Personal contact details" in page
        # Nobody can reply to a hidden comment.
        refused = mina.post(disc["post"], {"body": "Quoting it", "kind": "comment", "parent_id": str(rude)},
                            form_page=disc["page"])
        assert refused.status_code == 422 and "hidden" in refused.get_data(as_text=True)
    [row] = comments(app)
    assert row.hidden_reason == "Personal contact details" and row.hidden_at == OPEN
    assert row.body.startswith("Rosa's phone")  # kept, never deleted
    with app.app_context():
        [event] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "comment.hide")).all()
        assert event.object_id == rude and event.details["reason"] == "Personal contact details"
        assert event.actor_id == row.hidden_by_id
    assert [s for s, _ in mails(app, OTHER)] == ["Your comment was hidden: Community fridge"]


def test_a_facilitator_cannot_moderate_their_own_proposal(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal

    with app.app_context():
        round_ = db.session.get(Proposal, disc["proposal_id"]).round
        own = f.create_proposal(db.session, round_, f.create_user(db.session, FACILITATOR), title="Fac's own")
        db.session.commit()
        page = f"/c/{round_.circle.slug}/r/{round_.id}/p/{own.id}"
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        cid = comment_id(mina.post(f"{page}/comments", {"body": "Hm.", "kind": "comment"}, form_page=page))
        fac = signed_in(app, FACILITATOR)
        assert fac.post(f"{page}/comments/{cid}/hide", {"reason": "I don't like it"}, form_page=page
                        ).status_code == 403


LONG = "x" * 5001


@pytest.mark.parametrize("data, field_message", [
    ({"body": ""}, "Write something first."),
    ({"body": "   \n  "}, "Write something first."),
    ({"body": LONG}, "Keep it under 5,000 characters."),
    ({"body": "bell\x07"}, "Remove the control characters"),
    ({"body": "nul\x00"}, "Remove the control characters"),
    ({"body": "ok", "kind": "answer"}, "Not a valid choice"),
    ({"body": "ok", "kind": ""}, "Choose a comment or a question."),
    ({"body": "ok", "parent_id": "abc"}, "Please correct the fields"),
    ({"body": "ok", "parent_id": "\u00b2"}, "Please correct the fields"),  # isdigit() but not int()
    ({"body": "ok", "parent_id": "OTHER"}, "You can only reply to a comment on this proposal."),
    ({"body": "ok", "parent_id": "999999"}, "You can only reply to a comment on this proposal."),
])
def test_invalid_input_is_refused_and_writes_nothing(app, disc: dict, data: dict, field_message: str
                                                     ) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        elsewhere = comment_id(mina.post(disc["other_page"] + "/comments", {"body": "On football", "kind": "comment"},
                                         form_page=disc["other_page"]))
        before = len(comments(app)), len(mails(app, APPLICANT)), len(mails(app, "kwame@example.org"))
        payload = {"kind": "comment", **data}
        if payload.get("parent_id") == "OTHER":
            payload["parent_id"] = str(elsewhere)
        response = mina.post(disc["post"], payload, form_page=disc["page"])
        text = response.get_data(as_text=True)
        assert response.status_code == 422, text[:1000]
        assert field_message in text
        if data.get("body", "").strip() and "\x00" not in data["body"] and len(data["body"]) < 100:
            assert f"{data['body']}</textarea>" in text  # what the member typed is kept
    assert (len(comments(app)), len(mails(app, APPLICANT)), len(mails(app, "kwame@example.org"))) == before


def test_invalid_answer_is_refused(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        plain = comment_id(mina.post(disc["post"], {"body": "Nice idea", "kind": "comment"}, form_page=disc["page"]))
        asked = comment_id(mina.post(disc["post"], {"body": "How big?", "kind": "question"}, form_page=disc["page"]))
        rosa = signed_in(app, APPLICANT)
        empty = rosa.post(f"{disc['page']}/comments/{asked}/answer", {"body": ""})
        assert empty.status_code == 422 and "Write your answer first." in empty.get_data(as_text=True)
        not_question = rosa.post(f"{disc['page']}/comments/{plain}/answer", {"body": "A comment?"})
        assert not_question.status_code == 422 and "Only questions can be answered" in not_question.get_data(
            as_text=True)
        other = rosa.get(f"{disc['other_page']}/comments/{asked}/answer")
        assert other.status_code == 404  # a comment id from another proposal's URL finds nothing
    assert len(comments(app)) == 2


def test_a_double_submitted_form_posts_once(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    from tests.support.web import csrf_from

    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        page = mina.text(disc["page"])
        key = re.search(r'name="submission_key" type="hidden" value="([^"]+)"', page).group(1)
        data = {"csrf_token": csrf_from(page), "submission_key": key, "body": "Twice?", "kind": "question"}
        first, second = (mina.http.post(disc["post"], data=data) for _ in range(2))
        assert first.status_code == second.status_code == 302
        assert first.headers["Location"] == second.headers["Location"]
    assert len(comments(app)) == 1
    assert len(mails(app, APPLICANT)) == 1


def test_a_hidden_answer_can_be_replaced(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina, rosa, fac = signed_in(app, MEMBER), signed_in(app, APPLICANT), signed_in(app, FACILITATOR)
        fac.pass_second_factor()
        asked = comment_id(mina.post(disc["post"], {"body": "Where is it?", "kind": "question"},
                                     form_page=disc["page"]))
        answer_page = f"{disc['page']}/comments/{asked}/answer"
        assert rosa.post(answer_page, {"body": "At my flat, Hauptstr. 3."}).status_code == 302
        first = max(c.id for c in comments(app))
        assert "awaiting answer" not in rosa.text(disc["page"])
        assert fac.post(f"{disc['page']}/comments/{first}/hide", {"reason": "Private address"},
                        form_page=disc["page"]).status_code == 302
        page = rosa.text(disc["page"])
        assert "awaiting answer" in page and "Hauptstr" not in page and "Hidden by a facilitator: Private address" in page
        assert rosa.post(answer_page, {"body": "At the corner shop on Mill Street."}).status_code == 302
        page = WebClient(app).text(disc["page"])
        assert "awaiting answer" not in page and "At the corner shop on Mill Street." in page
    assert [c.kind for c in comments(app)] == ["question", "answer", "answer"]
    # The asker heard of both answers, once each.
    assert [s for s, _ in mails(app, MEMBER)] == ["Your question was answered: Community fridge"] * 2


def test_flooding_is_refused(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.deliberation import operations as ops
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal

    with app.app_context():
        s = db.session
        proposal, mina = s.get(Proposal, disc["proposal_id"]), f.create_user(s, MEMBER)
        for i in range(ops.MAX_POSTS_PER_HOUR):
            ops.post_comment(s, proposal=proposal, author=mina, body=f"Point {i}", now=OPEN - 50 * 60 * SECOND + i * SECOND,
                             base_url="http://x")
        s.commit()
    with freeze_time(OPEN):
        client = signed_in(app, MEMBER)
        refused = client.post(disc["post"], {"body": "One more", "kind": "comment"}, form_page=disc["page"])
        assert refused.status_code == 409 and "Please wait a little" in refused.get_data(as_text=True)
    with freeze_time(OPEN + 11 * 60 * SECOND):  # the oldest posts are now more than an hour old
        client = signed_in(app, MEMBER)
        assert client.post(disc["post"], {"body": "One more", "kind": "comment"},
                           form_page=disc["page"]).status_code == 302


def test_one_message_per_person_per_event(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    """The applicant's own comment gets a reply: she is both the parent's author and the
    applicant, and hears of it once, with the more specific message."""
    with freeze_time(OPEN):
        rosa, otto = signed_in(app, APPLICANT), signed_in(app, OTHER)
        mine = comment_id(rosa.post(disc["post"], {"body": "Ask me anything.", "kind": "comment"},
                                    form_page=disc["page"]))
        assert mails(app, APPLICANT) == []  # no mail about her own comment
        otto.post(disc["post"], {"body": "When do you start?", "kind": "comment", "parent_id": str(mine)},
                  form_page=disc["page"])
    assert [s for s, _ in mails(app, APPLICANT)] == ["Member A replied to you: Community fridge"]


def test_facilitators_moderate_after_the_close(app, disc: dict) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        otto = signed_in(app, OTHER)
        cid = comment_id(otto.post(disc["post"], {"body": "Something harmful", "kind": "comment"},
                                   form_page=disc["page"]))
    with freeze_time(T0 + 40 * DAY):
        fac = signed_in(app, FACILITATOR)
        fac.pass_second_factor()
        page = fac.text(disc["page"])
        assert "Voting has closed" in page and 'id="new-comment"' not in page and "Hide<span" in page
        assert fac.post(f"{disc['page']}/comments/{cid}/hide", {"reason": "Reported after the vote"},
                        form_page=disc["page"]).status_code == 302
    assert comments(app)[0].hidden_reason == "Reported after the vote"


@pytest.mark.parametrize("path", ["/comments/2147483648/reply", "/comments/99999999999999999999/answer",
                                  "/comments/0/hide"])
def test_out_of_range_comment_ids_find_nothing(app, disc: dict, path: str) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(OPEN):
        mina = signed_in(app, MEMBER)
        assert mina.get(disc["page"] + path).status_code in (403, 404)
        refused = mina.post(disc["post"], {"body": "x", "kind": "comment", "parent_id": "2147483648"},
                            form_page=disc["page"])
        assert refused.status_code == 422 and "You can only reply to a comment on this proposal." in refused.get_data(
            as_text=True)
