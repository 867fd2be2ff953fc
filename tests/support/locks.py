"""Checks that a request is not holding the database's write lock while it waits on the network."""

from __future__ import annotations

from sqlalchemy.engine import Engine


def take_sqlite_write_lock_at_once(engine: Engine, wait_ms: int = 200) -> None:
    """On SQLite, take and release the database's single write lock from another connection,
    waiting at most ``wait_ms`` (instead of the app's 15 s busy timeout): raises "database is
    locked" if some transaction holds it. A no-op on other databases (they lock rows, not files)."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        raw.driver_connection.execute("BEGIN IMMEDIATE")
        raw.driver_connection.execute("ROLLBACK")
    finally:
        raw.close()
