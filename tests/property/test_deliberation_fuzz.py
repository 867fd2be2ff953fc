"""Malformed input to the deliberation forms never gives a 500, and a refused request writes
nothing: random field dictionaries against comment, reply, answer, hide and conflict."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient, csrf_from

NASTY = st.sampled_from(["", " ", "\x00", "\x1b[31m", "comment", "question", "answer", "recuse", "disclose",
                         "applicant", "other", "-1", "0", "1", "99999999999999999999", "<script>",
                         "' OR 1=1 --", "x" * 5001, "٣", "\u202e", "family"])
VALUE = st.one_of(NASTY, st.text(max_size=40), st.integers(-10**20, 10**20).map(str))
FIELDS = ["body", "kind", "parent_id", "submission_key", "reason", "level", "category", "unknown"]
NOW = T0 + 2 * DAY


@pytest.fixture
def fuzz(app):  # type: ignore[no-untyped-def]
    from fundcircle.deliberation import operations as ops
    from fundcircle.extensions import db

    with app.app_context():
        s = db.session
        circle = f.create_circle(s)
        round_ = f.create_round(s, circle)
        rosa = f.create_user(s, "rosa@example.org")
        proposal = f.create_proposal(s, round_, rosa)
        fac = f.create_user(s, "fac@example.org")
        question = ops.post_comment(s, proposal=proposal, author=fac, body="Why?", kind="question", now=NOW,
                                    base_url="http://x").comment
        s.commit()
        page = f"/c/{circle.slug}/r/{round_.id}/p/{proposal.id}"
        paths = {"comment": f"{page}/comments", "answer": f"{page}/comments/{question.id}/answer",
                 "hide": f"{page}/comments/{question.id}/hide", "conflict": f"{page}/conflict"}
    with freeze_time(NOW):
        fac_client, rosa_client = WebClient(app), WebClient(app)
        fac_client.sign_in("fac@example.org")
        fac_client.pass_second_factor()  # hiding a comment is a facilitator action
        rosa_client.sign_in("rosa@example.org")
    return {"fac": fac_client, "rosa": rosa_client, "page": page, "paths": paths}


def _counts(app) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db

    with app.app_context():
        return (db.session.scalar(sa.text("SELECT count(*) FROM comments")),
                db.session.scalar(sa.text("SELECT count(*) FROM conflicts_of_interest")))


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(["comment", "answer", "hide", "conflict"]),
       data=st.dictionaries(st.sampled_from(FIELDS), VALUE, max_size=6))
def test_deliberation_forms_never_fail_with_500(app, fuzz: dict, target: str, data: dict) -> None:  # type: ignore[no-untyped-def]
    client = fuzz["rosa"] if target == "answer" else fuzz["fac"]
    with freeze_time(NOW):
        token = csrf_from(client.text(fuzz["page"]))
        before = _counts(app)
        response = client.http.post(fuzz["paths"][target], data={"csrf_token": token, **data})
    assert response.status_code in (302, 403, 404, 409, 422), (target, data, response.status_code)
    if response.status_code != 302:
        assert _counts(app) == before, (target, data)
