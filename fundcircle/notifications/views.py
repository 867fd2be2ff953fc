"""The dev outbox: mail that would have been sent, visible only outside production without SMTP."""

from __future__ import annotations

import re

from flask import current_app, g, render_template
from markupsafe import Markup, escape

from fundcircle.errors import NotFound
from fundcircle.extensions import db
from fundcircle.notifications import operations
from fundcircle.notifications.models import OutgoingMail


def _require_outbox() -> None:
    if not current_app.config.get("OUTBOX_ENABLED"):
        raise NotFound("There is no outbox here.")
    g._no_store = True


def _linkify(text: str) -> Markup:
    escaped = str(escape(text))
    return Markup(re.sub(r"(https?://[^\s<]+)", r'<a href="\1">\1</a>', escaped))


def outbox_view():  # type: ignore[no-untyped-def]
    _require_outbox()
    return render_template("notifications/outbox.html", mails=operations.outbox(db.session))


def outbox_message_view(mail_id: int):  # type: ignore[no-untyped-def]
    _require_outbox()
    mail = db.session.get(OutgoingMail, mail_id)
    if mail is None:
        raise NotFound("No such message.")
    return render_template("notifications/message.html", mail=mail, body=_linkify(mail.body_text))
