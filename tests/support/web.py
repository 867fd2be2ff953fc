"""A test client that behaves like a browser user: CSRF tokens come from the pages, sign-in
goes through the real link in the (dev outbox) mail."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
LINK_RE = re.compile(r"(https?://\S+/signin/link/\S+)")
CODE_RE = re.compile(r"code into that page: ([A-Z0-9]{4}-[A-Z0-9]{4})")


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise AssertionError("no CSRF token on the page")
    return match.group(1) or match.group(2)


class WebClient:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, *, form_page: str | None = None,
             follow_redirects: bool = False, **kwargs: Any) -> TestResponse:
        """POST with a CSRF token taken from ``form_page`` (default: the same path)."""
        page = self.http.get(form_page or path)
        token = csrf_from(page.get_data(as_text=True))
        payload = {"csrf_token": token, **(data or {})}
        return self.http.post(path, data=payload, follow_redirects=follow_redirects, **kwargs)

    def post_raw(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.http.post(path, data=data or {}, **kwargs)

    def text(self, path: str) -> str:
        return self.http.get(path).get_data(as_text=True)

    # -- sign-in through the real flow ---------------------------------------------------------

    def last_mail(self, to_address: str) -> str:
        from fundcircle.extensions import db
        from fundcircle.notifications.models import OutgoingMail

        with self.app.app_context():
            mail = db.session.scalar(select(OutgoingMail).where(OutgoingMail.to_address == to_address.lower())
                                     .order_by(OutgoingMail.id.desc()).limit(1))
            assert mail is not None, f"no mail to {to_address}"
            return mail.body_text

    def request_link(self, email: str, next_path: str = "/") -> TestResponse:
        return self.post("/signin", {"email": email, "next": next_path}, form_page="/signin")

    def sign_in(self, email: str, next_path: str = "/") -> TestResponse:
        response = self.request_link(email, next_path)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        link = LINK_RE.search(self.last_mail(email)).group(1)  # type: ignore[union-attr]
        path = link.split("://", 1)[1].split("/", 1)[1]
        landing = self.http.get("/" + path)
        assert landing.status_code == 200
        token = path.rsplit("/", 1)[1]
        done = self.http.post("/signin/link", data={"csrf_token": csrf_from(landing.get_data(as_text=True)),
                                                    "token": token})
        assert done.status_code == 302, done.get_data(as_text=True)[:800]
        return done

    def sign_out(self) -> TestResponse:
        return self.post("/signout", {}, form_page="/account")
