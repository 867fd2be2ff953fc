"""contributions: Stripe checkout sessions, webhook inbox, payments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21

Written inline (no app imports) so the migration stays a frozen snapshot. The unique keys are
the concurrency guards of the Stripe webhook: ``stripe_events.event_id`` (a redelivered event is
stored once), ``stripe_payments.payment_intent_id`` (one payment row, credited once) and
``stripe_disputes.dispute_id``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contribution_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("donor_name", sa.String(length=120), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("is_anonymous", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.Text(), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("requester_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_contribution_intents_amount_positive")),
        sa.CheckConstraint("status IN ('created', 'open', 'pending', 'paid', 'failed', 'expired')",
                           name=op.f("ck_contribution_intents_status_known")),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_contribution_intents_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contribution_intents")),
        sa.UniqueConstraint("public_id", name=op.f("uq_contribution_intents_public_id")),
        sa.UniqueConstraint("checkout_session_id", name=op.f("uq_contribution_intents_checkout_session_id")),
    )
    op.create_index(op.f("ix_contribution_intents_circle_id"), "contribution_intents", ["circle_id"], unique=False)
    op.create_index(op.f("ix_contribution_intents_requester_hash"), "contribution_intents", ["requester_hash"],
                    unique=False)

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("stripe_created_at", _TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("processed_at", _TS, nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_stripe_events_event_id")),
    )

    op.create_table(
        "stripe_payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("contribution_intent_id", sa.Integer(), nullable=True),
        sa.Column("charge_id", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("credited_transaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_stripe_payments_status_known")),
        sa.CheckConstraint("fee_minor >= 0 AND fee_minor <= gross_minor", name=op.f("ck_stripe_payments_fee_within_gross")),
        sa.CheckConstraint("refunded_minor >= 0 AND refunded_minor <= gross_minor",
                           name=op.f("ck_stripe_payments_refund_within_gross")),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_stripe_payments_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["contribution_intent_id"], ["contribution_intents.id"],
                                name=op.f("fk_stripe_payments_contribution_intent_id_contribution_intents"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_payments")),
        sa.UniqueConstraint("payment_intent_id", name=op.f("uq_stripe_payments_payment_intent_id")),
    )
    op.create_index(op.f("ix_stripe_payments_circle_id"), "stripe_payments", ["circle_id"], unique=False)
    op.create_index(op.f("ix_stripe_payments_contribution_intent_id"), "stripe_payments", ["contribution_intent_id"],
                    unique=False)
    op.create_index(op.f("ix_stripe_payments_charge_id"), "stripe_payments", ["charge_id"], unique=False)

    op.create_table(
        "stripe_disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispute_id", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("withdrawn_transaction_id", sa.Integer(), nullable=True),
        sa.Column("reinstated_transaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f("ck_stripe_disputes_status_known")),
        sa.CheckConstraint("amount_minor > 0 AND fee_minor >= 0", name=op.f("ck_stripe_disputes_amounts_valid")),
        sa.ForeignKeyConstraint(["payment_id"], ["stripe_payments.id"],
                                name=op.f("fk_stripe_disputes_payment_id_stripe_payments"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_disputes")),
        sa.UniqueConstraint("dispute_id", name=op.f("uq_stripe_disputes_dispute_id")),
    )
    op.create_index(op.f("ix_stripe_disputes_payment_id"), "stripe_disputes", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_stripe_disputes_payment_id"), table_name="stripe_disputes")
    op.drop_table("stripe_disputes")
    op.drop_index(op.f("ix_stripe_payments_charge_id"), table_name="stripe_payments")
    op.drop_index(op.f("ix_stripe_payments_contribution_intent_id"), table_name="stripe_payments")
    op.drop_index(op.f("ix_stripe_payments_circle_id"), table_name="stripe_payments")
    op.drop_table("stripe_payments")
    op.drop_table("stripe_events")
    op.drop_index(op.f("ix_contribution_intents_requester_hash"), table_name="contribution_intents")
    op.drop_index(op.f("ix_contribution_intents_circle_id"), table_name="contribution_intents")
    op.drop_table("contribution_intents")
