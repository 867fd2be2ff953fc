"""Passwordless sign-in: hashed, single-use, 10 minutes, POST only, bound to the browser."""

from __future__ import annotations

import re

from freezegun import freeze_time
from sqlalchemy import select

from tests.support.web import LINK_RE, CODE_RE, WebClient, csrf_from

EMAIL = "applicant@example.org"


def _link_path(client: WebClient) -> str:
    link = LINK_RE.search(client.last_mail(EMAIL)).group(1)
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def test_link_signs_in_only_after_a_post_and_only_once(client: WebClient, app) -> None:
    assert client.request_link(EMAIL).status_code == 302
    path = _link_path(client)
    landing = client.get(path)
    # Opening the link (as a mail scanner would) signs nobody in.
    assert landing.status_code == 200 and "Continue signing in" in landing.get_data(as_text=True)
    assert landing.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/account").status_code == 302
    token = path.rsplit("/", 1)[1]
    data = {"csrf_token": csrf_from(landing.get_data(as_text=True)), "token": token}
    assert client.http.post("/signin/link", data=data).status_code == 302
    assert client.get("/account").status_code == 200
    # Single use (a fresh page: the CSRF token changes at sign-in).
    data["csrf_token"] = csrf_from(client.get(path).get_data(as_text=True))
    again = client.http.post("/signin/link", data=data)
    assert again.status_code == 409 and "no longer valid" in again.get_data(as_text=True)


def test_only_the_hash_of_the_token_is_stored(client: WebClient, app) -> None:
    from fundcircle.auth.models import LoginToken
    from fundcircle.extensions import db

    client.request_link(EMAIL)
    token = _link_path(client).rsplit("/", 1)[1]
    with app.app_context():
        row = db.session.scalar(select(LoginToken))
        assert token not in (row.token_hash, row.code_hash, row.browser_hash)
        assert len(token) >= 43  # 256 bits, URL-safe base64


def test_link_expires_after_ten_minutes(client: WebClient) -> None:
    with freeze_time("2027-03-01 12:00:00") as clock:
        client.request_link(EMAIL)
        path = _link_path(client)
        clock.tick(601)
        landing = client.get(path)
        response = client.http.post("/signin/link", data={"csrf_token": csrf_from(landing.get_data(as_text=True)),
                                                          "token": path.rsplit("/", 1)[1]})
        assert response.status_code == 409
        assert client.get("/account").status_code == 302


def test_another_browser_cannot_use_the_link(client: WebClient, app) -> None:
    client.request_link(EMAIL)
    path = _link_path(client)
    other = WebClient(app)
    landing = other.get(path)
    response = other.http.post("/signin/link", data={"csrf_token": csrf_from(landing.get_data(as_text=True)),
                                                     "token": path.rsplit("/", 1)[1]})
    assert response.status_code == 409
    assert "browser where you asked" in response.get_data(as_text=True)
    assert other.get("/account").status_code == 302


def test_typed_code_signs_in_and_wrong_codes_are_limited(client: WebClient) -> None:
    client.request_link(EMAIL)
    code = CODE_RE.search(client.last_mail(EMAIL)).group(1)
    page = f"/signin/check?email={EMAIL}"
    for _ in range(5):
        wrong = client.post("/signin/code", {"email": EMAIL, "code": "AAAA-AAAA"}, form_page=page)
        assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    locked = client.post("/signin/code", {"email": EMAIL, "code": code}, form_page=page)
    assert locked.status_code == 409 and "Too many wrong codes" in locked.get_data(as_text=True)
    client.request_link(EMAIL)
    code = CODE_RE.search(client.last_mail(EMAIL)).group(1)
    assert client.post("/signin/code", {"email": EMAIL, "code": code.lower()}, form_page=page).status_code == 302
    assert client.get("/account").status_code == 200


def test_same_answer_for_known_and_unknown_addresses(client: WebClient, app) -> None:
    from fundcircle.extensions import db
    from tests.support.factories import create_user

    with app.app_context():
        create_user(db.session, "known@example.org")
        db.session.commit()
    known = client.request_link("known@example.org")
    unknown = client.request_link("nobody@example.org")
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"].split("?")[0] == unknown.headers["Location"].split("?")[0]


def test_rate_limit_per_address(client: WebClient) -> None:
    for _ in range(5):
        assert client.request_link(EMAIL).status_code == 302
    sixth = client.request_link(EMAIL)
    assert sixth.status_code == 429 and "Too many sign-in requests" in sixth.get_data(as_text=True)


def test_sign_out_revokes_the_server_side_session(client: WebClient, app) -> None:
    client.sign_in(EMAIL)
    cookie = client.http.get_cookie("session")
    assert cookie is not None
    stolen = WebClient(app)
    stolen.http.set_cookie("session", cookie.value)
    assert stolen.get("/account").status_code == 200
    client.sign_out()
    assert client.get("/account").status_code == 302
    # The old cookie no longer works anywhere.
    assert stolen.get("/account").status_code == 302


def test_idle_and_absolute_session_limits(client: WebClient) -> None:
    with freeze_time("2027-03-01 08:00:00") as clock:
        client.sign_in(EMAIL)
        clock.tick(29 * 60)
        assert client.get("/account").status_code == 200
        clock.tick(31 * 60)  # idle more than 30 minutes
        assert client.get("/account").status_code == 302
    with freeze_time("2027-03-02 08:00:00") as clock:
        client.sign_in(EMAIL)
        for _ in range(25):  # active every 29 minutes for 12 h+
            clock.tick(29 * 60)
            status = client.get("/account").status_code
        assert status == 302


def test_next_path_is_local_only(client: WebClient) -> None:
    response = client.sign_in(EMAIL, next_path="//evil.example/steal")
    assert response.headers["Location"] == "/"
    client2 = client
    response = client2.sign_in(EMAIL, next_path="/me/proposals")
    assert response.headers["Location"] == "/me/proposals"


def test_login_link_get_never_consumes(client: WebClient, app) -> None:
    from fundcircle.auth.models import LoginToken
    from fundcircle.extensions import db

    client.request_link(EMAIL)
    path = _link_path(client)
    for _ in range(3):
        client.get(path)
        client.http.head(path)
    with app.app_context():
        assert db.session.scalar(select(LoginToken)).used_at is None
    assert re.search(r"/signin/link/[A-Za-z0-9_-]+$", path)
