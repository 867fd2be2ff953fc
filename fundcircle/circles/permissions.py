"""Predicates about a user's powers in a circle."""

from __future__ import annotations

from fundcircle.auth.models import User
from fundcircle.circles.models import Circle, Membership


def membership(user: User | None, circle: Circle) -> Membership | None:
    if user is None:
        return None
    for m in user.memberships:
        if m.circle_id == circle.id:
            return m
    return None


def is_member(user: User | None, circle: Circle) -> bool:
    return membership(user, circle) is not None


def is_facilitator(user: User | None, circle: Circle) -> bool:
    m = membership(user, circle)
    return m is not None and m.is_facilitator


def is_treasurer(user: User | None, circle: Circle) -> bool:
    m = membership(user, circle)
    return m is not None and m.is_treasurer
