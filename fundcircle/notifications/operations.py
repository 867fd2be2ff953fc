"""Queue mail inside the unit of work; deliver it only after the commit succeeded.

Every message is stored in ``outgoing_mail`` (in the same transaction as the change that caused
it, so a rolled-back request sends nothing). With SMTP configured, messages are sent after the
commit; without it (development, demo, tests) they stay in the dev outbox and the log.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app, g, has_app_context
from sqlalchemy.orm import Session

from fundcircle.db import utcnow
from fundcircle.notifications.models import OutgoingMail

log = logging.getLogger(__name__)


def queue_mail(session: Session, *, to_address: str, subject: str, body_text: str) -> OutgoingMail:
    """Store a message; it is delivered after the surrounding transaction commits. Flushes."""
    mail = OutgoingMail(to_address=to_address, subject=subject[:200], body_text=body_text)
    session.add(mail)
    session.flush()
    if has_app_context():
        g.setdefault("_fc_mail_queue", []).append(mail.id)
    return mail


def send_queued_after_commit() -> None:
    """Deliver what this request queued. Called by the request boundary after commit."""
    ids: list[int] = g.pop("_fc_mail_queue", [])
    if not ids:
        return
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        for mail_id in ids:
            log.info("mail %s stored in the dev outbox (no MAIL_SERVER configured)", mail_id)
        return
    from fundcircle.extensions import db

    session = db.new_session()
    try:
        for mail in session.query(OutgoingMail).filter(OutgoingMail.id.in_(ids)):
            try:
                _smtp_send(config, mail)
                mail.sent_at = utcnow()
            except (OSError, smtplib.SMTPException) as exc:
                # The row stays unsent; a later retry (fundcircle mail retry) can pick it up.
                mail.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                log.warning("could not send mail %s: %s", mail.id, exc)
        session.commit()
    finally:
        session.close()


def _smtp_send(config: dict, mail: OutgoingMail) -> None:
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message.set_content(mail.body_text)
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=20) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(message)


def outbox(session: Session, limit: int = 50) -> list[OutgoingMail]:
    return list(session.query(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(limit))
