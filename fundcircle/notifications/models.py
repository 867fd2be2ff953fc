"""Outgoing mail. Every message is stored (the dev outbox shows them when SMTP is not set)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fundcircle.db import Base, created_at_col, intpk


class OutgoingMail(Base):
    __tablename__ = "outgoing_mail"

    id: Mapped[intpk]
    to_address: Mapped[str] = mapped_column(sa.String(254), index=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    body_text: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[created_at_col]
    #: set once SMTP accepted it (stays None in outbox-only mode)
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
