"""Second factor: TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits) for treasurers and facilitators.

For views that move money or run a circle, call ``require_second_factor()`` after the permission
check (or decorate the view with ``@second_factor_required``): a signed-in person must have passed
a TOTP challenge once in this session; otherwise they are redirected to enrol (first time) or to
the challenge, and come back to the page afterwards.

Rules:
- A code is accepted for the current step and one step either side (clock drift), and never
  twice: the last accepted step is stored, so a replayed or older code is refused.
- Wrong codes are counted per person; after ``SECOND_FACTOR_MAX_ATTEMPTS`` in a row code entry
  is locked for ``SECOND_FACTOR_LOCKOUT``. The count survives the error response.
- The shared secret is stored encrypted (Fernet; the key is derived from SECRET_KEY, so rotating
  SECRET_KEY means re-enrolling) and never shown again. While enrolling it lives only in the
  person's signed session cookie, so showing the enrolment page writes nothing to the database.

The algorithm is a dozen lines of the standard library (checked against RFC 6238's test vectors);
no QR-code dependency: the enrolment page shows the secret and the ``otpauth://`` URI.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from fundcircle.audit.operations import record
from fundcircle.auth.models import AuthSession, SecondFactorPass, TotpCredential, User
from fundcircle.auth.operations import safe_next_path
from fundcircle.auth.permissions import require_user
from fundcircle.errors import ConfigurationError, RuleViolation, ValidationError
from fundcircle.forms import BaseForm

STEP_S = 30
DIGITS = 6
WINDOW_STEPS = 1
ISSUER = "fundcircle"


# -- RFC 6238 --------------------------------------------------------------------------------------

def new_secret() -> str:
    """A fresh 160-bit secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key_bytes(secret_b32: str) -> bytes:
    cleaned = secret_b32.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 HOTP value of ``counter``."""
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def time_step(now: dt.datetime) -> int:
    return int(now.timestamp()) // STEP_S


def totp(secret_b32: str, now: dt.datetime) -> str:
    """The code an authenticator app shows at ``now``."""
    return hotp(_key_bytes(secret_b32), time_step(now))


def otpauth_uri(secret_b32: str, account: str) -> str:
    label = quote(f"{ISSUER}:{account}")
    return f"otpauth://totp/{label}?" + urlencode({"secret": secret_b32, "issuer": ISSUER, "algorithm": "SHA1",
                                                    "digits": DIGITS, "period": STEP_S})


# -- the secret at rest ------------------------------------------------------------------------------

def _fernet(secret_key: str) -> Fernet:
    derived = hmac.new(secret_key.encode("utf-8"), b"fundcircle totp secret v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secret(secret_b32: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret_b32.encode("ascii")).decode("ascii")


def decrypt_secret(token: str, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise ConfigurationError("An authenticator secret cannot be decrypted: SECRET_KEY changed since it was "
                                 "enrolled. Ask an administrator to reset the second factor.") from None


# -- operations --------------------------------------------------------------------------------------

def credential_of(session: Session, user: User, *, lock: bool = False) -> TotpCredential | None:
    stmt = select(TotpCredential).where(TotpCredential.user_id == user.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def is_enrolled(session: Session, user: User) -> bool:
    cred = credential_of(session, user)
    return cred is not None and cred.confirmed_at is not None


def needs_second_factor(user: User | None) -> bool:
    """Treasurers and facilitators (of any circle) protect their session with a second factor."""
    return user is not None and any(m.is_treasurer or m.is_facilitator for m in user.memberships)


def has_passed(session: Session, auth_session: AuthSession | None) -> bool:
    if auth_session is None:
        return False
    return session.scalar(select(SecondFactorPass.id).where(SecondFactorPass.auth_session_id == auth_session.id)) is not None


def match_step(secret_b32: str, code: str, now: dt.datetime, last_used_step: int | None) -> tuple[int | None, bool]:
    """The time step ``code`` belongs to (current ±1) if it was not used yet; and whether it was a replay."""
    digits = "".join((code or "").split())
    if len(digits) != DIGITS or not digits.isdigit():
        return None, False
    key = _key_bytes(secret_b32)
    step = time_step(now)
    for candidate in range(step - WINDOW_STEPS, step + WINDOW_STEPS + 1):
        if hmac.compare_digest(hotp(key, candidate), digits):
            if last_used_step is not None and candidate <= last_used_step:
                return None, True
            return candidate, False
    return None, False


def _accept_code(session: Session, cred: TotpCredential, code: str, *, secret_key: str, now: dt.datetime,
                 max_attempts: int, lockout: dt.timedelta) -> None:
    """Accept ``code`` once, or count the failure (the caller must commit even on error)."""
    if cred.locked_until is not None and cred.locked_until > now:
        raise RuleViolation(f"Too many wrong codes. Code entry is locked until "
                            f"{cred.locked_until.strftime('%H:%M')} UTC.")
    matched, replayed = match_step(decrypt_secret(cred.secret_encrypted, secret_key), code, now, cred.last_used_step)
    if matched is None:
        cred.failed_attempts += 1
        left = max_attempts - cred.failed_attempts
        if left <= 0:
            cred.failed_attempts = 0
            cred.locked_until = now + lockout
            record(session, actor=None, action="second_factor.locked", circle_id=None, obj=cred,
                   details={"user_id": cred.user_id, "until": cred.locked_until.isoformat()})
            raise RuleViolation(f"Too many wrong codes. Code entry is locked for {int(lockout.total_seconds() // 60)} minutes.")
        reason = ("That code was already used. Wait for the next code in your app." if replayed
                  else "That code is not right. Check the time on your phone and try the current code.")
        raise ValidationError(f"{reason} ({left} attempt{'s' if left != 1 else ''} left)",
                              field_errors={"code": [reason]})
    cred.last_used_step = matched
    cred.failed_attempts = 0
    cred.locked_until = None


def _pass_session(session: Session, auth_session: AuthSession, now: dt.datetime) -> None:
    if not has_passed(session, auth_session):
        session.add(SecondFactorPass(auth_session_id=auth_session.id, passed_at=now))


def confirm_enrolment(session: Session, *, user: User, auth_session: AuthSession, secret_b32: str, code: str,
                      secret_key: str, now: dt.datetime) -> TotpCredential:
    """Store the authenticator the person just set up, once a current code proves their app holds
    ``secret_b32``; this session counts as passed. The code's step is spent (no replay later).

    Until now the secret lived only in the person's own (signed) session cookie: showing the
    enrolment page writes nothing. Raises ValidationError (wrong or replayed code) and RuleViolation
    (already enrolled, also when a concurrent confirmation won). Flushes.
    """
    if credential_of(session, user, lock=True) is not None:
        raise RuleViolation("You already use an authenticator app.")
    matched, _replayed = match_step(secret_b32, code, now, None)
    if matched is None:
        reason = "That code is not right. Check the time on your phone and try the current code."
        raise ValidationError(reason, field_errors={"code": [reason]})
    cred = TotpCredential(user_id=user.id, secret_encrypted=encrypt_secret(secret_b32, secret_key), created_at=now,
                          confirmed_at=now, last_used_step=matched, failed_attempts=0)
    try:
        with session.begin_nested():
            session.add(cred)
    except IntegrityError:  # a concurrent confirmation of the same person won
        raise RuleViolation("You already use an authenticator app.") from None
    _pass_session(session, auth_session, now)
    record(session, actor=user, action="second_factor.enrolled", circle_id=None, obj=cred)
    session.flush()
    return cred


def pass_challenge(session: Session, *, user: User, auth_session: AuthSession, code: str, secret_key: str,
                   now: dt.datetime, max_attempts: int, lockout: dt.timedelta) -> None:
    """Check a code for this signed-in session (once per session).

    Raises ValidationError (wrong or replayed code; counted: commit anyway), RuleViolation (locked,
    not enrolled). Flushes.
    """
    cred = credential_of(session, user, lock=True)
    if cred is None or cred.confirmed_at is None:
        raise RuleViolation("Set up an authenticator app first.")
    _accept_code(session, cred, code, secret_key=secret_key, now=now, max_attempts=max_attempts, lockout=lockout)
    _pass_session(session, auth_session, now)
    session.flush()


def reset(session: Session, *, user: User, actor: User | None, now: dt.datetime, reason: str) -> bool:
    """Remove a person's authenticator (lost phone) and end every session's pass, so their next
    treasury or facilitator page asks them to enrol again. Audited; False when there was none.
    Flushes."""
    cred = credential_of(session, user, lock=True)
    if cred is None:
        return False
    session_ids = select(AuthSession.id).where(AuthSession.user_id == user.id)
    for passed in session.scalars(select(SecondFactorPass).where(SecondFactorPass.auth_session_id.in_(session_ids))):
        session.delete(passed)
    session.delete(cred)
    record(session, actor=actor, action="second_factor.reset", circle_id=None, obj=user,
           details={"reason": reason[:500], "at": now.isoformat()})
    session.flush()
    return True


def seed_known_secret(session: Session, *, user: User, secret_b32: str, secret_key: str, now: dt.datetime) -> None:
    """Demo only: give ``user`` a confirmed authenticator with a published secret. Flushes."""
    if credential_of(session, user) is None:
        session.add(TotpCredential(user_id=user.id, secret_encrypted=encrypt_secret(secret_b32, secret_key),
                                   created_at=now, confirmed_at=now, failed_attempts=0))
        session.flush()


# -- the guard other views call -------------------------------------------------------------------------

class SecondFactorRequired(HTTPException):
    """Raised by ``require_second_factor``: a redirect to the enrolment or the challenge page."""

    code = 302

    def __init__(self, target: str) -> None:
        super().__init__()
        self.response = redirect(target)


def _return_path() -> str:
    # After a GET come back to the same page; after a POST, to the page the form was on (the
    # POST itself is not replayed: the person submits it again once verified).
    if request.method == "GET":
        return safe_next_path(request.full_path.rstrip("?"))
    referrer = request.referrer or ""
    host = request.host_url.rstrip("/")
    return safe_next_path(referrer[len(host):] if referrer.startswith(host) else "/")


def require_second_factor() -> None:
    """Require that this signed-in session passed the TOTP challenge; call it in any treasury or
    facilitator view right after the permission check.

    Anonymous visitors are sent to sign in; people without an authenticator to the enrolment page;
    enrolled people to the challenge; each comes back to the page afterwards. Passing counts for
    the rest of the signed-in session.
    """
    from fundcircle.extensions import db

    user = require_user()
    if has_passed(db.session, g.get("auth_session")):
        return
    endpoint = "auth.second_factor_challenge" if is_enrolled(db.session, user) else "auth.second_factor"
    raise SecondFactorRequired(url_for(endpoint, next=_return_path()))


F = TypeVar("F", bound=Callable[..., Any])


def second_factor_required(view: F) -> F:
    """Decorator form of ``require_second_factor`` (checked before the view runs)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        require_second_factor()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


# -- views (registered in auth/blueprint.py) ---------------------------------------------------------------

class CodeEntryForm(BaseForm):
    code = StringField("6-digit code from your authenticator app",
                       validators=[DataRequired(message="Enter the code."), Length(max=12)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})
    next = HiddenField()


def _limits() -> dict[str, Any]:
    return {"max_attempts": current_app.config["SECOND_FACTOR_MAX_ATTEMPTS"],
            "lockout": current_app.config["SECOND_FACTOR_LOCKOUT"]}


PENDING_KEY = "totp_pending_secret"


def enrol_view():  # type: ignore[no-untyped-def]
    """GET: show a new secret (kept in the session cookie until confirmed) or the status;
    POST: confirm with a code."""
    from flask import session as cookie

    from fundcircle.db import utcnow
    from fundcircle.extensions import db

    user = require_user()
    g._no_store = True  # the page shows a secret
    next_path = safe_next_path(request.values.get("next"))
    if is_enrolled(db.session, user):
        cookie.pop(PENDING_KEY, None)
        return render_template("auth/second_factor.html", enrolled=True, next_path=next_path,
                               passed=has_passed(db.session, g.get("auth_session")))
    form = CodeEntryForm(next=next_path)
    status = 200
    pending = cookie.get(PENDING_KEY)
    if not isinstance(pending, str) or len(pending) != 32:
        pending = cookie[PENDING_KEY] = new_secret()
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                confirm_enrolment(db.session, user=user, auth_session=g.auth_session, secret_b32=pending,
                                  code=form.code.data, secret_key=current_app.config["SECRET_KEY"], now=utcnow())
            except ValidationError as err:
                form.code.errors = [err.user_message]
            except RuleViolation as err:
                form.code.errors = [err.user_message]
                status = 409
            else:
                cookie.pop(PENDING_KEY, None)
                flash("Your authenticator app is set up.", "success")
                return redirect(next_path if next_path != "/" else url_for("auth.account"))
    return render_template("auth/second_factor.html", enrolled=False, form=form, next_path=next_path,
                           secret=" ".join(pending[i:i + 4] for i in range(0, len(pending), 4)),
                           uri=otpauth_uri(pending, user.email)), status


def challenge_view():  # type: ignore[no-untyped-def]
    from fundcircle.db import utcnow
    from fundcircle.extensions import db

    user = require_user()
    next_path = safe_next_path(request.values.get("next"))
    if not is_enrolled(db.session, user):
        return redirect(url_for("auth.second_factor", next=next_path))
    if has_passed(db.session, g.get("auth_session")):
        return redirect(next_path)
    form = CodeEntryForm(next=next_path)
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/second_factor_challenge.html", form=form), 422
        try:
            pass_challenge(db.session, user=user, auth_session=g.auth_session, code=form.code.data,
                           secret_key=current_app.config["SECRET_KEY"], now=utcnow(), **_limits())
        except ValidationError as err:
            form.code.errors = [err.user_message]
            db.session.commit()  # keep the failed-attempt count even though the answer is an error
            return render_template("auth/second_factor_challenge.html", form=form), 422
        except RuleViolation as err:
            form.code.errors = [err.user_message]
            db.session.commit()
            return render_template("auth/second_factor_challenge.html", form=form), 429
        return redirect(next_path)
    return render_template("auth/second_factor_challenge.html", form=form)
