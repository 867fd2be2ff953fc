"""Predicates for rounds."""

from __future__ import annotations

from fundcircle.auth.models import User
from fundcircle.circles import permissions as circle_permissions
from fundcircle.rounds.models import Round


def can_manage_round(user: User | None, round_: Round) -> bool:
    return circle_permissions.is_facilitator(user, round_.circle)


def can_view_round(user: User | None, round_: Round) -> bool:
    """Published rounds are public; drafts only for the circle's facilitators."""
    return round_.published_at is not None or can_manage_round(user, round_)
