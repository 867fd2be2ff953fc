"""Read functions for rounds, scoped by circle and visibility."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.errors import NotFound
from fundcircle.rounds import permissions
from fundcircle.rounds.models import Round


def round_or_404(session: Session, circle: Circle, round_id: int, user: User | None) -> Round:
    """The round ``round_id`` of ``circle`` if this user may see it; NotFound otherwise (also for
    another circle's round, so ids copied between circles find nothing)."""
    round_ = session.scalar(select(Round).where(Round.id == round_id, Round.circle_id == circle.id))
    if round_ is None or not permissions.can_view_round(user, round_):
        raise NotFound("There is no such round in this circle.")
    return round_


def visible_rounds(session: Session, circle: Circle, user: User | None) -> list[Round]:
    rounds = session.scalars(select(Round).where(Round.circle_id == circle.id)
                             .order_by(Round.submissions_open_at.desc())).all()
    return [r for r in rounds if permissions.can_view_round(user, r)]


def open_calls(session: Session, now: dt.datetime) -> list[Round]:
    return list(session.scalars(select(Round).where(
        Round.published_at.is_not(None), Round.submissions_open_at <= now, Round.submissions_close_at > now)
        .order_by(Round.submissions_close_at)))
