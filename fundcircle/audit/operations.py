"""Writing the audit log. Every operation that changes something a person would ask about later
("who moved the deadline?") records one event."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fundcircle.audit.models import AuditEvent
from fundcircle.auth.models import User


def record(session: Session, *, actor: User | None, action: str, circle_id: int | None,
           obj: Any = None, details: dict[str, Any] | None = None) -> AuditEvent:
    """Append one audit event. Flushes nothing by itself (it goes with the operation's flush)."""
    event = AuditEvent(
        circle_id=circle_id,
        actor_id=actor.id if actor is not None else None,
        action=action,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_id=getattr(obj, "id", None),
        details=details or {},
    )
    session.add(event)
    return event
