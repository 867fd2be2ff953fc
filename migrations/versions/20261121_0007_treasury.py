"""treasury: Open Collective payouts, imports, reconciliation

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21

Tables written inline (no app imports), for SQLite and PostgreSQL alike:
* ``treasury_accounts``: the Open Collective collective of a circle;
* ``treasury_payouts``: one row per award paid through OC (unique award, unique award reference);
* ``treasury_imports``: one row per import of OC activity (API, CSV, re-check, webhook hint);
* ``treasury_oc_transactions``: imported OC ledger rows, unique per circle and OC id;
* ``treasury_proposed_entries``: ledger entries reconciliation proposes, at most one open per key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "treasury_accounts",
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("oc_account_slug", sa.String(length=100), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("oc_account_slug <> ''", name=op.f("ck_treasury_accounts_slug_not_empty")),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_treasury_accounts_circle_id_circles"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"],
                                name=op.f("fk_treasury_accounts_updated_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("circle_id", name=op.f("pk_treasury_accounts")),
    )

    op.create_table(
        "treasury_payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=False),
        sa.Column("award_ref", sa.String(length=120), nullable=False),
        sa.Column("oc_account_slug", sa.String(length=100), nullable=False),
        sa.Column("oc_expense_id", sa.String(length=80), nullable=True),
        sa.Column("oc_public_id", sa.String(length=80), nullable=True),
        sa.Column("oc_legacy_id", sa.BigInteger(), nullable=True),
        sa.Column("oc_status", sa.String(length=30), nullable=False),
        sa.Column("oc_on_hold", sa.Boolean(), nullable=False),
        sa.Column("oc_amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("oc_currency", sa.String(length=3), nullable=False),
        sa.Column("oc_url", sa.String(length=300), nullable=False),
        sa.Column("oc_payee_slug", sa.String(length=100), nullable=False),
        sa.Column("invited_email", sa.String(length=254), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("oc_created_at", _TS, nullable=True),
        sa.Column("oc_paid_at", _TS, nullable=True),
        sa.Column("checked_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(["award_id"], ["awards.id"], name=op.f("fk_treasury_payouts_award_id_awards"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_treasury_payouts_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"],
                                name=op.f("fk_treasury_payouts_requested_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treasury_payouts")),
        sa.UniqueConstraint("award_id", name=op.f("uq_treasury_payouts_award_id")),
        sa.UniqueConstraint("award_ref", name=op.f("uq_treasury_payouts_award_ref")),
        sa.UniqueConstraint("oc_public_id", name=op.f("uq_treasury_payouts_oc_public_id")),
    )
    op.create_index(op.f("ix_treasury_payouts_circle_id"), "treasury_payouts", ["circle_id"], unique=False)

    op.create_table(
        "treasury_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("header_style", sa.String(length=10), nullable=False),
        sa.Column("rows_seen", sa.Integer(), nullable=False),
        sa.Column("rows_new", sa.Integer(), nullable=False),
        sa.Column("proposals_new", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint("source IN ('api', 'csv', 'recheck', 'webhook')",
                           name=op.f("ck_treasury_imports_source_known")),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_treasury_imports_actor_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"], name=op.f("fk_treasury_imports_circle_id_circles"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treasury_imports")),
    )
    op.create_index(op.f("ix_treasury_imports_circle_id"), "treasury_imports", ["circle_id"], unique=False)

    op.create_table(
        "treasury_oc_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=80), nullable=False),
        sa.Column("oc_id", sa.String(length=80), nullable=True),
        sa.Column("public_id", sa.String(length=80), nullable=True),
        sa.Column("legacy_id", sa.BigInteger(), nullable=True),
        sa.Column("group_id", sa.String(length=80), nullable=False),
        sa.Column("type", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("is_refund", sa.Boolean(), nullable=False),
        sa.Column("is_refunded", sa.Boolean(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account_slug", sa.String(length=100), nullable=False),
        sa.Column("opposite_slug", sa.String(length=100), nullable=False),
        sa.Column("expense_oc_id", sa.String(length=80), nullable=True),
        sa.Column("expense_public_id", sa.String(length=80), nullable=True),
        sa.Column("expense_legacy_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=True),
        sa.Column("first_import_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("type IN ('CREDIT', 'DEBIT')", name=op.f("ck_treasury_oc_transactions_type_known")),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"],
                                name=op.f("fk_treasury_oc_transactions_circle_id_circles"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["first_import_id"], ["treasury_imports.id"],
                                name=op.f("fk_treasury_oc_transactions_first_import_id_treasury_imports"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treasury_oc_transactions")),
        sa.UniqueConstraint("circle_id", "ref", name=op.f("uq_treasury_oc_transactions_circle_id_ref")),
    )

    op.create_table(
        "treasury_proposed_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("circle_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("ledger_key", sa.String(length=255), nullable=False),
        sa.Column("award_id", sa.Integer(), nullable=True),
        sa.Column("oc_ref", sa.String(length=120), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("ledger_transaction_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("kind IN ('record_payout', 'release_remainder', 'reverse_payout', 'hold_in_suspense', "
                           "'record_contribution')", name=op.f("ck_treasury_proposed_entries_kind_known")),
        sa.CheckConstraint("status IN ('open', 'confirmed', 'dismissed', 'superseded')",
                           name=op.f("ck_treasury_proposed_entries_status_known")),
        sa.CheckConstraint("fee_minor >= 0", name=op.f("ck_treasury_proposed_entries_fee_nonneg")),
        sa.ForeignKeyConstraint(["award_id"], ["awards.id"], name=op.f("fk_treasury_proposed_entries_award_id_awards"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["circle_id"], ["circles.id"],
                                name=op.f("fk_treasury_proposed_entries_circle_id_circles"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"],
                                name=op.f("fk_treasury_proposed_entries_decided_by_id_users"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["import_id"], ["treasury_imports.id"],
                                name=op.f("fk_treasury_proposed_entries_import_id_treasury_imports"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treasury_proposed_entries")),
    )
    op.create_index(op.f("ix_treasury_proposed_entries_circle_id"), "treasury_proposed_entries", ["circle_id"],
                    unique=False)
    # at most one open proposal per ledger key and circle
    op.create_index("uq_treasury_proposed_entries_open_key", "treasury_proposed_entries", ["circle_id", "ledger_key"],
                    unique=True, sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    op.drop_index("uq_treasury_proposed_entries_open_key", table_name="treasury_proposed_entries")
    op.drop_index(op.f("ix_treasury_proposed_entries_circle_id"), table_name="treasury_proposed_entries")
    op.drop_table("treasury_proposed_entries")
    op.drop_table("treasury_oc_transactions")
    op.drop_index(op.f("ix_treasury_imports_circle_id"), table_name="treasury_imports")
    op.drop_table("treasury_imports")
    op.drop_index(op.f("ix_treasury_payouts_circle_id"), table_name="treasury_payouts")
    op.drop_table("treasury_payouts")
    op.drop_table("treasury_accounts")
