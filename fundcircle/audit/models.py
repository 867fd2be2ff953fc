"""The append-only audit log of who did what (triggers refuse UPDATE and DELETE)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fundcircle.db import Base, created_at_col, intpk


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[intpk]
    circle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    #: None for the system or an anonymous visitor
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: a dotted verb, e.g. "proposal.submit", "round.update", "member.invite"
    action: Mapped[str] = mapped_column(sa.String(60), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(40), default="")
    object_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at_col]
