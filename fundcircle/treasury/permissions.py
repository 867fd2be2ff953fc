"""Who may use the treasury: a circle's treasurers, with a second factor."""

from __future__ import annotations

from fundcircle.auth.models import User
from fundcircle.circles.models import Circle
from fundcircle.circles.permissions import is_treasurer


def can_manage_treasury(user: User | None, circle: Circle) -> bool:
    return is_treasurer(user, circle)
