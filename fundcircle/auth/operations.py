"""Passwordless sign-in and server-side sessions.

A sign-in request creates a one-time link (256 random bits) and a short code; only SHA-256
hashes are stored. The link opens a "continue" page and only a POST from the browser that asked
for it consumes it (mail scanners open GET links; ASVS 5.0 6.5.x, 3.5.3). The code can be typed
into the tab that asked instead. Tokens live 10 minutes and are single-use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fundcircle.audit.operations import record
from fundcircle.auth.models import AuthSession, LoginToken, User
from fundcircle.errors import RuleViolation, ValidationError
from fundcircle.notifications.operations import queue_mail

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O/1/I confusion
CODE_LENGTH = 8  # 40 bits, with at most 5 attempts per token


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def new_browser_nonce() -> str:
    return secrets.token_urlsafe(32)


def safe_next_path(path: str | None) -> str:
    """Only local absolute paths; anything else (//evil, http:) becomes "/"."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    # browsers drop tabs and newlines from a Location ("/\t/evil" is "//evil"); other controls too
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return "/"
    return path[:500]


def request_sign_in(session: Session, *, email: str, browser_nonce: str, ip_address: str,
                    next_path: str, now: dt.datetime, base_url: str, limits: dict) -> None:
    """Create a one-time link + code and mail it. The same answer whether or not the address is
    known (no account enumeration). Raises RuleViolation when a rate limit is reached."""
    email = normalize_email(email)
    hour_ago = now - dt.timedelta(hours=1)
    per_address = session.scalar(
        select(func.count()).select_from(LoginToken)
        .where(LoginToken.email == email, LoginToken.created_at >= hour_ago))
    ip_hash = sha256_hex(ip_address or "unknown")
    per_ip = session.scalar(
        select(func.count()).select_from(LoginToken)
        .where(LoginToken.ip_hash == ip_hash, LoginToken.created_at >= hour_ago))
    if per_address >= limits["per_address"] or per_ip >= limits["per_ip"]:
        raise RuleViolation("Too many sign-in requests. Please wait a while and try again, "
                            "or use a link already sent to you.")
    token = secrets.token_urlsafe(32)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.add(LoginToken(
        email=email, token_hash=sha256_hex(token), code_hash=sha256_hex(code),
        browser_hash=sha256_hex(browser_nonce), ip_hash=ip_hash,
        next_path=safe_next_path(next_path), created_at=now,
        expires_at=now + limits["lifetime"],
    ))
    link = f"{base_url.rstrip('/')}/signin/link/{token}"
    pretty_code = f"{code[:4]}-{code[4:]}"
    queue_mail(session, to_address=email, subject="Your fundcircle sign-in link", body_text=(
        "Hello,\n\n"
        f"Open this link in the same browser where you asked to sign in:\n\n{link}\n\n"
        f"Or type this code into that page: {pretty_code}\n\n"
        f"The link and the code work once, for {int(limits['lifetime'].total_seconds() // 60)} minutes.\n"
        "If you did not ask to sign in, ignore this message.\n"
    ))


def _usable(token: LoginToken | None, now: dt.datetime) -> LoginToken:
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise RuleViolation("This sign-in link or code is no longer valid (they work once, for "
                            "10 minutes). Please ask for a new one.")
    return token


def redeem_link(session: Session, *, token: str, browser_nonce: str | None, now: dt.datetime) -> tuple[User, str]:
    """Consume a link token (POST only) from the browser that requested it.

    Returns (user, next_path). Creates the user on first sign-in. Raises RuleViolation.
    """
    row = session.scalar(select(LoginToken).where(LoginToken.token_hash == sha256_hex(token))
                         .with_for_update())
    row = _usable(row, now)
    if not browser_nonce or not hmac.compare_digest(row.browser_hash, sha256_hex(browser_nonce)):
        raise RuleViolation("Please open the link in the browser where you asked to sign in, "
                            "or type the code from the e-mail into that page.")
    return _consume(session, row, now), row.next_path


def redeem_code(session: Session, *, email: str, code: str, browser_nonce: str | None,
                now: dt.datetime, max_attempts: int) -> tuple[User, str]:
    """Consume the newest live token of ``email`` by its typed code, from the requesting browser."""
    email = normalize_email(email)
    cleaned = "".join(ch for ch in (code or "").upper() if ch.isalnum())
    row = session.scalar(
        select(LoginToken).where(LoginToken.email == email, LoginToken.used_at.is_(None),
                                 LoginToken.expires_at > now)
        .order_by(LoginToken.id.desc()).limit(1).with_for_update())
    row = _usable(row, now)
    if row.failed_attempts >= max_attempts:
        raise RuleViolation("Too many wrong codes. Please ask for a new sign-in link.")
    if (not browser_nonce or not hmac.compare_digest(row.browser_hash, sha256_hex(browser_nonce))
            or not hmac.compare_digest(row.code_hash, sha256_hex(cleaned))):
        row.failed_attempts += 1
        session.flush()
        raise ValidationError("That code is not right.", field_errors={"code": ["That code is not right."]})
    return _consume(session, row, now), row.next_path


def _consume(session: Session, row: LoginToken, now: dt.datetime) -> User:
    row.used_at = now
    user = session.scalar(select(User).where(User.email == row.email))
    if user is None:
        user = User(email=row.email, created_at=now)
        session.add(user)
        session.flush()
        record(session, actor=user, action="user.create", circle_id=None, obj=user)
    if user.disabled_at is not None:
        raise RuleViolation("This account is disabled.")
    session.flush()
    return user


def start_session(session: Session, *, user: User, now: dt.datetime, user_agent: str,
                  absolute_lifetime: dt.timedelta) -> str:
    """A new server-side session; returns the secret id for the cookie (only its hash is kept)."""
    sid = secrets.token_urlsafe(32)
    session.add(AuthSession(user_id=user.id, sid_hash=sha256_hex(sid), created_at=now, last_seen_at=now,
                            expires_at=now + absolute_lifetime, user_agent=(user_agent or "")[:200]))
    record(session, actor=user, action="auth.sign_in", circle_id=None)
    session.flush()
    return sid


def load_session(session: Session, *, sid: str, now: dt.datetime, idle_timeout: dt.timedelta) -> AuthSession | None:
    """The live session for ``sid``, or None when unknown, revoked, idle too long or expired.

    Touches ``last_seen_at`` at most once a minute (a write on GET is bookkeeping, not a state
    change a person asked for)."""
    row = session.scalar(select(AuthSession).where(AuthSession.sid_hash == sha256_hex(sid)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + idle_timeout <= now or row.user.disabled_at is not None:
        return None
    if now - row.last_seen_at >= dt.timedelta(minutes=1):
        row.last_seen_at = now
    return row


def end_session(session: Session, *, auth_session: AuthSession, now: dt.datetime) -> None:
    auth_session.revoked_at = now
    session.flush()


def end_other_sessions(session: Session, *, user: User, keep: AuthSession, now: dt.datetime) -> int:
    rows = session.scalars(select(AuthSession).where(
        AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), AuthSession.id != keep.id)).all()
    for row in rows:
        row.revoked_at = now
    session.flush()
    return len(rows)


def update_profile(session: Session, *, user: User, display_name: str) -> None:
    user.display_name = display_name.strip()[:120]
    session.flush()
