"""Comments on proposals: discussion, questions to the applicant and the applicant's answers.

Invariants the schema defends (migration 0004 writes the triggers, on both databases):

* comments are never deleted, and their content never changes: the only update allowed is hiding
  a visible comment once (``hidden_at``, ``hidden_by_id``, ``hidden_reason``); un-hiding and
  editing are refused. So there are no edits to keep a history of;
* a reply belongs to the same proposal as its parent, and an answer replies to a question;
* a question has at most one visible answer (partial unique index);
* a double-submitted form is one comment: ``UNIQUE (author_id, submission_key)``.
"""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, intpk

#: longest comment, question or answer, in characters (form, operation and a CHECK agree)
MAX_BODY_CHARS = 5000
#: longest moderation reason, in characters
MAX_HIDE_REASON_CHARS = 500


class CommentKind(str, enum.Enum):
    COMMENT = "comment"  # discussion, top level or a reply
    QUESTION = "question"  # addressed to the applicant; waits for an answer
    ANSWER = "answer"  # the applicant's answer, attached to one question


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[intpk]
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="RESTRICT"), index=True)
    #: the comment this one replies to (None = top level); for an answer, its question
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("comments.id", ondelete="RESTRICT"), index=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    #: CommentKind value
    kind: Mapped[str] = mapped_column(sa.String(10))
    #: plain text (rendered escaped, paragraphs only)
    body: Mapped[str] = mapped_column(sa.Text)
    #: random key the form carried, so a double-submitted form stores one comment; None from code
    submission_key: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]
    #: set once, by a facilitator; the body is then shown to nobody
    hidden_at: Mapped[dt.datetime | None]
    hidden_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    #: shown in place of the body ("hidden by a facilitator: <reason>")
    hidden_reason: Mapped[str] = mapped_column(sa.Text, default="")

    author = relationship("User", foreign_keys=[author_id], lazy="joined")
    proposal = relationship("Proposal", lazy="select")

    __table_args__ = (
        sa.UniqueConstraint("author_id", "submission_key"),
        sa.CheckConstraint("kind IN ('comment', 'question', 'answer')", name="kind_known"),
        sa.CheckConstraint("kind <> 'answer' OR parent_id IS NOT NULL", name="answer_has_question"),
        sa.CheckConstraint(f"length(body) BETWEEN 1 AND {MAX_BODY_CHARS}", name="body_length"),
        sa.CheckConstraint(
            "(hidden_at IS NULL AND hidden_by_id IS NULL AND hidden_reason = '') OR "
            f"(hidden_at IS NOT NULL AND length(hidden_reason) BETWEEN 1 AND {MAX_HIDE_REASON_CHARS})",
            name="hidden_with_reason"),
        # a question has one visible answer (follow-ups are replies); hiding an answer lets the
        # applicant answer again
        sa.Index("uq_comments_answer_parent_id", "parent_id", unique=True,
                 sqlite_where=sa.text("kind = 'answer' AND hidden_at IS NULL"),
                 postgresql_where=sa.text("kind = 'answer' AND hidden_at IS NULL")),
    )

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None

    @property
    def is_question(self) -> bool:
        return self.kind == CommentKind.QUESTION.value

    @property
    def is_answer(self) -> bool:
        return self.kind == CommentKind.ANSWER.value
