"""Circles, memberships and invitations: every state change for this feature."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from fundcircle.audit.operations import record
from fundcircle.auth.models import User
from fundcircle.auth.operations import normalize_email, sha256_hex
from fundcircle.circles import permissions
from fundcircle.circles.models import Circle, Invitation, Membership
from fundcircle.errors import PermissionDenied, RuleViolation, ValidationError
from fundcircle.ledger.money import exponent
from fundcircle.notifications.operations import queue_mail

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")


def create_circle(session: Session, *, founder: User, slug: str, name: str, purpose: str,
                  currency: str, now: dt.datetime) -> Circle:
    """A new circle whose founder is a facilitator and treasurer. Flushes."""
    if not SLUG_RE.match(slug):
        raise ValidationError("The short name may use lower-case letters, digits and dashes.",
                              field_errors={"slug": ["Use lower-case letters, digits and dashes."]})
    exponent(currency)
    if session.scalar(select(Circle.id).where(Circle.slug == slug)) is not None:
        raise ValidationError("That short name is taken.", field_errors={"slug": ["That short name is taken."]})
    circle = Circle(slug=slug, name=name.strip(), purpose=purpose.strip(), currency=currency, created_at=now)
    session.add(circle)
    session.flush()
    session.add(Membership(circle_id=circle.id, user_id=founder.id, is_facilitator=True, is_treasurer=True,
                           joined_at=now))
    record(session, actor=founder, action="circle.create", circle_id=circle.id, obj=circle)
    session.flush()
    session.refresh(founder)
    return circle


def add_member(session: Session, *, circle: Circle, user: User, now: dt.datetime, facilitator: bool = False,
               treasurer: bool = False, actor: User | None = None) -> Membership:
    """Add ``user`` to ``circle`` (or raise their roles if already a member). Flushes."""
    existing = session.scalar(select(Membership).where(Membership.circle_id == circle.id,
                                                       Membership.user_id == user.id))
    if existing is not None:
        existing.is_facilitator = existing.is_facilitator or facilitator
        existing.is_treasurer = existing.is_treasurer or treasurer
        session.flush()
        return existing
    m = Membership(circle_id=circle.id, user_id=user.id, is_facilitator=facilitator, is_treasurer=treasurer,
                   joined_at=now)
    session.add(m)
    record(session, actor=actor or user, action="member.add", circle_id=circle.id, obj=user,
           details={"facilitator": facilitator, "treasurer": treasurer})
    session.flush()
    session.refresh(user)
    return m


def invite(session: Session, *, circle: Circle, actor: User, email: str, as_facilitator: bool,
           as_treasurer: bool, message: str, now: dt.datetime, base_url: str,
           lifetime: dt.timedelta) -> Invitation:
    """Invite an e-mail address to the circle and mail the link. Facilitators only. Flushes."""
    if not permissions.is_facilitator(actor, circle):
        raise PermissionDenied("Only facilitators can invite members.")
    email = normalize_email(email)
    already = session.scalar(select(Membership).join(User).where(Membership.circle_id == circle.id,
                                                                  User.email == email))
    if already is not None:
        raise ValidationError(f"{email} is already a member.", field_errors={"email": ["Already a member."]})
    token = secrets.token_urlsafe(32)
    invitation = Invitation(circle_id=circle.id, email=email, token_hash=sha256_hex(token),
                            as_facilitator=as_facilitator, as_treasurer=as_treasurer, invited_by_id=actor.id,
                            message=message.strip(), created_at=now, expires_at=now + lifetime)
    session.add(invitation)
    session.flush()
    record(session, actor=actor, action="member.invite", circle_id=circle.id, obj=invitation,
           details={"facilitator": as_facilitator, "treasurer": as_treasurer})
    note = f"\n{actor.name} wrote:\n{message.strip()}\n" if message.strip() else ""
    queue_mail(session, to_address=email, subject=f"You are invited to {circle.name} on fundcircle", body_text=(
        f"Hello,\n\n{actor.name} invites you to join {circle.name}, a fund circle that decides together "
        f"which community projects to fund.\n{note}\n"
        f"Accept the invitation here (sign in with this e-mail address):\n\n"
        f"{base_url.rstrip('/')}/invitations/{token}\n\n"
        f"The invitation is valid until {invitation.expires_at:%-d %b %Y}.\n"))
    return invitation


def invitation_by_token(session: Session, token: str) -> Invitation | None:
    return session.scalar(select(Invitation).where(Invitation.token_hash == sha256_hex(token)))


def accept_invitation(session: Session, *, token: str, user: User, now: dt.datetime) -> Membership:
    """Join the circle through an invitation sent to this user's address. Flushes."""
    invitation = invitation_by_token(session, token)
    if invitation is None or invitation.revoked_at is not None:
        raise RuleViolation("This invitation is not valid.")
    if invitation.accepted_at is not None:
        raise RuleViolation("This invitation has already been used.")
    if invitation.expires_at <= now:
        raise RuleViolation("This invitation has expired. Ask a facilitator for a new one.")
    if invitation.email != user.email:
        raise PermissionDenied(f"This invitation was sent to another address. Sign in as {invitation.email} "
                               "to accept it.")
    invitation.accepted_at = now
    invitation.accepted_by_id = user.id
    membership = add_member(session, circle=invitation.circle, user=user, now=now,
                            facilitator=invitation.as_facilitator, treasurer=invitation.as_treasurer, actor=user)
    record(session, actor=user, action="member.accept_invitation", circle_id=invitation.circle_id, obj=invitation)
    return membership


def revoke_invitation(session: Session, *, circle: Circle, actor: User, invitation_id: int, now: dt.datetime) -> None:
    if not permissions.is_facilitator(actor, circle):
        raise PermissionDenied("Only facilitators can revoke invitations.")
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.circle_id != circle.id:
        from fundcircle.errors import NotFound

        raise NotFound("No such invitation.")
    invitation.revoked_at = now
    record(session, actor=actor, action="member.revoke_invitation", circle_id=circle.id, obj=invitation)
    session.flush()
