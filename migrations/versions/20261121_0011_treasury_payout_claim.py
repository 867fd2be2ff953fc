"""treasury: a payout row is claimed while Open Collective creates its expense

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21

The payout request commits the award's payout row with a claim (``claimed_at``, ``claim_token``)
before calling Open Collective with no transaction open, and releases it when it records OC's
answer. A fresh claim makes a second treasurer's request wait its turn (OC has no idempotency keys);
a stale one (a crash between the steps) may be taken over. Both NULL when nobody holds the row.
Written inline so this migration stays a frozen snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("treasury_payouts", sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("treasury_payouts", sa.Column("claim_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("treasury_payouts") as batch:
        batch.drop_column("claim_token")
        batch.drop_column("claimed_at")
