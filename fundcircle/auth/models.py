"""Users, one-time sign-in tokens and server-side sessions."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, created_at_col, intpk


class User(Base):
    __tablename__ = "users"

    id: Mapped[intpk]
    #: lower-cased; the login factor
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(120), default="")
    created_at: Mapped[created_at_col]
    #: a disabled user cannot sign in and all sessions stop working
    disabled_at: Mapped[dt.datetime | None]

    memberships = relationship("Membership", back_populates="user", lazy="selectin")

    @property
    def name(self) -> str:
        """The name others see. Never derived from the e-mail address: it is shown on public pages."""
        return self.display_name or f"Participant {self.id}"

    @property
    def own_name(self) -> str:
        """What the user sees of themself (navigation, account page): may show their e-mail's local part."""
        return self.display_name or self.email.split("@", 1)[0]


class LoginToken(Base):
    """A one-time sign-in link + code. Only SHA-256 hashes are stored."""

    __tablename__ = "login_tokens"

    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: the short code a person can type into the tab that asked for the link
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    #: hash of the nonce in the requesting browser's cookie; redemption is bound to it
    browser_hash: Mapped[str] = mapped_column(sa.String(64))
    #: hash of the requesting IP, for the per-IP rate limit
    ip_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: where to go after signing in (a local path)
    next_path: Mapped[str] = mapped_column(sa.String(500), default="/")
    created_at: Mapped[created_at_col]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    failed_attempts: Mapped[int] = mapped_column(default=0)


class AuthSession(Base):
    """A signed-in browser. The cookie holds a random id; only its hash is stored."""

    __tablename__ = "auth_sessions"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sid_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[created_at_col]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    user_agent: Mapped[str] = mapped_column(sa.String(200), default="")

    user = relationship(User, lazy="joined")


class TotpCredential(Base):
    """A user's authenticator (TOTP, RFC 6238). The shared secret is stored encrypted
    (Fernet, key derived from SECRET_KEY) and shown only until the enrolment is confirmed."""

    __tablename__ = "totp_credentials"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[created_at_col]
    #: set when the user proved with a code that their app holds the secret
    confirmed_at: Mapped[dt.datetime | None]
    #: the last 30-second time step whose code was accepted: a code is never accepted twice
    last_used_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: wrong codes in a row; reaching the limit locks code entry until ``locked_until``
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]


class SecondFactorPass(Base):
    """A signed-in session that passed the TOTP challenge (once per session)."""

    __tablename__ = "second_factor_passes"

    id: Mapped[intpk]
    auth_session_id: Mapped[int] = mapped_column(sa.ForeignKey("auth_sessions.id", ondelete="CASCADE"), unique=True)
    passed_at: Mapped[dt.datetime]
