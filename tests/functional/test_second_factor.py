"""Second factor (TOTP): RFC vectors, enrolment, the once-per-session challenge, replay, lockout."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from fundcircle.auth import second_factor as sf
from fundcircle.auth.models import TotpCredential
from fundcircle.extensions import db
from tests.support import factories as f
from tests.support.web import WebClient

SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7 ]+)</code>')
NOW = dt.datetime(2027, 3, 1, 12, 0, 5, tzinfo=dt.timezone.utc)  # 5 s into a 30-second step


@pytest.mark.parametrize(("unix_s", "code"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_rfc6238_sha1_vectors(unix_s: int, code: str) -> None:
    assert sf.hotp(b"12345678901234567890", unix_s // 30, digits=8) == code


def test_secret_is_stored_encrypted_and_round_trips() -> None:
    secret = sf.new_secret()
    token = sf.encrypt_secret(secret, "k" * 40)
    assert secret not in token and sf.decrypt_secret(token, "k" * 40) == secret
    with pytest.raises(Exception, match="SECRET_KEY changed"):
        sf.decrypt_secret(token, "other" * 10)
    assert sf.otpauth_uri("ABC", "jo@example.org").startswith("otpauth://totp/fundcircle%3Ajo%40example.org?secret=ABC")


@pytest.fixture
def guarded_app(app):  # type: ignore[no-untyped-def]
    """The app with one page that calls require_second_factor (as the treasury pages do)."""

    def treasury_page():  # type: ignore[no-untyped-def]
        sf.require_second_factor()
        return "treasury ok"

    app.add_url_rule("/_test/treasury", "test_treasury", treasury_page)
    with app.app_context():
        f.create_circle(db.session, facilitator_email="fac@example.org")
        db.session.commit()
    return app


def enrol(client: WebClient) -> str:
    page = client.text("/account/second-factor")
    secret = SECRET_RE.search(page).group(1).replace(" ", "")  # type: ignore[union-attr]
    assert client.text("/account/second-factor").count(secret[:4]) >= 1  # same secret on reload
    return secret


def test_enrolment_then_challenge_once_per_session(guarded_app) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(NOW) as clock:
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        first = client.get("/_test/treasury")
        assert first.status_code == 302 and "/account/second-factor?next=/_test/treasury" in first.location
        secret = enrol(client)
        with guarded_app.app_context():  # showing the secret wrote nothing: it waits in the session cookie
            assert db.session.scalar(select(TotpCredential)) is None
        wrong = client.post("/account/second-factor", {"code": "000000", "next": "/_test/treasury"})
        assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
        ok = client.post("/account/second-factor", {"code": sf.totp(secret, NOW), "next": "/_test/treasury"})
        assert ok.status_code == 302 and ok.location.endswith("/_test/treasury")
        assert client.get("/_test/treasury").get_data(as_text=True) == "treasury ok"
        # the secret is never shown again
        assert SECRET_RE.search(client.text("/account/second-factor")) is None
        with guarded_app.app_context():
            cred = db.session.scalar(select(TotpCredential))
            assert cred.confirmed_at is not None and secret not in cred.secret_encrypted

        # a new sign-in must pass the challenge again; the code used for enrolment is spent
        other = WebClient(guarded_app)
        other.sign_in("fac@example.org")
        to_challenge = other.get("/_test/treasury")
        assert "/account/second-factor/check?next=/_test/treasury" in to_challenge.location
        replay = other.post("/account/second-factor/check", {"code": sf.totp(secret, NOW), "next": "/_test/treasury"})
        assert replay.status_code == 422 and "already used" in replay.get_data(as_text=True)
        clock.tick(dt.timedelta(seconds=30))
        passed = other.post("/account/second-factor/check",
                            {"code": sf.totp(secret, NOW + dt.timedelta(seconds=30)), "next": "/_test/treasury"})
        assert passed.status_code == 302 and passed.location.endswith("/_test/treasury")
        assert other.get("/_test/treasury").status_code == 200


def test_previous_and_next_step_accepted_but_not_two_steps_away(guarded_app) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(NOW) as clock:
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        secret = enrol(client)
        assert client.post("/account/second-factor", {"code": sf.totp(secret, NOW - dt.timedelta(seconds=30))}
                           ).status_code == 302
        client2 = WebClient(guarded_app)
        client2.sign_in("fac@example.org")
        for offset_s, expected in ((-60, 422), (60, 422), (30, 302)):
            code = sf.totp(secret, NOW + dt.timedelta(seconds=offset_s))
            assert client2.post("/account/second-factor/check", {"code": code}).status_code == expected, offset_s
        clock.tick(dt.timedelta(seconds=1))


def test_wrong_codes_lock_code_entry(guarded_app) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(NOW) as clock:
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        secret = enrol(client)
        assert client.post("/account/second-factor", {"code": sf.totp(secret, NOW)}).status_code == 302
        other = WebClient(guarded_app)
        other.sign_in("fac@example.org")
        statuses = [other.post("/account/second-factor/check", {"code": "12345" + str(i)}).status_code
                    for i in range(5)]
        assert statuses == [422, 422, 422, 422, 429]
        with guarded_app.app_context():
            from fundcircle.audit.models import AuditEvent

            assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "second_factor.locked")) is not None
        clock.tick(dt.timedelta(seconds=30))
        right = sf.totp(secret, NOW + dt.timedelta(seconds=30))
        locked = other.post("/account/second-factor/check", {"code": right})
        assert locked.status_code == 429 and "locked" in locked.get_data(as_text=True)
        assert other.get("/_test/treasury").status_code == 302
        clock.tick(dt.timedelta(minutes=15))
        later = NOW + dt.timedelta(minutes=15, seconds=30)
        assert other.post("/account/second-factor/check", {"code": sf.totp(secret, later)}).status_code == 302
        assert other.get("/_test/treasury").status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(guarded_app) -> None:  # type: ignore[no-untyped-def]
    response = WebClient(guarded_app).get("/_test/treasury")
    assert response.status_code == 302 and "/signin" in response.location
    assert WebClient(guarded_app).get("/account/second-factor").status_code == 302


def test_malformed_codes_are_form_errors(guarded_app) -> None:  # type: ignore[no-untyped-def]
    with freeze_time(NOW):
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        enrol(client)
        for code in ("", "abcdef", "1234567890123", "12\x0034"):
            response = client.post("/account/second-factor", {"code": code})
            assert response.status_code == 422, code


def test_reset_sends_the_person_back_to_enrolment(guarded_app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.auth.models import User
    from fundcircle.audit.models import AuditEvent

    with freeze_time(NOW):
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        secret = enrol(client)
        assert client.post("/account/second-factor", {"code": sf.totp(secret, NOW)}).status_code == 302
        assert client.get("/_test/treasury").status_code == 200
        with guarded_app.app_context():
            user = db.session.scalar(select(User).where(User.email == "fac@example.org"))
            assert sf.reset(db.session, user=user, actor=None, now=NOW, reason="lost phone") is True
            assert sf.reset(db.session, user=user, actor=None, now=NOW, reason="again") is False
            db.session.commit()
            assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "second_factor.reset")) is not None
        again = client.get("/_test/treasury")
        assert again.status_code == 302 and "/account/second-factor?next=" in again.location
        assert enrol(client) != secret


def test_cli_prints_demo_codes_and_resets(app, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from fundcircle.cli import main
    from fundcircle.contributions.demo import demo_totp_secret
    from fundcircle.db import utcnow

    with app.app_context():
        user = f.create_user(db.session, "jonas@riverside.example")
        sf.seed_known_secret(db.session, user=user, secret_b32=demo_totp_secret(user.email),
                             secret_key=app.config["SECRET_KEY"], now=utcnow())
        f.create_user(db.session, "nobody@example.org")
        db.session.commit()
    env = {"DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"], "FUNDCIRCLE_ENV": "testing",
           "FUNDCIRCLE_INSTANCE_PATH": str(tmp_path / "cli")}
    runner = CliRunner()
    code = runner.invoke(main, ["second-factor", "code", "jonas@riverside.example"], env=env)
    assert code.exit_code == 0, code.output
    assert code.output.strip() in {sf.totp(demo_totp_secret("jonas@riverside.example"), utcnow() + dt.timedelta(seconds=s))
                                   for s in (-30, 0, 30)}
    none = runner.invoke(main, ["second-factor", "code", "nobody@example.org"], env=env)
    assert none.exit_code == 1 and "has no authenticator" in none.output
    refused = runner.invoke(main, ["second-factor", "code", "jonas@riverside.example"],
                            env={**env, "FUNDCIRCLE_ENV": "production"})
    assert refused.exit_code == 1 and "production" in refused.output
    reset = runner.invoke(main, ["second-factor", "reset", "jonas@riverside.example", "--reason", "lost phone"], env=env)
    assert reset.exit_code == 0, reset.output
    assert runner.invoke(main, ["second-factor", "code", "jonas@riverside.example"], env=env).exit_code == 1


@pytest.mark.parametrize("next_param", ["/%09/evil.example", "/%0d%0a/evil.example", "/%0a", "/%5c%5cevil.example"])
def test_next_with_control_characters_stays_on_the_site(guarded_app, next_param: str) -> None:  # type: ignore[no-untyped-def]
    # Browsers drop tabs and newlines from a Location ("/\t/evil" is "//evil", another host);
    # a newline in a header would be a 500.
    with freeze_time(NOW):
        client = WebClient(guarded_app)
        client.sign_in("fac@example.org")
        secret = enrol(client)
        assert client.post("/account/second-factor", {"code": sf.totp(secret, NOW), "next": "/"}).status_code == 302
        answer = client.get(f"/account/second-factor/check?next={next_param}")
        assert answer.status_code == 302 and answer.headers["Location"] == "/"
