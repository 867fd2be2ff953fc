"""Who is signed in, and the one place that turns a failed check into an error."""

from __future__ import annotations

from flask import g, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.utils import redirect

from fundcircle.auth.models import User
from fundcircle.errors import PermissionDenied


class SignInRequired(HTTPException):
    """Raised by require_user for anonymous visitors: a redirect to the sign-in page."""

    code = 302

    def __init__(self) -> None:
        super().__init__()
        self.response = redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))


def current_user() -> User | None:
    return g.get("user")


def require_user() -> User:
    user = current_user()
    if user is None:
        raise SignInRequired()
    return user


def require(allowed: bool, message: str = "You are not allowed to do that.") -> None:
    if not allowed:
        raise PermissionDenied(message)
