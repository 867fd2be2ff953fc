"""Migration 0012 swaps SQLite's seal trigger for a cheaper one: down to 0011 and up again with ledger
rows present, each version guarding the seals written after it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fundcircle.ledger import award, record_contribution, verify
from fundcircle.migrate import alembic_config
from tests.integration.ledger.helpers import NOW, World
from tests.integration.ledger.test_guards import _account_id, _posting, _raw_tx, _seal


def _seal_check_sql(session: Session) -> str:
    sql = session.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'ledger_seal_check'")).scalar_one()
    session.rollback()  # no read transaction left open while alembic changes the schema
    return str(sql)


def _refuses_an_unbalanced_seal(session: Session) -> None:
    with pytest.raises(DBAPIError, match="sum to zero"), session.get_bind().engine.begin() as conn:
        tx = _raw_tx(conn, "raw:unbalanced")
        _posting(conn, tx, _account_id(conn, "1:oc:host"), 5)
        _posting(conn, tx, _account_id(conn, "1:suspense"), -4)
        _seal(conn, tx)


def test_down_to_0011_and_up_again_with_ledger_rows(db_session: Session, world: World, database_url: str,
                                                    backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("0012 leaves PostgreSQL's trigger functions alone")
    config = alembic_config(database_url)
    m0012 = ScriptDirectory.from_config(config).get_revision("0012").module
    record_contribution(db_session, world.circle, gross_minor=10_000, fee_minor=300, payment_intent_id="pi_a",
                        now=NOW)
    db_session.commit()
    assert _seal_check_sql(db_session) == m0012.SEAL_CHECK.strip()

    command.downgrade(config, "0011")
    assert _seal_check_sql(db_session) == m0012.SEAL_CHECK_0002.strip()
    award(db_session, world.round, world.proposals[0], 4_000, now=NOW)
    db_session.commit()
    _refuses_an_unbalanced_seal(db_session)

    command.upgrade(config, "0012")
    assert _seal_check_sql(db_session) == m0012.SEAL_CHECK.strip()
    award(db_session, world.round, world.proposals[1], 1_000, now=NOW)
    db_session.commit()
    _refuses_an_unbalanced_seal(db_session)
    report = verify(db_session)
    assert report.ok and report.head is not None and report.head.seq == 3, report.problems
