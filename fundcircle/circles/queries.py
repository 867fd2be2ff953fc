"""Read functions for circles; every lookup by URL goes through here (404 when missing)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle, Invitation, Membership
from fundcircle.errors import NotFound


def circle_by_slug_or_404(session: Session, slug: str) -> Circle:
    # no slug has a NUL, and PostgreSQL refuses one as a parameter (a 500 instead of this 404)
    circle = None if "\x00" in slug else session.scalar(select(Circle).where(Circle.slug == slug))
    if circle is None:
        raise NotFound("There is no circle here.")
    return circle


def all_circles(session: Session) -> list[Circle]:
    return list(session.scalars(select(Circle).order_by(Circle.name)))


def member_count(session: Session, circle: Circle) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(Membership.circle_id == circle.id)) or 0


def members(session: Session, circle: Circle) -> list[Membership]:
    return list(session.scalars(select(Membership).where(Membership.circle_id == circle.id)
                                .order_by(Membership.joined_at)))


def open_invitations(session: Session, circle: Circle) -> list[Invitation]:
    return list(session.scalars(select(Invitation).where(
        Invitation.circle_id == circle.id, Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc())))
