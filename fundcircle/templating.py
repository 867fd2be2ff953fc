"""Jinja filters and globals shared by every template."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import Flask, current_app, g
from markupsafe import Markup, escape

from fundcircle.db import utcnow
from fundcircle.ledger.money import format_amount, format_money


def fmt_datetime(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(dt.timezone.utc).strftime("%-d %b %Y, %H:%M UTC")


def fmt_date(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    return value.strftime("%-d %b %Y")


def paragraphs(text: str | None) -> Markup:
    """Plain text to escaped <p> paragraphs (no HTML from users is ever rendered)."""
    blocks = [b.strip() for b in (text or "").replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("".join(f"<p>{escape(b).replace(chr(10), Markup('<br>'))}</p>" for b in blocks))


def oc_link(stored_url: str | None) -> str:
    """A stored Open Collective page address on today's OC site: the demo's fake OC listens on a new
    port at each start, and a deployment may move from the fake to opencollective.com, so only the
    path of what was stored is kept (``/<collective>/expenses/<id>``)."""
    if not stored_url:
        return ""
    path = urlsplit(stored_url).path
    base = (current_app.config.get("OPENCOLLECTIVE_WEBSITE_URL") or "https://opencollective.com").rstrip("/")
    return f"{base}{path}" if path.startswith("/") else ""


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=lambda minor, currency: format_money(int(minor), currency),
        amount=lambda minor, currency: format_amount(int(minor), currency),
        datetime=fmt_datetime,
        date=fmt_date,
        paragraphs=paragraphs,
        oc_link=oc_link,
    )
    app.jinja_env.globals.update(now=utcnow)

    @app.context_processor
    def _inject_user() -> dict:
        return {
            "current_user": g.get("user"),
            "outbox_enabled": app.config.get("OUTBOX_ENABLED", False),
            "environment": app.config["ENVIRONMENT"],
        }
