"""Tables of the treasury (built by migration 0007): the circle's Open Collective account, payout
records (one per award), imports of OC activity, imported OC transactions, and the ledger entries
reconciliation proposes for the treasurer to confirm.

None of these is money of record — the ledger is. They remember what fundcircle asked Open
Collective to do and what Open Collective said, so reconciliation can compare the two.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fundcircle.db import Base, UTCDateTime, created_at_col, intpk


class AwardState(str, enum.Enum):
    """Where an award stands between the vote and the money arriving (exactly one per award)."""

    AWARDED = "awarded"                        # no live OC expense yet
    EXPENSE_CREATED = "expense_created"        # the OC expense exists, not approved yet
    APPROVED = "approved"                      # approved (or scheduled / processing) in OC, not paid
    PAID = "paid"                              # paid in OC and the ledger agrees (matched)
    AMOUNT_DIFFERS = "amount_differs"          # OC's amount or currency differs from the award or ledger
    PAID_NOT_IN_LEDGER = "paid_not_in_ledger"  # OC paid it; the ledger has no payout yet
    MISSING_IN_OC = "missing_in_oc"            # the ledger has a payout OC does not show (or took back)

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    AwardState.AWARDED: "Awarded", AwardState.EXPENSE_CREATED: "Expense created", AwardState.APPROVED: "Approved",
    AwardState.PAID: "Paid (matched)", AwardState.AMOUNT_DIFFERS: "Amount or currency differs",
    AwardState.PAID_NOT_IN_LEDGER: "Paid in Open Collective, not in the ledger",
    AwardState.MISSING_IN_OC: "In the ledger, missing in Open Collective",
}


class ProposalKind(str, enum.Enum):
    RECORD_PAYOUT = "record_payout"            # earmark → OC host (+ OC fee)
    RELEASE_REMAINDER = "release_remainder"    # earmark → pot (OC paid less than awarded)
    REVERSE_PAYOUT = "reverse_payout"          # a correction: reverse a ledger payout OC does not show
    HOLD_IN_SUSPENSE = "hold_in_suspense"      # unexplained OC money → suspense
    RECORD_CONTRIBUTION = "record_contribution"  # OC contribution → pot (+ fees)


class ProposalStatus(str, enum.Enum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    SUPERSEDED = "superseded"


class TreasuryAccount(Base):
    """The Open Collective collective that holds a circle's money (one per circle)."""

    __tablename__ = "treasury_accounts"

    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="CASCADE"), primary_key=True)
    #: the collective's slug on Open Collective (its handle)
    oc_account_slug: Mapped[str] = mapped_column(sa.String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        sa.CheckConstraint("oc_account_slug <> ''", name="slug_not_empty"),
        # a collective holds one circle's money (migration 0010); set_oc_account says so in words first
        sa.Index("uq_treasury_accounts_oc_account_slug", "oc_account_slug", unique=True),
    )


class PayoutRecord(Base):
    """fundcircle's record of the Open Collective expense that pays one award.

    The row is written and claimed before OC is called (the local intent) and serialises payouts
    per award (unique ``award_id``, the claim); ``award_ref`` is what goes into the expense's
    ``reference`` and ``customData`` so a lookup can always find it again.
    """

    __tablename__ = "treasury_payouts"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("awards.id", ondelete="RESTRICT"), unique=True)
    #: ``fundcircle:award:<circle id>:<award id>``: deterministic, so a lost local row cannot hide an OC expense
    award_ref: Mapped[str] = mapped_column(sa.String(120), unique=True)
    oc_account_slug: Mapped[str] = mapped_column(sa.String(100))
    #: OC's opaque id, its ``ex_`` public id and its deprecated integer id (CSV and webhooks still use it)
    oc_expense_id: Mapped[str | None] = mapped_column(sa.String(80))
    oc_public_id: Mapped[str | None] = mapped_column(sa.String(80), unique=True)
    oc_legacy_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    oc_status: Mapped[str] = mapped_column(sa.String(30), default="")
    oc_on_hold: Mapped[bool] = mapped_column(default=False)
    #: the expense's amount as OC reports it (minor units of ``oc_currency``)
    oc_amount_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    oc_currency: Mapped[str] = mapped_column(sa.String(3), default="")
    oc_url: Mapped[str] = mapped_column(sa.String(300), default="")
    oc_payee_slug: Mapped[str] = mapped_column(sa.String(100), default="")
    #: when the payee was invited by email to submit payout details
    invited_email: Mapped[str] = mapped_column(sa.String(254), default="")
    #: the last failure talking to OC about this payout ("" when the last call worked)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    requested_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    oc_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    oc_paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: set while a request asks OC to create the expense (migration 0011): the row is committed with
    #: the claim before OC is called with no transaction open, so a fresh claim turns a second
    #: request away; a stale one (a crash between the steps) may be taken over. NULL when unclaimed.
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the claiming request's random token: its own claim is the one it records and releases
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))


class ImportRun(Base):
    """One import of Open Collective activity (from the API or a CSV export)."""

    __tablename__ = "treasury_imports"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    #: "api" | "csv" | "recheck" | "webhook"
    source: Mapped[str] = mapped_column(sa.String(10))
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    #: CSV header style: "keys" (raw field names) or "labels" (useFieldNames); "" for the API
    header_style: Mapped[str] = mapped_column(sa.String(10), default="")
    rows_seen: Mapped[int] = mapped_column(default=0)
    rows_new: Mapped[int] = mapped_column(default=0)
    proposals_new: Mapped[int] = mapped_column(default=0)
    #: state counts and the report's headline numbers
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[created_at_col]

    __table_args__ = (sa.CheckConstraint("source IN ('api', 'csv', 'recheck', 'webhook')", name="source_known"),)


class ImportedTransaction(Base):
    """One row of the collective's Open Collective ledger, as imported (host currency, signed).

    Keyed per circle by ``ref`` (the integer id every source carries, see OCTransaction.ref);
    the other ids are kept when a source gave them.
    """

    __tablename__ = "treasury_oc_transactions"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"))
    ref: Mapped[str] = mapped_column(sa.String(80))
    oc_id: Mapped[str | None] = mapped_column(sa.String(80))
    public_id: Mapped[str | None] = mapped_column(sa.String(80))
    legacy_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    group_id: Mapped[str] = mapped_column(sa.String(80))
    #: CREDIT | DEBIT
    type: Mapped[str] = mapped_column(sa.String(6))
    kind: Mapped[str] = mapped_column(sa.String(40))
    is_refund: Mapped[bool] = mapped_column(default=False)
    is_refunded: Mapped[bool] = mapped_column(default=False)
    #: signed (debits negative), minor units of ``currency`` (the host currency)
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    account_slug: Mapped[str] = mapped_column(sa.String(100), default="")
    opposite_slug: Mapped[str] = mapped_column(sa.String(100), default="")
    expense_oc_id: Mapped[str | None] = mapped_column(sa.String(80))
    expense_public_id: Mapped[str | None] = mapped_column(sa.String(80))
    expense_legacy_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    occurred_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_import_id: Mapped[int] = mapped_column(sa.ForeignKey("treasury_imports.id", ondelete="RESTRICT"))

    __table_args__ = (
        sa.UniqueConstraint("circle_id", "ref"),
        sa.CheckConstraint("type IN ('CREDIT', 'DEBIT')", name="type_known"),
    )


class ProposedEntry(Base):
    """A ledger entry reconciliation proposes; the treasurer confirms (posts) or dismisses it.

    ``ledger_key`` is the idempotency key the entry posts under, so confirming twice, or the same
    proposal coming back from a second import, can never post twice. At most one open proposal per
    key and circle (a partial unique index).
    """

    __tablename__ = "treasury_proposed_entries"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    ledger_key: Mapped[str] = mapped_column(sa.String(255))
    award_id: Mapped[int | None] = mapped_column(sa.ForeignKey("awards.id", ondelete="RESTRICT"))
    #: what in Open Collective this is about: an expense public id, a transaction ref or a group
    oc_ref: Mapped[str] = mapped_column(sa.String(120), default="")
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    fee_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: why reconciliation proposes it, in words for the treasurer
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    #: e.g. the ledger transaction a reversal would reverse
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(12), default=ProposalStatus.OPEN.value)
    import_id: Mapped[int | None] = mapped_column(sa.ForeignKey("treasury_imports.id", ondelete="RESTRICT"))
    created_at: Mapped[created_at_col]
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    #: the treasurer's note when confirming or dismissing
    decision_note: Mapped[str] = mapped_column(sa.Text, default="")
    ledger_transaction_id: Mapped[int | None] = mapped_column(sa.BigInteger)

    award = relationship("Award", lazy="joined")

    __table_args__ = (
        sa.CheckConstraint("kind IN ('record_payout', 'release_remainder', 'reverse_payout', 'hold_in_suspense', "
                           "'record_contribution')", name="kind_known"),
        sa.CheckConstraint("status IN ('open', 'confirmed', 'dismissed', 'superseded')", name="status_known"),
        sa.CheckConstraint("fee_minor >= 0", name="fee_nonneg"),
        sa.Index("uq_treasury_proposed_entries_open_key", "circle_id", "ledger_key", unique=True,
                 sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'")),
    )
