"""Rounds: a call for proposals with a budget, a rule, dated phases and eligibility settings."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, created_at_col, intpk


class Phase(str, enum.Enum):
    """Where a round stands. Derived from its dates (and, later, its results) — never stored."""

    DRAFT = "draft"  # not yet published; only facilitators see it
    ANNOUNCED = "announced"  # published, submissions not open yet
    CALL_OPEN = "call_open"  # applicants submit and edit
    SCREENING = "screening"  # submissions closed, deliberation not started
    DELIBERATION = "deliberation"  # members read, ask, discuss
    VOTING = "voting"
    CLOSED = "closed"  # voting over

    @property
    def label(self) -> str:
        return PHASE_LABELS[self]


PHASE_LABELS = {
    Phase.DRAFT: "Draft",
    Phase.ANNOUNCED: "Announced",
    Phase.CALL_OPEN: "Call open",
    Phase.SCREENING: "Screening",
    Phase.DELIBERATION: "Deliberation",
    Phase.VOTING: "Voting",
    Phase.CLOSED: "Closed",
}

#: Proposal fields a round can require at submission (beyond title, summary and amount).
REQUIRABLE_FIELDS = {
    "description": "a full description",
    "budget_lines": "an itemised budget",
    "payee": "a payee (Open Collective account or e-mail)",
}


class Round(Base):
    __tablename__ = "rounds"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(160))
    #: the call for proposals, shown publicly (plain text with paragraphs)
    call_text: Mapped[str] = mapped_column(sa.Text, default="")
    budget_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    rule_id: Mapped[str] = mapped_column(sa.String(60))
    #: the rule's parameters as given by the facilitator (resolved when tallied)
    rule_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    published_at: Mapped[dt.datetime | None]
    submissions_open_at: Mapped[dt.datetime]
    submissions_close_at: Mapped[dt.datetime]
    deliberation_open_at: Mapped[dt.datetime]
    voting_open_at: Mapped[dt.datetime]
    voting_close_at: Mapped[dt.datetime]
    #: eligibility: smallest and largest request, in minor units (None = no limit)
    min_request_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    max_request_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: names from REQUIRABLE_FIELDS that a proposal must fill in to be submitted
    required_fields: Mapped[list[Any]] = mapped_column(default=list)
    #: at most this many submitted proposals per applicant (None = no limit)
    max_proposals_per_applicant: Mapped[int | None]
    #: show running results while voting is open (default: hidden)
    show_running_results: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[created_at_col]
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    circle = relationship("Circle", lazy="joined")
    proposals = relationship("Proposal", back_populates="round", lazy="select", order_by="Proposal.id")

    __table_args__ = (
        sa.CheckConstraint("budget_minor > 0", name="budget_positive"),
        sa.CheckConstraint("submissions_open_at < submissions_close_at", name="submissions_window"),
        sa.CheckConstraint("submissions_close_at <= deliberation_open_at", name="deliberation_after_submissions"),
        sa.CheckConstraint("deliberation_open_at <= voting_open_at", name="voting_after_deliberation"),
        sa.CheckConstraint("voting_open_at < voting_close_at", name="voting_window"),
        sa.CheckConstraint("min_request_minor IS NULL OR min_request_minor >= 0", name="min_request_nonneg"),
        sa.CheckConstraint(
            "max_request_minor IS NULL OR min_request_minor IS NULL OR max_request_minor >= min_request_minor",
            name="request_range",
        ),
    )

    def phase_at(self, now: dt.datetime) -> Phase:
        """The phase at ``now`` (UTC). Boundaries: a phase includes its opening instant and ends
        just before its closing instant."""
        if self.published_at is None:
            return Phase.DRAFT
        if now < self.submissions_open_at:
            return Phase.ANNOUNCED
        if now < self.submissions_close_at:
            return Phase.CALL_OPEN
        if now < self.deliberation_open_at:
            return Phase.SCREENING
        if now < self.voting_open_at:
            return Phase.DELIBERATION
        if now < self.voting_close_at:
            return Phase.VOTING
        return Phase.CLOSED

    def timeline(self) -> list[tuple[str, dt.datetime, dt.datetime]]:
        """(label, starts, ends) for each dated phase, for the public page."""
        rows = [("Call for proposals", self.submissions_open_at, self.submissions_close_at)]
        if self.deliberation_open_at > self.submissions_close_at:
            rows.append(("Screening", self.submissions_close_at, self.deliberation_open_at))
        rows.append(("Deliberation", self.deliberation_open_at, self.voting_open_at))
        rows.append(("Voting", self.voting_open_at, self.voting_close_at))
        return rows
