"""Circles, memberships with roles, and invitations."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, created_at_col, intpk


class Role(str, enum.Enum):
    MEMBER = "member"
    FACILITATOR = "facilitator"
    TREASURER = "treasurer"


class Circle(Base):
    __tablename__ = "circles"

    id: Mapped[intpk]
    slug: Mapped[str] = mapped_column(sa.String(60), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    #: what the circle funds and why, shown on its public page
    purpose: Mapped[str] = mapped_column(sa.Text, default="")
    #: the pot's currency (ISO 4217)
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    created_at: Mapped[created_at_col]

    memberships = relationship("Membership", back_populates="circle", lazy="selectin")

    __table_args__ = (sa.CheckConstraint("slug <> ''", name="slug_not_empty"),)


class Membership(Base):
    """A user in a circle. Every membership can vote; the flags add powers."""

    __tablename__ = "memberships"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_facilitator: Mapped[bool] = mapped_column(default=False)
    is_treasurer: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[created_at_col]

    circle = relationship("Circle", back_populates="memberships", lazy="joined")
    user = relationship("User", back_populates="memberships", lazy="joined")

    __table_args__ = (sa.UniqueConstraint("circle_id", "user_id"),)

    @property
    def roles(self) -> list[Role]:
        roles = [Role.MEMBER]
        if self.is_facilitator:
            roles.append(Role.FACILITATOR)
        if self.is_treasurer:
            roles.append(Role.TREASURER)
        return roles


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    as_facilitator: Mapped[bool] = mapped_column(default=False)
    as_treasurer: Mapped[bool] = mapped_column(default=False)
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[created_at_col]
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[dt.datetime | None]

    circle = relationship("Circle", lazy="joined")
    invited_by = relationship("User", foreign_keys=[invited_by_id], lazy="joined")
