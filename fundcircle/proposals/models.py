"""Proposals, their itemised budgets, and every submitted revision."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, created_at_col, intpk


class ProposalStatus(str, enum.Enum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"


class Screening(str, enum.Enum):
    UNSCREENED = "unscreened"
    ELIGIBLE = "eligible"
    INELIGIBLE = "ineligible"


class PayeeKind(str, enum.Enum):
    NONE = "none"
    OPENCOLLECTIVE = "opencollective"  # an Open Collective account slug
    EMAIL = "email"  # invite this address to submit payout details


class Proposal(Base):
    __tablename__ = "proposals"

    id: Mapped[intpk]
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    applicant_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(sa.String(160))
    #: one or two sentences, public
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
    #: the full text, public once submitted
    description: Mapped[str] = mapped_column(sa.Text, default="")
    amount_requested_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    payee_kind: Mapped[str] = mapped_column(sa.String(20), default=PayeeKind.NONE.value)
    #: Open Collective account slug (public) when payee_kind = opencollective
    payee_oc_slug: Mapped[str] = mapped_column(sa.String(100), default="")
    #: private: never shown publicly
    payee_email: Mapped[str] = mapped_column(sa.String(254), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default=ProposalStatus.DRAFT.value)
    screening: Mapped[str] = mapped_column(sa.String(20), default=Screening.UNSCREENED.value)
    #: shown to the applicant (and publicly when ineligible)
    screening_reason: Mapped[str] = mapped_column(sa.Text, default="")
    screened_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    screened_at: Mapped[dt.datetime | None]
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime]
    submitted_at: Mapped[dt.datetime | None]
    withdrawn_at: Mapped[dt.datetime | None]

    round = relationship("Round", back_populates="proposals", lazy="joined")
    applicant = relationship("User", foreign_keys=[applicant_id], lazy="joined")
    budget_lines = relationship(
        "BudgetLine", back_populates="proposal", order_by="BudgetLine.position",
        cascade="all, delete-orphan", lazy="selectin",
    )
    revisions = relationship("ProposalRevision", back_populates="proposal",
                             order_by="ProposalRevision.number", lazy="select")

    __table_args__ = (
        sa.CheckConstraint("amount_requested_minor >= 0", name="amount_nonneg"),
        sa.CheckConstraint("status IN ('draft', 'submitted', 'withdrawn')", name="status_known"),
        sa.CheckConstraint("screening IN ('unscreened', 'eligible', 'ineligible')", name="screening_known"),
        sa.CheckConstraint("payee_kind IN ('none', 'opencollective', 'email')", name="payee_kind_known"),
    )

    @property
    def is_submitted(self) -> bool:
        return self.status == ProposalStatus.SUBMITTED.value

    @property
    def budget_lines_total_minor(self) -> int:
        return sum(line.amount_minor for line in self.budget_lines)

    def snapshot(self) -> dict[str, Any]:
        """The proposal's content as a revision records it."""
        return {
            "title": self.title,
            "summary": self.summary,
            "description": self.description,
            "amount_requested_minor": self.amount_requested_minor,
            "currency": self.currency,
            "payee_kind": self.payee_kind,
            "payee_oc_slug": self.payee_oc_slug,
            "payee_email": self.payee_email,
            "budget_lines": [{"description": b.description, "amount_minor": b.amount_minor}
                             for b in self.budget_lines],
        }


class BudgetLine(Base):
    __tablename__ = "proposal_budget_lines"

    id: Mapped[intpk]
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    description: Mapped[str] = mapped_column(sa.String(200))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)

    proposal = relationship("Proposal", back_populates="budget_lines")

    __table_args__ = (sa.CheckConstraint("amount_minor >= 0", name="amount_nonneg"),)


class ProposalRevision(Base):
    """Every submitted version of a proposal, kept forever (append-only)."""

    __tablename__ = "proposal_revisions"

    id: Mapped[intpk]
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposals.id", ondelete="CASCADE"))
    number: Mapped[int]
    snapshot: Mapped[dict[str, Any]]
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[created_at_col]

    proposal = relationship("Proposal", back_populates="revisions")

    __table_args__ = (sa.UniqueConstraint("proposal_id", "number"),)
