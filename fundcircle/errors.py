"""The one exception hierarchy of fundcircle, and its single mapping to HTTP.

Domain code (operations, voting rules, the ledger, the CLI) raises these; nothing in this module
imports Flask at import time, so the pure ``voting`` package can use it too. Each error carries a
message that is safe to show to the person who caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FundcircleError(Exception):
    """Base of every error fundcircle raises on purpose."""

    http_status = 400
    title = "Something is not right"

    def __init__(self, message: str, *, field_errors: Mapping[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.user_message = message
        #: per-field messages (form field name -> messages), for re-rendering forms
        self.field_errors: dict[str, list[str]] = {k: list(v) for k, v in (field_errors or {}).items()}


class NotFound(FundcircleError):
    """The object does not exist or is not visible to this user."""

    http_status = 404
    title = "Not found"


class PermissionDenied(FundcircleError):
    """A permission predicate said no."""

    http_status = 403
    title = "Not allowed"


class ValidationError(FundcircleError):
    """Input has the wrong shape or meaning; the message (and field_errors) say what to fix."""

    http_status = 422
    title = "Please check your input"


class RuleViolation(FundcircleError):
    """The request is well-formed but a business rule forbids it now (phase closed, budget...)."""

    http_status = 409
    title = "That cannot be done now"


class IdempotencyConflict(RuleViolation):
    """The same idempotency key was used with a different request."""


class IntegrationError(FundcircleError):
    """Stripe or Open Collective failed after retries."""

    http_status = 502
    title = "An outside service failed"


class ConfigurationError(FundcircleError):
    """The app is configured in a way it refuses to run with."""

    http_status = 500
    title = "Configuration error"


def register_error_handlers(app: Any) -> None:
    """Map the hierarchy (and Werkzeug's HTTP errors) to friendly pages or JSON, in one place."""
    from flask import jsonify, render_template, request
    from werkzeug.exceptions import HTTPException

    def wants_json() -> bool:
        return request.path.startswith("/api/") or request.path.startswith("/webhooks/") or (
            request.accept_mimetypes.best == "application/json"
        )

    def respond(status: int, title: str, message: str, field_errors: Mapping[str, list[str]] | None = None):
        if wants_json():
            body: dict[str, Any] = {"error": title, "message": message, "status": status}
            if field_errors:
                body["fields"] = dict(field_errors)
            return jsonify(body), status
        return render_template("errors/error.html", status=status, title=title, message=message), status

    @app.errorhandler(FundcircleError)
    def handle_domain_error(err: FundcircleError):
        if err.http_status >= 500:
            app.logger.error("domain error %s: %s", type(err).__name__, err.user_message)
        return respond(err.http_status, err.title, err.user_message, err.field_errors)

    @app.errorhandler(HTTPException)
    def handle_http_error(err: HTTPException):
        if err.response is not None:  # e.g. the redirect to the sign-in page
            return err.response
        status = err.code or 500
        titles = {
            400: "Bad request",
            403: "Not allowed",
            404: "Not found",
            405: "Method not allowed",
            409: "Conflict",
            413: "Too large",
            429: "Too many requests",
        }
        message = err.description or ""
        if status == 400 and "CSRF" in message:
            message = "Your form expired or was sent from another site. Please reload the page and try again."
        return respond(status, titles.get(status, err.name), message)

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        if isinstance(err, HTTPException):  # pragma: no cover - handled above
            return handle_http_error(err)
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return respond(500, "Something went wrong", "An unexpected error happened. It has been logged.")
