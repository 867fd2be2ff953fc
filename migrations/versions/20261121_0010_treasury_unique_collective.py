"""treasury: one Open Collective collective belongs to at most one circle

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-21

One OC token may administer several collectives, so two circles naming the same collective would
pay from and import each other's money. ``set_oc_account`` already refuses it; the unique index
makes the database refuse it too (two treasurers saving at once). Written inline so this migration
stays a frozen snapshot.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEX = "uq_treasury_accounts_oc_account_slug"


def upgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT oc_account_slug, COUNT(*) FROM treasury_accounts GROUP BY oc_account_slug HAVING COUNT(*) > 1"
    )).fetchall()
    if shared:
        names = ", ".join(f"{slug} ({count} circles)" for slug, count in shared)
        raise RuntimeError(f"cannot upgrade: these Open Collective collectives are named by more than one circle: "
                           f"{names}. Give each circle its own collective on the treasury page, then upgrade again.")
    op.create_index(INDEX, "treasury_accounts", ["oc_account_slug"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="treasury_accounts")
