"""Tables of this package (built by migration 0006).

- ``ContributionIntent``: what a visitor asked to give (amount, name, message), created before
  Stripe is called; its random ``public_id`` is the seed of the Checkout idempotency key.
- ``StripeEvent``: the webhook inbox, one row per Stripe event id (unique), inserted with
  insert-or-ignore, so a redelivered event is recognised before anything is processed.
- ``StripePayment``: one row per PaymentIntent (unique), the per-payment state machine that the
  ledger postings follow: credited once, refunds recorded as a cumulative amount.
- ``StripeDispute``: one row per dispute: funds withdrawn once, reinstated at most once.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fundcircle.db import Base, UTCDateTime, created_at_col, intpk


class IntentStatus(str, enum.Enum):
    CREATED = "created"      # row written, Checkout Session not created yet
    OPEN = "open"            # the visitor was sent to Checkout
    PENDING = "pending"      # paid with a delayed method; waiting for async success/failure
    PAID = "paid"            # money credited to the pot
    FAILED = "failed"        # the delayed payment failed
    EXPIRED = "expired"      # the Checkout Session expired unpaid


class PaymentStatus(str, enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DisputeStatus(str, enum.Enum):
    OPEN = "open"            # funds withdrawn, outcome unknown
    WON = "won"              # funds reinstated
    LOST = "lost"            # funds stay withdrawn


def _values(enum_cls: type[enum.Enum]) -> str:
    return ", ".join(f"'{m.value}'" for m in enum_cls)


class ContributionIntent(Base):
    __tablename__ = "contribution_intents"

    id: Mapped[intpk]
    #: random id generated with the form; the Checkout idempotency key is derived from it
    public_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: shown with the contribution unless ``is_anonymous``
    donor_name: Mapped[str] = mapped_column(sa.String(120), default="")
    message: Mapped[str] = mapped_column(sa.Text, default="")
    is_anonymous: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(12), default=IntentStatus.CREATED.value)
    checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(sa.Text)
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: SHA-256 of the requesting IP address, for the per-address rate limit (never the address itself)
    requester_hash: Mapped[str] = mapped_column(sa.String(64), default="", index=True)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("amount_minor > 0", name="amount_positive"),
        sa.CheckConstraint(f"status IN ({_values(IntentStatus)})", name="status_known"),
    )

    @property
    def public_name(self) -> str:
        return "Anonymous" if self.is_anonymous or not self.donor_name else self.donor_name


class StripeEvent(Base):
    """The webhook inbox: a verified delivery is stored once per event id, then processed."""

    __tablename__ = "stripe_events"

    id: Mapped[intpk]
    #: Stripe's ``evt_…`` id: the deduplication key for redeliveries
    event_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    livemode: Mapped[bool] = mapped_column(default=False)
    #: the event's ``created`` (when Stripe made it; deliveries may come much later)
    stripe_created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: what processing did: credited, pending, refunded, ignored, needs_attention, …
    outcome: Mapped[str] = mapped_column(sa.String(40), default="")
    detail: Mapped[str] = mapped_column(sa.Text, default="")


class StripePayment(Base):
    __tablename__ = "stripe_payments"

    id: Mapped[intpk]
    circle_id: Mapped[int] = mapped_column(sa.ForeignKey("circles.id", ondelete="RESTRICT"), index=True)
    #: ``pi_…``: the payment's identity; the ledger key is ``stripe:payment_intent:<id>``
    payment_intent_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    checkout_session_id: Mapped[str | None] = mapped_column(sa.String(255))
    contribution_intent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contribution_intents.id", ondelete="RESTRICT"), index=True)
    charge_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(12), default=PaymentStatus.PENDING.value)
    gross_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    fee_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: cumulative amount refunded that the ledger already records (Stripe's amount_refunded is cumulative)
    refunded_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    credited_transaction_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(f"status IN ({_values(PaymentStatus)})", name="status_known"),
        sa.CheckConstraint("fee_minor >= 0 AND fee_minor <= gross_minor", name="fee_within_gross"),
        sa.CheckConstraint("refunded_minor >= 0 AND refunded_minor <= gross_minor", name="refund_within_gross"),
    )


class StripeDispute(Base):
    __tablename__ = "stripe_disputes"

    id: Mapped[intpk]
    #: ``dp_…``
    dispute_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("stripe_payments.id", ondelete="RESTRICT"), index=True)
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: Stripe's dispute fee, an expense of the circle
    fee_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    status: Mapped[str] = mapped_column(sa.String(12), default=DisputeStatus.OPEN.value)
    withdrawn_transaction_id: Mapped[int | None] = mapped_column(sa.Integer)
    reinstated_transaction_id: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint(f"status IN ({_values(DisputeStatus)})", name="status_known"),
        sa.CheckConstraint("amount_minor > 0 AND fee_minor >= 0", name="amounts_valid"),
    )
