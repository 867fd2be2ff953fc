"""voting web: nothing to add to the schema beyond 0003

The ballot pages, receipts and the close action need no new tables or columns: ballots, items,
conflicts, results and awards come from 0003 (with the freeze and recusal triggers), and the
round setting "show running results while voting is open" (``rounds.show_running_results``)
exists since 0001. The revision stays in the chain so later revisions keep their parents.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """No schema change (see the module docstring)."""


def downgrade() -> None:
    """No schema change (see the module docstring)."""
