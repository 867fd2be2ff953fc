"""Read functions for deliberation, always scoped by proposal (which the caller loaded through
the round and visibility checks), and for a member's conflicts of interest."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.db import MAX_ROW_ID
from fundcircle.deliberation.models import Comment, CommentKind
from fundcircle.errors import NotFound
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.voting.models import ConflictLevel, ConflictOfInterest


@dataclass
class CommentNode:
    """A comment with its replies, for display. A question's visible answer sits in ``answer``
    (with its own replies) rather than among ``replies``; a hidden answer stays among the replies."""

    comment: Comment
    depth: int
    replies: list[CommentNode] = field(default_factory=list)
    answer: CommentNode | None = None

    @property
    def awaits_answer(self) -> bool:
        return self.comment.is_question and self.answer is None and not self.comment.is_hidden


@dataclass(frozen=True)
class Thread:
    roots: list[CommentNode]
    #: plain comments (questions and answers are counted apart)
    comment_count: int
    question_count: int
    unanswered_count: int


@dataclass(frozen=True)
class ConflictSummary:
    """Published per proposal, without names."""

    #: conflicts members declared themselves (disclose or recuse)
    declared: int
    #: of those, how many recused
    declared_recused: int
    #: automatic recusals (the applicant or the payee being a member)
    automatic: int


MAX_ID = MAX_ROW_ID


def comment_of_proposal(session: Session, proposal: Proposal, comment_id: int) -> Comment | None:
    if not 0 < comment_id <= MAX_ID:
        return None  # PostgreSQL would refuse to compare it with an integer column
    return session.scalar(sa.select(Comment).where(Comment.id == comment_id, Comment.proposal_id == proposal.id))


def comment_or_404(session: Session, proposal: Proposal, comment_id: int) -> Comment:
    comment = comment_of_proposal(session, proposal, comment_id)
    if comment is None:
        raise NotFound("There is no such comment on this proposal.")
    return comment


def answer_to(session: Session, question: Comment) -> Comment | None:
    """The question's visible answer (a hidden one does not count: the applicant may answer again)."""
    return session.scalar(sa.select(Comment).where(Comment.parent_id == question.id,
                                                   Comment.kind == CommentKind.ANSWER.value,
                                                   Comment.hidden_at.is_(None)))


def thread(session: Session, proposal: Proposal) -> Thread:
    """The proposal's whole discussion as a tree, oldest first at each level (one query)."""
    comments = list(session.scalars(sa.select(Comment).where(Comment.proposal_id == proposal.id)
                                    .order_by(Comment.created_at, Comment.id)))
    nodes = {c.id: CommentNode(c, 0) for c in comments}
    roots: list[CommentNode] = []
    for c in comments:  # parents are older than their replies, so they come first
        node = nodes[c.id]
        parent = nodes.get(c.parent_id) if c.parent_id is not None else None
        if parent is None:
            roots.append(node)
            continue
        node.depth = parent.depth + 1
        if c.is_answer and not c.is_hidden and parent.comment.is_question and parent.answer is None:
            parent.answer = node
        else:
            parent.replies.append(node)
    questions = [n for n in nodes.values() if n.comment.is_question]
    return Thread(roots=roots, comment_count=sum(1 for c in comments if c.kind == CommentKind.COMMENT.value),
                  question_count=len(questions), unanswered_count=sum(1 for n in questions if n.awaits_answer))


def conflict_of(session: Session, user: User | None, proposal: Proposal) -> ConflictOfInterest | None:
    if user is None:
        return None
    return session.scalar(sa.select(ConflictOfInterest).where(ConflictOfInterest.user_id == user.id,
                                                              ConflictOfInterest.proposal_id == proposal.id))


def conflicts_in_round(session: Session, user: User, round_: Round) -> list[ConflictOfInterest]:
    """The user's own conflicts (declared and automatic) with proposals of the round."""
    return list(session.scalars(
        sa.select(ConflictOfInterest).join(Proposal, Proposal.id == ConflictOfInterest.proposal_id)
        .where(ConflictOfInterest.user_id == user.id, Proposal.round_id == round_.id)
        .order_by(Proposal.id)))


def conflict_summary(session: Session, proposal: Proposal) -> ConflictSummary:
    c = ConflictOfInterest.__table__
    rows = session.execute(sa.select(c.c.level, c.c.is_automatic, sa.func.count())
                           .where(c.c.proposal_id == proposal.id).group_by(c.c.level, c.c.is_automatic)).all()
    declared = sum(n for level, auto, n in rows if not auto)
    recused = sum(n for level, auto, n in rows if not auto and level == ConflictLevel.RECUSE.value)
    automatic = sum(n for level, auto, n in rows if auto)
    return ConflictSummary(declared=declared, declared_recused=recused, automatic=automatic)


def declared_interest_user_ids(session: Session, proposal: Proposal) -> set[int]:
    """Members who declared a conflict with the proposal themselves: their comments carry a
    "declared an interest" note, which is what disclosure means. Automatic conflicts are left
    out: the applicant is obvious, and a payee's link is private."""
    c = ConflictOfInterest.__table__
    return set(session.scalars(sa.select(c.c.user_id).where(c.c.proposal_id == proposal.id,
                                                             c.c.is_automatic.is_(False))))


def all_conflicts_in_round(session: Session, round_: Round) -> list[ConflictOfInterest]:
    """Every conflict of the round with its member (for facilitators), by proposal then time."""
    return list(session.scalars(
        sa.select(ConflictOfInterest).join(Proposal, Proposal.id == ConflictOfInterest.proposal_id)
        .where(Proposal.round_id == round_.id)
        .order_by(Proposal.id, ConflictOfInterest.declared_at, ConflictOfInterest.id)))


def users_by_id(session: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(ids)))}


def _letters(n: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: a short stable label for the n-th author."""
    label = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def author_labels(session: Session, proposal: Proposal, viewer: User | None) -> dict[int, str]:
    """How each author of the proposal's discussion is named for ``viewer``.

    Members of the circle see names. Everyone else (the public, and the applicant, who is
    usually not a member) sees the applicant's name, which the proposal page shows anyway,
    and "Member A", "Member B" … for the others, in order of their first post: who belongs
    to a circle is private, and members should be able to ask hard questions without being
    lobbied one by one. Labels are stable because comments are never deleted.
    """
    from fundcircle.deliberation import permissions

    c = Comment.__table__
    first_posts = session.execute(
        sa.select(c.c.author_id, sa.func.min(c.c.id).label("first_id")).where(c.c.proposal_id == proposal.id)
        .group_by(c.c.author_id).order_by(sa.func.min(c.c.id))).all()
    if permissions.is_member(viewer, proposal):
        users = users_by_id(session, {row.author_id for row in first_posts})
        return {uid: u.name for uid, u in users.items()}
    labels: dict[int, str] = {}
    others = 0
    for row in first_posts:
        if row.author_id == proposal.applicant_id:
            labels[row.author_id] = proposal.applicant.name
        else:
            labels[row.author_id] = f"Member {_letters(others)}"
            others += 1
    return labels
