"""CSRF everywhere, no state change on GET, headers and cookies, tenant isolation (404)."""

from __future__ import annotations

import re

import pytest
from freezegun import freeze_time

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient


def _routes(app) -> list[tuple[str, set[str]]]:  # type: ignore[no-untyped-def]
    return [(rule.rule, set(rule.methods or ()) - {"HEAD", "OPTIONS"}) for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"]


def _concrete(rule: str, world: dict) -> str:
    values = {"slug": world["slug"], "round_id": str(world["round_id"]), "proposal_id": str(world.get("pid", 1)),
              "token": "x" * 43, "public_id": "x" * 32}

    def value(match: re.Match[str]) -> str:
        # Routes added later need no edit here: other ids get 1, other strings a plausible token.
        converter, name = match.group(1), match.group(2)
        return values.get(name) or ("1" if converter == "int" or name.endswith("_id") else "x" * 32)

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule)


def test_every_state_changing_route_requires_a_csrf_token(client: WebClient, world: dict, app) -> None:
    with freeze_time(T0 + DAY):
        client.sign_in("fac@example.org")
        checked = 0
        for rule, methods in _routes(app):
            if "POST" not in methods:
                continue
            response = client.post_raw(_concrete(rule, world), {"title": "x"})
            if rule.startswith("/webhooks/"):
                # Machine-to-machine: no CSRF token, authenticated by a signature or a secret in the path.
                assert response.status_code in (400, 404), rule
                continue
            assert response.status_code == 400, rule
            assert "form expired" in response.get_data(as_text=True)
            checked += 1
        assert checked >= 10


def test_no_route_changes_state_on_get(client: WebClient, world: dict, app) -> None:
    """Every GET route is exercised; the audit log (which every operation writes) stays as it was."""
    from sqlalchemy import func, select

    from fundcircle.audit.models import AuditEvent
    from fundcircle.extensions import db

    with freeze_time(T0 + DAY):
        client.sign_in("fac@example.org")
        with app.app_context():
            before = db.session.scalar(select(func.count()).select_from(AuditEvent))
        for rule, methods in _routes(app):
            if "GET" in methods:
                assert client.get(_concrete(rule, world)).status_code < 500, rule
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_ids_beyond_the_integer_range_answer_404_on_every_route(client: WebClient, world: dict, app) -> None:
    """An id PostgreSQL cannot hold in an integer column names nothing: 404, never a 500."""
    with freeze_time(T0 + DAY):
        client.sign_in("fac@example.org")
        checked = 0
        for rule, methods in _routes(app):
            if "<int:" not in rule or "GET" not in methods:
                continue
            path = _concrete(re.sub(r"<int:\w+>", "2147483648", rule), world)
            assert client.get(path).status_code == 404, rule
            checked += 1
        assert checked >= 5


def test_security_headers_on_every_page(client: WebClient, world: dict, app) -> None:
    with freeze_time(T0 + DAY):
        for rule, methods in _routes(app):
            if "GET" not in methods:
                continue
            response = client.get(_concrete(rule, world))
            headers = response.headers
            assert "object-src 'none'" in headers["Content-Security-Policy"], rule
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] in ("strict-origin-when-cross-origin", "no-referrer")


def test_https_cookie_is_host_prefixed_secure_httponly_lax(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fundcircle import create_app
    from fundcircle.extensions import db

    app = create_app({"ENVIRONMENT": "testing", "DATABASE_URL": database_url, "INSTANCE_PATH": tmp_path,
                      "SECRET_KEY": "k" * 40, "HTTPS": True})
    client = WebClient(app)
    try:
        page = client.http.get("/signin", base_url="https://localhost")
    finally:
        db.dispose(app)  # the request opened pooled connections (the automatic-close check)
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_production_refuses_to_start_without_a_secret_key(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fundcircle import create_app
    from fundcircle.errors import ConfigurationError

    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY is not set"):
        create_app({"ENVIRONMENT": "production", "INSTANCE_PATH": tmp_path, "DATABASE_URL": "sqlite://"})


def test_secret_key_is_generated_once_and_kept(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.config import load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"INSTANCE_PATH": tmp_path, "ENVIRONMENT": "development"})["SECRET_KEY"]
    second = load_config({"INSTANCE_PATH": tmp_path, "ENVIRONMENT": "development"})["SECRET_KEY"]
    assert first == second and len(first) >= 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_cross_site_posts_are_refused(client: WebClient, world: dict) -> None:
    response = client.post("/signin", {"email": "a@example.org"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403


def test_another_circles_objects_answer_404(client: WebClient, world: dict, app) -> None:
    from fundcircle.extensions import db

    with app.app_context():
        other = f.create_circle(db.session, slug="other-circle", facilitator_email="other-fac@example.org")
        other_round = f.create_round(db.session, other)
        applicant = f.create_user(db.session, "someone@example.org")
        foreign = f.create_proposal(db.session, other_round, applicant)
        draft_round = f.create_round(db.session, other, publish=False)
        db.session.commit()
        other_round_id, foreign_id, draft_round_id = other_round.id, foreign.id, draft_round.id
    with freeze_time(T0 + 2 * DAY):
        client.sign_in("fac@example.org")  # facilitator of test-circle, not of other-circle
        mine = f"/c/{world['slug']}"
        # The other circle's round and proposal through this circle's URLs: 404.
        assert client.get(f"{mine}/r/{other_round_id}").status_code == 404
        assert client.get(f"{mine}/r/{world['round_id']}/p/{foreign_id}").status_code == 404
        assert client.get(f"{mine}/r/{other_round_id}/edit").status_code == 404
        # The other circle's unpublished round is invisible, even by its own URL.
        assert client.get(f"/c/other-circle/r/{draft_round_id}").status_code == 404
        # Its management pages are forbidden.
        assert client.get(f"/c/other-circle/r/{other_round_id}/edit").status_code == 403
        assert client.get("/c/other-circle/members").status_code == 403


def test_round_dates_cannot_reopen_a_closed_call(app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.errors import RuleViolation
    from fundcircle.extensions import db
    from fundcircle.rounds import operations as round_ops

    with app.app_context():
        circle = f.create_circle(db.session)
        round_ = f.create_round(db.session, circle)
        applicant = f.create_user(db.session, "a@example.org")
        f.create_proposal(db.session, round_, applicant)
        facilitator = f.create_user(db.session, "fac@example.org")
        later = T0 + 11 * DAY  # the call closed at T0 + 10 days
        with pytest.raises(RuleViolation, match="Submissions have closed"):
            round_ops.update_round(db.session, round_=round_, actor=facilitator, now=later,
                                   data=f.round_data(submissions_close_at=T0 + 11 * DAY + DAY))
        # Other, harmless changes still work; so does moving future dates.
        round_ops.update_round(db.session, round_=round_, actor=facilitator, now=later,
                               data=f.round_data(title="Spring grants 2027", voting_close_at=T0 + 30 * DAY))
        assert round_.title == "Spring grants 2027"
        at_voting = T0 + 21 * DAY
        with pytest.raises(RuleViolation, match="Voting has opened"):
            round_ops.update_round(db.session, round_=round_, actor=facilitator, now=at_voting,
                                   data=f.round_data(title="Spring grants 2027", voting_close_at=T0 + 30 * DAY,
                                                     budget_minor=9_000_00))
        with pytest.raises(RuleViolation, match="Voting has closed"):
            round_ops.update_round(db.session, round_=round_, actor=facilitator, now=T0 + 31 * DAY,
                                   data=f.round_data(title="Spring grants 2027", voting_close_at=T0 + 40 * DAY))


def test_facilitator_creates_edits_and_publishes_a_round_over_http(client: WebClient, app) -> None:
    from fundcircle.extensions import db

    with app.app_context():
        f.create_circle(db.session)
        db.session.commit()
    with freeze_time(T0):
        client.sign_in("fac@example.org")
        client.pass_second_factor()
        data = {"title": "Summer grants", "call_text": "Ideas for the summer.", "budget": "3000", "currency": "EUR",
                "rule_id": "quadratic", "rule_params": "credits = 50",
                "submissions_open_at": "2027-03-05T09:00", "submissions_close_at": "2027-03-20T18:00",
                "deliberation_open_at": "2027-03-21T09:00", "voting_open_at": "2027-03-28T09:00",
                "voting_close_at": "2027-04-04T18:00", "min_request": "100", "max_request": "1000"}
        bad = client.post("/c/test-circle/rounds/new", {**data, "voting_close_at": "2027-03-01T09:00",
                                                        "rule_params": "credits = lots"})
        assert bad.status_code == 422
        body = bad.get_data(as_text=True)
        assert "Voting must close after it opens." in body or "credits" in body
        created = client.post("/c/test-circle/rounds/new", data)
        assert created.status_code == 302, created.get_data(as_text=True)[:2000]
        page = created.headers["Location"]
        assert "Draft" in client.text(page)
        assert WebClient(app).get(page).status_code == 404  # drafts are private
        assert client.post(f"{page}/publish", {}, form_page=page).status_code == 302
        assert "Summer grants" in WebClient(app).text(page)
        assert client.get(f"{page}/edit").status_code == 200
        edited = client.post(f"{page}/edit", {**data, "title": "Summer grants 2027"})
        assert edited.status_code == 302
        assert "Summer grants 2027" in client.text(page)


def test_invitation_flow(client: WebClient, world: dict, app) -> None:
    with freeze_time(T0):
        client.sign_in("fac@example.org")
        client.pass_second_factor()
        sent = client.post(f"/c/{world['slug']}/members", {"email": "New.Member@Example.org", "as_treasurer": "y",
                                                           "message": "Welcome!"})
        assert sent.status_code == 302
        mail = client.last_mail("new.member@example.org")
        link = re.search(r"(https?://\S+/invitations/\S+)", mail).group(1)
        path = "/" + link.split("://", 1)[1].split("/", 1)[1]
        invitee = WebClient(app)
        assert "Sign in as new.member@example.org" in invitee.text(path)
        invitee.sign_in("new.member@example.org")
        assert invitee.post(path, {}).status_code == 302
        members = invitee.text(f"/c/{world['slug']}/members")
        assert "New.Member" in members or "new.member" in members.lower()
        assert "member, treasurer" in members
        again = invitee.post(path, {})
        assert again.status_code == 409
        stranger = WebClient(app)
        stranger.sign_in("stranger@example.org")
        assert stranger.post(path, {}).status_code == 409


def test_anonymous_visitors_are_sent_to_sign_in_and_back(client: WebClient, world: dict) -> None:
    with freeze_time(T0 + DAY):
        response = client.get(f"/c/{world['slug']}/r/{world['round_id']}/proposals/new")
        assert response.status_code == 302
        assert response.headers["Location"] == (
            f"/signin?next=/c/{world['slug']}/r/{world['round_id']}/proposals/new")
        assert client.sign_in("x@example.org", next_path=f"/c/{world['slug']}/r/{world['round_id']}/proposals/new"
                              ).headers["Location"].endswith("/proposals/new")
