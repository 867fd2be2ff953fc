"""The schema the app runs on is the one the migrations build."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fundcircle.db import make_engine
from fundcircle.migrate import current_revision, head_revision
from fundcircle.models import Base

APPEND_ONLY = ("audit_events", "proposal_revisions")


def test_database_is_at_head(database_url: str) -> None:
    assert current_revision(database_url) == head_revision(database_url)


def test_models_match_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff


def _triggers(conn: sa.Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
    else:
        rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    return {r[0] for r in rows}


def test_append_only_guards_exist(database_url: str, backend: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        names = _triggers(conn)
    engine.dispose()
    for table in APPEND_ONLY:
        expected = ({f"{table}_no_change", f"{table}_no_truncate"} if backend == "postgresql"
                    else {f"{table}_no_update", f"{table}_no_delete"})
        assert expected <= names, (table, names)


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET action = 'forged'",
    "DELETE FROM audit_events",
    "UPDATE proposal_revisions SET number = 99",
    "DELETE FROM proposal_revisions",
])
def test_raw_changes_to_append_only_tables_are_refused(app, statement: str) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from tests.support import factories as f

    with app.app_context():
        circle = f.create_circle(db.session)
        round_ = f.create_round(db.session, circle)
        f.create_proposal(db.session, round_, f.create_user(db.session, "a@example.org"))  # writes a revision
        db.session.commit()
    engine = make_engine(app.config["DATABASE_URL"])
    table = statement.split()[1] if statement.startswith("UPDATE") else statement.split()[2]
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() > 0
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_truncate_is_refused_on_postgresql(database_url: str, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    engine = make_engine(database_url)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE audit_events CASCADE")
    engine.dispose()
