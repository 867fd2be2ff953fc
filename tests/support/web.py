"""A test client that behaves like a browser user: CSRF tokens come from the pages, sign-in
goes through the real link in the (dev outbox) mail."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')
LINK_RE = re.compile(r"(https?://\S+/signin/link/\S+)")
CODE_RE = re.compile(r"code into that page: ([A-Z0-9]{4}-[A-Z0-9]{4})")
TOTP_SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    if not match:
        raise AssertionError("no CSRF token on the page")
    return match.group(1) or match.group(2)


def unused_totp_code(app: Flask, email: str | None) -> str:
    """A current TOTP code of ``email``'s authenticator that the app has not accepted yet. Codes
    are single use, and a test may sign one person in several times within one 30-second step (or
    under a frozen clock)."""
    from fundcircle.auth import second_factor as sf
    from fundcircle.auth.models import TotpCredential, User
    from fundcircle.db import utcnow
    from fundcircle.extensions import db

    assert email is not None, "sign in first"
    current = sf.time_step(utcnow())
    with app.app_context():
        cred = db.session.scalar(select(TotpCredential).join(User, User.id == TotpCredential.user_id)
                                 .where(User.email == email.lower()))
        assert cred is not None and cred.confirmed_at is not None, f"{email} has no authenticator"
        secret = sf.decrypt_secret(cred.secret_encrypted, app.config["SECRET_KEY"])
        unused = [step for step in range(current - sf.WINDOW_STEPS, current + sf.WINDOW_STEPS + 1)
                  if cred.last_used_step is None or step > cred.last_used_step]
        if not unused:
            # every code in the window is spent: behave as if the person had waited for the next
            # code (tests do not sleep 30 seconds)
            cred.last_used_step = current - sf.WINDOW_STEPS - 1
            db.session.commit()
            unused = [current - sf.WINDOW_STEPS]
    return sf.totp(secret, dt.datetime.fromtimestamp(unused[0] * sf.STEP_S, dt.timezone.utc))


class WebClient:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http: FlaskClient = app.test_client()
        self.email: str | None = None  # who sign_in signed in (pass_second_factor needs it)

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
        self.email = email.lower()
        return done

    def pass_second_factor(self, next_path: str = "/") -> TestResponse:
        """Pass the TOTP second factor for this signed-in session, as a facilitator or treasurer
        with an authenticator app would: enrol on first use (the page shows the secret), otherwise
        answer the challenge. Returns the redirect to ``next_path``."""
        from fundcircle.auth import second_factor as sf
        from fundcircle.db import utcnow

        enrol = self.http.get("/account/second-factor", query_string={"next": next_path})
        assert enrol.status_code == 200, enrol.status_code
        shown = TOTP_SECRET_RE.search(enrol.get_data(as_text=True))
        if shown is not None:
            code = sf.totp(shown.group(1).replace(" ", ""), utcnow())
            done = self.post("/account/second-factor", {"code": code, "next": next_path})
        else:
            check = self.http.get("/account/second-factor/check", query_string={"next": next_path})
            if check.status_code == 302:  # already passed in this session
                return check
            done = self.http.post("/account/second-factor/check", data={
                "csrf_token": csrf_from(check.get_data(as_text=True)), "code": unused_totp_code(self.app, self.email),
                "next": next_path})
        assert done.status_code == 302, done.get_data(as_text=True)[:800]
        return done

    def sign_out(self) -> TestResponse:
        return self.post("/signout", {}, form_page="/account")
