"""Deliberation operations: comment, ask, answer, hide; and declaring a conflict of interest.

Every operation takes the session, the acting user and ``now`` explicitly, flushes and never
commits. Mail is queued with ``queue_mail`` in the same transaction, so a rolled-back request
notifies nobody, and delivered after the commit.

Notifications (one message per person per event, never to the person who acted):

* new comment or question on a proposal → its applicant;
* a reply → the author of the comment replied to (and the applicant);
* an answer → the member who asked the question;
* a comment hidden by a facilitator → its author.

When one person has two reasons to hear about the same event (the applicant's own comment got a
reply), they get the more specific message only.

Comments are never edited or deleted (the database refuses both); a facilitator may hide one,
once, with a reason shown in its place. Hiding is recorded in the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.audit.operations import record
from fundcircle.auth.models import User
from fundcircle.deliberation import permissions, queries
from fundcircle.deliberation.models import MAX_BODY_CHARS, MAX_HIDE_REASON_CHARS, Comment, CommentKind
from fundcircle.errors import PermissionDenied, RuleViolation, ValidationError
from fundcircle.forms import CONTROL_CHARS_RE
from fundcircle.notifications.operations import queue_mail
from fundcircle.proposals.models import Proposal
from fundcircle.voting import operations as voting_ops
from fundcircle.voting.models import ConflictCategory, ConflictOfInterest

#: longest submission key a form may carry (the column's width)
MAX_SUBMISSION_KEY_CHARS = 64
#: posts (comments, questions, answers) one person may make in an hour, against floods and
#: runaway scripts; a lively discussion stays far below it
MAX_POSTS_PER_HOUR = 30


@dataclass(frozen=True)
class Posted:
    """What a posting operation returns: the comment, and whether it already existed (a replayed
    double submission: nothing was written and nobody was notified again)."""

    comment: Comment
    is_replay: bool = False


def proposal_url(base_url: str, proposal: Proposal, comment_id: int | None = None) -> str:
    path = f"/c/{proposal.round.circle.slug}/r/{proposal.round_id}/p/{proposal.id}"
    return base_url.rstrip("/") + path + (f"#comment-{comment_id}" if comment_id else "")


# -- checks -----------------------------------------------------------------------------------------

def _clean_text(text: str | None, *, field: str, what: str, limit: int) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError(f"Write {what}.", field_errors={field: [f"Write {what}."]})
    if CONTROL_CHARS_RE.search(text):
        raise ValidationError("Remove the control characters.",
                              field_errors={field: ["Remove the control characters from this field."]})
    if len(text) > limit:
        message = f"Keep it under {limit:,} characters (this has {len(text):,})."
        raise ValidationError(message, field_errors={field: [message]})
    return text


def _require_open(proposal: Proposal, now: dt.datetime) -> None:
    reason = permissions.closed_reason(proposal, now)
    if reason is not None:
        raise RuleViolation(reason)


def _clean_key(submission_key: str | None) -> str | None:
    key = (submission_key or "").strip()
    if not key:
        return None
    if len(key) > MAX_SUBMISSION_KEY_CHARS or CONTROL_CHARS_RE.search(key):
        raise ValidationError("The form was damaged; reload the page and try again.",
                              field_errors={"submission_key": ["invalid"]})
    return key


def _require_not_flooding(session: Session, author: User, now: dt.datetime) -> None:
    recent = session.scalar(sa.select(sa.func.count()).select_from(Comment).where(
        Comment.author_id == author.id, Comment.created_at > now - dt.timedelta(hours=1),
        Comment.created_at <= now)) or 0
    if recent >= MAX_POSTS_PER_HOUR:
        raise RuleViolation(f"You have posted {recent} times in the last hour, the most we accept. "
                            "Please wait a little before posting again.")


def _replay(session: Session, author: User, key: str | None) -> Comment | None:
    if key is None:
        return None
    return session.scalar(sa.select(Comment).where(Comment.author_id == author.id, Comment.submission_key == key))


def _insert(session: Session, comment: Comment, author: User, key: str | None) -> Posted:
    """Insert ``comment``; a concurrent copy of the same form (same key) or a second answer to the
    same question loses on a unique constraint inside a savepoint, so the transaction survives."""
    try:
        with session.begin_nested():
            session.add(comment)
            session.flush()
    except sa.exc.IntegrityError:
        existing = _replay(session, author, key)
        if existing is not None:
            return Posted(existing, is_replay=True)
        if comment.kind == CommentKind.ANSWER.value:
            raise RuleViolation("This question has already been answered. Reply to the answer to add "
                                "something.") from None
        raise
    return Posted(comment)


# -- notifications ----------------------------------------------------------------------------------

class _Outbox:
    """Collects one message per recipient for one event; the first reason given wins."""

    def __init__(self, actor: User) -> None:
        self.actor = actor
        self.messages: dict[int, tuple[User, str, str]] = {}

    def add(self, user: User | None, subject: str, body: str) -> None:
        if user is None or user.id == self.actor.id or user.id in self.messages or user.disabled_at is not None:
            return
        self.messages[user.id] = (user, subject, body)

    def send(self, session: Session) -> None:
        for user, subject, body in self.messages.values():
            queue_mail(session, to_address=user.email, subject=subject, body_text=body)


def _quote(text: str, limit: int = 600) -> str:
    short = text if len(text) <= limit else text[:limit].rstrip() + " …"
    return "\n".join("> " + line for line in short.splitlines())


def _footer(url: str) -> str:
    return (f"\nRead the whole discussion and reply here:\n{url}\n\n"
            "You get this message because you take part in this proposal's discussion on fundcircle.\n")


# -- posting ----------------------------------------------------------------------------------------

def post_comment(session: Session, *, proposal: Proposal, author: User, body: str, now: dt.datetime,
                 base_url: str, kind: CommentKind | str = CommentKind.COMMENT, parent_id: int | None = None,
                 submission_key: str | None = None) -> Posted:
    """Post a comment or a question on ``proposal``, at top level or as a reply to ``parent_id``.

    Args:
        author: a member of the circle or the proposal's applicant.
        kind: ``comment`` or ``question`` (questions: members other than the applicant).
        parent_id: the comment replied to; it must be a visible comment of the same proposal.
        submission_key: the form's random key; the same key again returns the first comment.

    Returns:
        Posted(comment, is_replay).

    Raises:
        PermissionDenied: neither a member nor the applicant; a question by the applicant.
        RuleViolation: the proposal is not open for discussion now (draft, withdrawn, phase), or
            the author reached MAX_POSTS_PER_HOUR.
        ValidationError: empty, too long or control characters in ``body`` (field ``body``),
            unknown kind (``kind``), a parent that is not a comment of this proposal or is hidden
            (``parent_id``). Nothing is written then.

    Notifies the applicant and the parent's author (see the module docstring). Flushes.
    """
    if not permissions.can_take_part(author, proposal):
        raise PermissionDenied("Only members of this circle and the applicant can take part in this discussion.")
    try:
        kind = CommentKind(kind)
    except ValueError:
        raise ValidationError("Choose a comment or a question.", field_errors={"kind": ["Choose one."]}) from None
    if kind is CommentKind.ANSWER:
        raise ValidationError("Answers are given with the answer form under the question.",
                              field_errors={"kind": ["Choose a comment or a question."]})
    if kind is CommentKind.QUESTION and not permissions.can_ask(author, proposal):
        raise PermissionDenied("Questions are for members to ask the applicant; post a comment instead.")
    key = _clean_key(submission_key)
    replayed = _replay(session, author, key)
    if replayed is not None:
        return Posted(replayed, is_replay=True)
    text = _clean_text(body, field="body", what="your comment" if kind is CommentKind.COMMENT else "your question",
                       limit=MAX_BODY_CHARS)
    parent = None
    if parent_id is not None:
        parent = queries.comment_of_proposal(session, proposal, parent_id)
        if parent is None:
            raise ValidationError("You can only reply to a comment on this proposal.",
                                  field_errors={"parent_id": ["That comment is not part of this discussion."]})
        if parent.is_hidden:
            raise ValidationError("That comment was hidden by a facilitator; it cannot be replied to.",
                                  field_errors={"parent_id": ["That comment is hidden."]})
    _require_open(proposal, now)
    _require_not_flooding(session, author, now)
    posted = _insert(session, Comment(proposal_id=proposal.id, parent_id=parent.id if parent else None,
                                      author_id=author.id, kind=kind.value, body=text, submission_key=key,
                                      created_at=now, hidden_reason=""), author, key)
    if posted.is_replay:
        return posted
    comment = posted.comment
    url = proposal_url(base_url, proposal, comment.id)
    outsider_labels = queries.author_labels(session, proposal, None)

    def by(recipient: User) -> str:
        # members see each other's names; the applicant sees the same labels as the public
        return author.name if permissions.is_member(recipient, proposal) else outsider_labels[author.id]

    outbox = _Outbox(author)
    if parent is not None:
        outbox.add(parent.author, f"{by(parent.author)} replied to you: {proposal.title}",
                   f"Hello {parent.author.name},\n\n{by(parent.author)} replied to your "
                   f"{'answer' if parent.is_answer else parent.kind} on \"{proposal.title}\":\n\n"
                   f"{_quote(text)}\n" + _footer(url))
    applicant = proposal.applicant
    if kind is CommentKind.QUESTION:
        outbox.add(applicant, f"A question about your proposal: {proposal.title}",
                   f"Hello {applicant.name},\n\n{by(applicant)} asked a question about your proposal "
                   f"\"{proposal.title}\":\n\n{_quote(text)}\n\nAnswer it on the proposal page; members "
                   "read the answers before they vote.\n" + _footer(url))
    else:
        outbox.add(applicant, f"New comment on your proposal: {proposal.title}",
                   f"Hello {applicant.name},\n\n{by(applicant)} commented on your proposal "
                   f"\"{proposal.title}\":\n\n{_quote(text)}\n" + _footer(url))
    outbox.send(session)
    return posted


def answer_question(session: Session, *, question: Comment, author: User, body: str, now: dt.datetime,
                    base_url: str, submission_key: str | None = None) -> Posted:
    """The applicant answers a question on their proposal (one answer per question).

    Raises:
        PermissionDenied: ``author`` is not the proposal's applicant.
        ValidationError: ``question`` is not a question, is hidden, or ``body`` is empty, too long
            or has control characters (field ``body``).
        RuleViolation: already answered (a hidden answer does not count); the proposal is not
            open for discussion now; the author reached MAX_POSTS_PER_HOUR.

    Notifies the member who asked. Flushes.
    """
    proposal = question.proposal
    if not permissions.can_answer(author, proposal):
        raise PermissionDenied("Only the applicant can answer questions about this proposal.")
    key = _clean_key(submission_key)
    replayed = _replay(session, author, key)
    if replayed is not None:
        return Posted(replayed, is_replay=True)
    if not question.is_question:
        raise ValidationError("Only questions can be answered; reply to comments instead.",
                              field_errors={"parent_id": ["That is not a question."]})
    if question.is_hidden:
        raise ValidationError("That question was hidden by a facilitator; it does not need an answer.",
                              field_errors={"parent_id": ["That question is hidden."]})
    text = _clean_text(body, field="body", what="your answer", limit=MAX_BODY_CHARS)
    _require_open(proposal, now)
    if queries.answer_to(session, question) is not None:
        raise RuleViolation("This question has already been answered. Reply to the answer to add something.")
    _require_not_flooding(session, author, now)
    posted = _insert(session, Comment(proposal_id=proposal.id, parent_id=question.id, author_id=author.id,
                                      kind=CommentKind.ANSWER.value, body=text, submission_key=key,
                                      created_at=now, hidden_reason=""), author, key)
    if posted.is_replay:
        return posted
    asker = question.author
    outbox = _Outbox(author)
    outbox.add(asker, f"Your question was answered: {proposal.title}",
               f"Hello {asker.name},\n\n{author.name} answered your question about \"{proposal.title}\".\n\n"
               f"You asked:\n{_quote(question.body, 300)}\n\nThe answer:\n{_quote(text)}\n"
               + _footer(proposal_url(base_url, proposal, posted.comment.id)))
    outbox.send(session)
    return posted


def hide_comment(session: Session, *, comment: Comment, actor: User, reason: str, now: dt.datetime,
                 base_url: str) -> Comment:
    """A facilitator hides a comment: its text is replaced for everyone by the reason.

    Raises:
        PermissionDenied: not a facilitator of the circle, or the facilitator applied for or is
            recused from the proposal.
        ValidationError: empty, too long or control characters in ``reason`` (field ``reason``).
        RuleViolation: the comment is already hidden (hiding happens once).

    Records ``comment.hide`` in the audit log (who, when, reason) and tells the author. Flushes.
    """
    proposal = comment.proposal
    recused = voting_ops.recused_proposal_ids(session, proposal.round_id, actor.id)
    if not permissions.can_moderate(actor, proposal, recused):
        raise PermissionDenied("Only facilitators can hide comments, and not on a proposal they applied for "
                               "or are recused from.")
    text = _clean_text(reason, field="reason", what="the reason (everyone will see it)",
                       limit=MAX_HIDE_REASON_CHARS)
    if comment.is_hidden:
        raise RuleViolation("This comment is already hidden.")
    comment.hidden_at = now
    comment.hidden_by_id = actor.id
    comment.hidden_reason = text
    record(session, actor=actor, action="comment.hide", circle_id=proposal.round.circle_id, obj=comment,
           details={"reason": text, "proposal_id": proposal.id, "author_id": comment.author_id,
                    "hidden_at": now.isoformat()})
    session.flush()
    outbox = _Outbox(actor)
    outbox.add(comment.author, f"Your {comment.kind} was hidden: {proposal.title}",
               f"Hello {comment.author.name},\n\na facilitator hid your {comment.kind} on \"{proposal.title}\".\n\n"
               f"The reason, shown to everyone in its place:\n{_quote(text)}\n\n"
               "If you think this was a mistake, talk to the circle's facilitators.\n"
               + _footer(proposal_url(base_url, proposal, comment.id)))
    outbox.send(session)
    return comment


# -- conflicts of interest ----------------------------------------------------------------------------

def declare_conflict(session: Session, *, member: User, proposal: Proposal, level: str, category: str,
                     reason: str, now: dt.datetime) -> ConflictOfInterest:
    """A member declares (or changes) a conflict of interest with a submitted proposal while the
    round is open (call open to voting close), through ``voting.operations.declare_conflict``.

    Raises:
        PermissionDenied: not a member of the circle.
        ValidationError: unknown level or category, a reason that is too long or has control
            characters, a missing reason for category ``other``.
        RuleViolation: the proposal is a draft or withdrawn, the round is not open, the round is
            tallied, or an automatic recusal would be lowered.

    Records ``conflict.declare`` (level and category; the member's words stay with the
    conflict, shown to facilitators only). Flushes.
    """
    if not permissions.can_declare_conflict(member, proposal):
        raise PermissionDenied("Only members of this circle can declare a conflict of interest here.")
    reason = (reason or "").strip()
    if CONTROL_CHARS_RE.search(reason):
        raise ValidationError("Remove the control characters.",
                              field_errors={"reason": ["Remove the control characters from this field."]})
    if len(reason) > 1000:
        raise ValidationError("Keep the reason under 1,000 characters.",
                              field_errors={"reason": ["Keep it under 1,000 characters."]})
    if category == ConflictCategory.OTHER.value and not reason:
        raise ValidationError("Say in a few words what the conflict is.",
                              field_errors={"reason": ["Say in a few words what the conflict is."]})
    _require_open(proposal, now)
    conflict = voting_ops.declare_conflict(session, member=member, proposal=proposal, level=level,
                                           category=category, reason=reason, now=now)
    record(session, actor=member, action="conflict.declare", circle_id=proposal.round.circle_id, obj=conflict,
           details={"proposal_id": proposal.id, "level": conflict.level, "category": conflict.reason_category})
    session.flush()
    return conflict
