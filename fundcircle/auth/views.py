"""Sign-in, sign-out and account pages. Thin: load, check, validate, one operation, respond."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from fundcircle.auth import operations
from fundcircle.auth.forms import CodeForm, EmptyForm, LinkForm, ProfileForm, SignInForm
from fundcircle.auth.models import AuthSession
from fundcircle.auth.permissions import require_user
from fundcircle.db import utcnow
from fundcircle.errors import RuleViolation, ValidationError
from fundcircle.extensions import db
from sqlalchemy import select


def load_signed_in_user() -> None:
    """before_app_request: g.user / g.auth_session from the server-side session row."""
    g.user = None
    g.auth_session = None
    sid = session.get("sid")
    if not sid:
        return
    row = operations.load_session(db.session, sid=sid, now=utcnow(),
                                  idle_timeout=current_app.config["SESSION_IDLE_TIMEOUT"])
    if row is None:
        session.pop("sid", None)
        return
    g.user = row.user
    g.auth_session = row


def _base_url() -> str:
    return current_app.config.get("BASE_URL") or request.host_url


def _browser_nonce() -> str:
    nonce = session.get("login_nonce")
    if not nonce:
        nonce = session["login_nonce"] = operations.new_browser_nonce()
    return nonce


def _signed_in(user, next_path: str):  # type: ignore[no-untyped-def]
    sid = operations.start_session(
        db.session, user=user, now=utcnow(), user_agent=request.headers.get("User-Agent", ""),
        absolute_lifetime=current_app.config["SESSION_ABSOLUTE_LIFETIME"])
    # Fresh cookie contents at sign-in (ASVS 7.2.4): nothing from the anonymous session survives.
    session.clear()
    session["sid"] = sid
    session.permanent = True
    flash("You are signed in.", "success")
    return redirect(operations.safe_next_path(next_path))


def sign_in():  # type: ignore[no-untyped-def]
    form = SignInForm(next=request.args.get("next", ""))
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/sign_in.html", form=form), 422
        limits = {
            "per_address": current_app.config["LOGIN_LINKS_PER_ADDRESS_PER_HOUR"],
            "per_ip": current_app.config["LOGIN_LINKS_PER_IP_PER_HOUR"],
            "lifetime": current_app.config["LOGIN_TOKEN_LIFETIME"],
        }
        try:
            operations.request_sign_in(
                db.session, email=form.email.data, browser_nonce=_browser_nonce(),
                ip_address=request.remote_addr or "", next_path=form.next.data or "/", now=utcnow(),
                base_url=_base_url(), limits=limits)
        except RuleViolation as err:
            form.email.errors.append(err.user_message)
            return render_template("auth/sign_in.html", form=form), 429
        return redirect(url_for("auth.check_mail", email=operations.normalize_email(form.email.data)))
    return render_template("auth/sign_in.html", form=form)


def check_mail():  # type: ignore[no-untyped-def]
    email = request.args.get("email", "")[:254]
    return render_template("auth/check_mail.html", form=CodeForm(email=email), email=email)


def enter_code():  # type: ignore[no-untyped-def]
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/check_mail.html", form=form, email=form.email.data or ""), 422
    try:
        user, next_path = operations.redeem_code(
            db.session, email=form.email.data, code=form.code.data, browser_nonce=session.get("login_nonce"),
            now=utcnow(), max_attempts=current_app.config["LOGIN_CODE_MAX_ATTEMPTS"])
    except ValidationError as err:
        form.code.errors.append(err.user_message)
        db.session.commit()  # keep the failed-attempt count even though the answer is an error
        return render_template("auth/check_mail.html", form=form, email=form.email.data), 422
    except RuleViolation as err:
        form.code.errors.append(err.user_message)
        return render_template("auth/check_mail.html", form=form, email=form.email.data), 409
    return _signed_in(user, next_path)


def link_landing(token: str):  # type: ignore[no-untyped-def]
    # GET never signs in: mail scanners open links. A person clicks the button (POST).
    g._no_store = True
    response = current_app.make_response(render_template("auth/continue.html", form=LinkForm(token=token)))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def link_redeem():  # type: ignore[no-untyped-def]
    form = LinkForm()
    if not form.validate_on_submit():
        return render_template("auth/continue.html", form=form), 422
    try:
        user, next_path = operations.redeem_link(db.session, token=form.token.data,
                                                 browser_nonce=session.get("login_nonce"), now=utcnow())
    except RuleViolation as err:
        return render_template("auth/continue.html", form=form, error=err.user_message), 409
    return _signed_in(user, next_path)


def sign_out():  # type: ignore[no-untyped-def]
    form = EmptyForm()
    if form.validate_on_submit() and g.get("auth_session") is not None:
        operations.end_session(db.session, auth_session=g.auth_session, now=utcnow())
    session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("circles.home"))


def account():  # type: ignore[no-untyped-def]
    user = require_user()
    form = ProfileForm(obj=user)
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/account.html", form=form, sessions=_sessions(user)), 422
        operations.update_profile(db.session, user=user, display_name=form.display_name.data or "")
        flash("Saved.", "success")
        return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form, sessions=_sessions(user), end_form=EmptyForm())


def end_other_sessions():  # type: ignore[no-untyped-def]
    user = require_user()
    if EmptyForm().validate_on_submit():
        count = operations.end_other_sessions(db.session, user=user, keep=g.auth_session, now=utcnow())
        flash(f"Signed out {count} other session{'s' if count != 1 else ''}.", "success")
    return redirect(url_for("auth.account"))


def _sessions(user):  # type: ignore[no-untyped-def]
    return db.session.scalars(select(AuthSession).where(
        AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > utcnow()).order_by(AuthSession.last_seen_at.desc())).all()
