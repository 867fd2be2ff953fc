"""Ballots, ballot items, conflicts of interest, round results and awards (the DB side of voting).

Invariants the schema defends (migration 0003 writes the triggers, on both databases):

* one ballot per member per round: ``UNIQUE (round_id, voter_id)``; casting is an upsert on it;
* a ballot and its items are frozen once the round has a result (INSERT/UPDATE/DELETE refused);
* no ballot item for a proposal the voter is recused from, nor for a proposal of another round;
* one result per round, one award per (round, proposal).

The pure rule-side types (``fundcircle.voting.base.Ballot`` …) are deliberately different classes:
rules never see these rows, only values built from them (see ``fundcircle.voting.ballots``).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, created_at_col, intpk


class ConflictLevel(str, enum.Enum):
    """How strongly a conflict of interest binds a member."""

    DISCLOSE = "disclose"  # declared and published, the member may still vote on the proposal
    RECUSE = "recuse"  # the member may not vote on the proposal (form, operation and database refuse)


class ConflictCategory(str, enum.Enum):
    """Reason categories; the published recusal log shows only these, never the free text."""

    APPLICANT = "applicant"  # automatic: the member submitted the proposal
    PAYEE = "payee"  # automatic: the member's e-mail is the proposal's payee
    CO_APPLICANT = "co_applicant"
    FAMILY = "family"  # close personal relationship with the applicant
    FINANCIAL = "financial"  # would gain money from it
    ORGANISATION = "organisation"  # works for or governs the applicant organisation
    OTHER = "other"


#: categories only the system assigns (a member cannot lower or remove these recusals)
AUTOMATIC_CATEGORIES = frozenset({ConflictCategory.APPLICANT.value, ConflictCategory.PAYEE.value})

CONSENT_RESPONSES = ("consent", "concern", "objection")


class StoredBallot(Base):
    """One member's current ballot in one round (the last cast counts; earlier casts are replaced)."""

    __tablename__ = "ballots"

    id: Mapped[intpk]
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("rounds.id", ondelete="RESTRICT"))
    #: the voter (a member of the round's circle); never published
    voter_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    #: the rule's BallotKind value at cast time, so a row decodes without the rule
    ballot_kind: Mapped[str] = mapped_column(sa.String(12))
    #: SHA-256 hex of the receipt code of the latest cast (the code itself is shown once, never stored)
    receipt_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: first cast
    cast_at: Mapped[dt.datetime]
    #: latest cast (equals cast_at until the member changes the ballot)
    updated_at: Mapped[dt.datetime]
    #: how many times this member cast (1 = never changed); counts concurrent copies too
    times_cast: Mapped[int] = mapped_column(default=1)

    items = relationship("BallotItem", back_populates="ballot", order_by="BallotItem.id",
                         cascade="all, delete-orphan", passive_deletes=True, lazy="selectin")

    __table_args__ = (
        sa.UniqueConstraint("round_id", "voter_id"),
        sa.CheckConstraint(
            "ballot_kind IN ('approval', 'points', 'scores', 'ranking', 'consent', 'allocation')",
            name="kind_known"),
        sa.CheckConstraint("times_cast >= 1", name="times_cast_positive"),
    )


class BallotItem(Base):
    """One proposal's entry on a ballot. Which columns are used depends on the ballot kind:

    approval: value = 1 · points/scores: value = points or score · ranking: value = position (1 = best)
    · allocation: value = amount_minor · consent: response (+ reason for concern/objection).
    """

    __tablename__ = "ballot_items"

    id: Mapped[intpk]
    ballot_id: Mapped[int] = mapped_column(sa.ForeignKey("ballots.id", ondelete="CASCADE"))
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="RESTRICT"), index=True)
    #: the number this kind of ballot gives the proposal (see the class docstring); NULL for consent
    value: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: consent ballots: consent | concern | objection
    response: Mapped[str | None] = mapped_column(sa.String(10))
    #: consent ballots: the reason given with a concern or an objection
    reason: Mapped[str] = mapped_column(sa.Text, default="")

    ballot = relationship("StoredBallot", back_populates="items")

    __table_args__ = (
        sa.UniqueConstraint("ballot_id", "proposal_id"),
        sa.CheckConstraint("response IS NULL OR response IN ('consent', 'concern', 'objection')",
                           name="response_known"),
        sa.CheckConstraint("value IS NOT NULL OR response IS NOT NULL", name="has_value"),
    )


class ConflictOfInterest(Base):
    """A member's conflict with one proposal: declared by the member or assigned automatically."""

    __tablename__ = "conflicts_of_interest"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    #: ConflictLevel value
    level: Mapped[str] = mapped_column(sa.String(10))
    #: ConflictCategory value (published, anonymised, in the recusal log)
    reason_category: Mapped[str] = mapped_column(sa.String(20))
    #: the member's own words (shown to facilitators, not published)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    #: assigned by the system (applicant, payee), not declared by the member
    is_automatic: Mapped[bool] = mapped_column(default=False)
    declared_at: Mapped[dt.datetime]

    proposal = relationship("Proposal", lazy="joined")

    __table_args__ = (
        # one row per member and proposal: a new declaration replaces the old one
        sa.UniqueConstraint("user_id", "proposal_id"),
        sa.CheckConstraint("level IN ('disclose', 'recuse')", name="level_known"),
        sa.CheckConstraint(
            "reason_category IN ('applicant', 'payee', 'co_applicant', 'family', 'financial', "
            "'organisation', 'other')", name="category_known"),
    )


class RoundResult(Base):
    """The stored tally of a round: enough to re-run it from the exported ballots and compare."""

    __tablename__ = "round_results"

    id: Mapped[intpk]
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("rounds.id", ondelete="RESTRICT"), unique=True)
    rule_id: Mapped[str] = mapped_column(sa.String(60))
    #: every parameter of the rule, defaults filled in (JSON-safe: Fractions as "p/q")
    params: Mapped[dict[str, Any]]
    #: fundcircle.voting.tiebreak.ballot_digest of the tallied ballots (hex SHA-256)
    ballot_digest: Mapped[str] = mapped_column(sa.String(64))
    #: the public tie-break seed, make_seed(round id, ballot digest)
    seed: Mapped[str] = mapped_column(sa.String(200))
    ballot_count: Mapped[int]
    #: Outcome.to_json() of the tally
    outcome: Mapped[dict[str, Any]]
    #: the tally's trace steps (also inside ``outcome``; kept apart for the results page)
    trace: Mapped[list[Any]]
    #: members of the circle at close (turnout = ballot_count / member_count)
    member_count: Mapped[int]
    #: proposal id (str) -> {"recusals": n, "categories": {category: n}}: the anonymised recusal log
    recusal_log: Mapped[dict[str, Any]]
    tallied_at: Mapped[dt.datetime]
    tallied_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    awards = relationship("Award", back_populates="result", lazy="selectin", order_by="Award.position")

    __table_args__ = (
        sa.CheckConstraint("ballot_count >= 0", name="ballot_count_nonneg"),
        sa.CheckConstraint("member_count >= 0", name="member_count_nonneg"),
    )


class Award(Base):
    """A funded proposal of a tallied round and its amount; earmarked in the ledger when the pot can."""

    __tablename__ = "awards"

    id: Mapped[intpk]
    #: an award exists only with its round's stored result
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round_results.round_id", ondelete="RESTRICT"))
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: the rule's selection order (1 = selected first)
    position: Mapped[int]
    created_at: Mapped[created_at_col]
    #: when the ledger earmark (pot -> earmark) was posted; NULL = not (yet) earmarked
    earmarked_at: Mapped[dt.datetime | None]
    #: why the earmark is missing (e.g. the pot cannot cover the round's awards); "" when earmarked
    earmark_problem: Mapped[str] = mapped_column(sa.Text, default="")

    result = relationship("RoundResult", back_populates="awards")
    proposal = relationship("Proposal", lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("round_id", "proposal_id"),
        sa.CheckConstraint("amount_minor >= 0", name="amount_nonneg"),
        sa.CheckConstraint("position >= 1", name="position_positive"),
    )
