"""ledger balance assertions: an outside statement's balance of one account compared with the books

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-21

Insert-only like every ledger table (reference §1.5): UPDATE and DELETE are refused by triggers on
both databases, TRUNCATE too on PostgreSQL (reusing 0002's ``fc_ledger_refuse_change``).
Written inline so this migration stays a frozen snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "ledger_balance_assertion"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("as_of_seq", BigId, nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=True),
        sa.Column("expected_minor", sa.BigInteger(), nullable=False),
        sa.Column("ledger_minor", sa.BigInteger(), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("asserted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("matched = (expected_minor = ledger_minor)",
                           name=op.f("ck_ledger_balance_assertion_matched_is_equality")),
        sa.CheckConstraint("as_of_seq >= 0", name=op.f("ck_ledger_balance_assertion_as_of_seq_not_negative")),
        sa.CheckConstraint("source <> '' AND reference <> ''",
                           name=op.f("ck_ledger_balance_assertion_source_and_reference")),
        sa.ForeignKeyConstraint(["account_id"], ["ledger_account.id"],
                                name=op.f("fk_ledger_balance_assertion_account_id_ledger_account"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["currency"], ["currency.code"],
                                name=op.f("fk_ledger_balance_assertion_currency_currency"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_ledger_balance_assertion_actor_id_users"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_balance_assertion")),
        sa.UniqueConstraint("source", "reference", "account_id",
                            name=op.f("uq_ledger_balance_assertion_source_reference_account_id")),
    )
    op.create_index("ix_ledger_balance_assertion_account_id_id", TABLE, ["account_id", "id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
                   f"FOR EACH ROW EXECUTE FUNCTION fc_ledger_refuse_change()")
        op.execute(f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION fc_ledger_refuse_change()")
    else:
        op.execute(f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only (UPDATE refused)'); END")
        op.execute(f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} "
                   f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only (DELETE refused)'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_no_delete")
    op.drop_index("ix_ledger_balance_assertion_account_id_id", table_name=TABLE)
    op.drop_table(TABLE)
