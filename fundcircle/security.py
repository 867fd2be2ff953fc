"""Security headers, a per-response CSP nonce, and refusal of cross-site state changes.

ASVS 5.0 references in ledger-and-reliability.md §4.
"""

from __future__ import annotations

import secrets

from flask import Flask, abort, g, request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csp_nonce() -> str:
    """The nonce for this response's inline scripts (created on first use)."""
    nonce = g.get("_csp_nonce")
    if nonce is None:
        nonce = g._csp_nonce = secrets.token_urlsafe(16)
    return nonce


def csp_policy(*, form_action_extra: str = "") -> str:
    """This response's Content-Security-Policy. ``form_action_extra`` adds origins a form may post
    to (browsers apply form-action to the redirect a POST answers with, e.g. Stripe Checkout)."""
    form_action = f"'self' {form_action_extra}".strip()
    return ("default-src 'self'; "
            f"script-src 'self' 'nonce-{csp_nonce()}'; "
            "style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action {form_action}")


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.before_request
    def _refuse_cross_site_writes() -> None:
        # A cheap layer on top of CSRF tokens: browsers say where a request came from.
        if request.method not in SAFE_METHODS and request.headers.get("Sec-Fetch-Site") == "cross-site":
            if not request.path.startswith("/webhooks/"):
                abort(403, "Cross-site requests may not change anything here.")

    @app.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        headers = response.headers
        headers.setdefault("Content-Security-Policy", csp_policy())
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if app.config.get("HTTPS"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if g.get("user") is not None or g.get("_no_store"):
            # Pages for a signed-in person must not be kept by shared caches or the back button.
            headers["Cache-Control"] = "no-store"
        return response
