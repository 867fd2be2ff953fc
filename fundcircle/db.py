"""SQLAlchemy base, naming convention, column types, and the engine/session plumbing.

One session per app context; operations flush, the request or command boundary commits.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from typing import Annotated, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, mapped_column, sessionmaker

from fundcircle.errors import RuleViolation

#: row ids are 32-bit integers on PostgreSQL; a larger number from a URL, a form or a query names nothing
#: (and PostgreSQL would refuse to compare it with an integer column)
MAX_ROW_ID = 2**31 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (freezegun-friendly)."""
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite has no time zones; PostgreSQL uses timestamptz. Naive datetimes are refused so no
    local time can sneak in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


intpk = Annotated[int, mapped_column(primary_key=True)]
created_at_col = Annotated[dt.datetime, mapped_column(UTCDateTime, nullable=False, default=utcnow)]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


# -- engines -----------------------------------------------------------------------------------

def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    # FULL: a committed ledger post survives power loss (crash tests in the reference).
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA busy_timeout = 15000")
    cur.close()


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with fundcircle's per-connection settings."""
    sa_url = sa.make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if sa_url.get_backend_name() == "postgresql":
        if sa_url.drivername in ("postgresql", "postgres"):
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    elif sa_url.get_backend_name() == "sqlite":
        # The app manages transactions itself so BEGIN IMMEDIATE works (see begin_write).
        kwargs.update(connect_args={"check_same_thread": False, "isolation_level": None, "timeout": 15})
    engine = sa.create_engine(sa_url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        _install_sqlite_begin(engine)
    return engine


#: key in the pool record's ``info``: the current transaction on that connection holds SQLite's write lock
SQLITE_WRITE_LOCKED = "fundcircle.sqlite_write_locked"


class _NextBegin(threading.local):
    #: set by ``sqlite_write_connection`` around the one call that may begin the session's transaction
    immediate = False


_next_begin = _NextBegin()


def _install_sqlite_begin(engine: Engine) -> None:
    """Emit BEGIN ourselves (pysqlite's own transaction handling is off, isolation_level=None):
    IMMEDIATE when ``sqlite_write_connection`` starts the transaction, DEFERRED otherwise.

    A dialect hook on this engine's dialect rather than a "begin" engine event: any connection event
    makes SQLAlchemy dispatch events around every statement, begin and commit, which cost more than
    the BEGIN itself on the posting hot path. For the same reason the mode is not an execution
    option (setting one costs as much as the BEGIN).
    """
    dialect = engine.dialect
    set_options = dialect.set_connection_execution_options

    def set_connection_execution_options(connection: sa.Connection, opts: Any) -> None:
        if "sqlite_begin" in opts:
            raise ValueError("the sqlite_begin execution option is gone: use fundcircle.db.begin_write()")
        set_options(connection, opts)

    def do_begin(dbapi_connection: Any) -> None:
        # Straight to the driver: this runs once per transaction.
        immediate = _next_begin.immediate
        dbapi_connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        dbapi_connection.info[SQLITE_WRITE_LOCKED] = immediate

    dialect.set_connection_execution_options = set_connection_execution_options  # type: ignore[method-assign]
    dialect.do_begin = do_begin  # type: ignore[method-assign]


def sqlite_write_connection(session: Session) -> sa.Connection:
    """``session.connection()`` on SQLite, beginning with BEGIN IMMEDIATE if this call starts the
    transaction. Whether the transaction holds the write lock is ``conn.connection.info[SQLITE_WRITE_LOCKED]``
    (false when it had already begun DEFERRED)."""
    _next_begin.immediate = True
    try:
        return session.connection()
    finally:
        _next_begin.immediate = False


def begin_write(session: Session) -> None:
    """Start the session's transaction holding the database write lock, where there is one.

    On SQLite this is BEGIN IMMEDIATE: a transaction that reads first and writes later can fail
    with SQLITE_BUSY when another writer committed in between, and waiting does not help. Must be
    called before the session's first statement; a no-op on other databases and when the session
    already holds a write transaction.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    conn = sqlite_write_connection(session)
    if not conn.connection.info.get(SQLITE_WRITE_LOCKED):
        raise RuntimeError("begin_write() must be called before the transaction's first statement")


class HeldConnectionSession(Session):
    """A Session that keeps the one connection it checks out from the pool until ``close()``
    (or ``reset()``/``invalidate()``), instead of returning it after every commit.

    Why: a pool checkout, the check-in with its reset, and a fresh ``Connection`` wrapper cost
    more than SQLite's own BEGIN and COMMIT: about 60 µs of each database transaction on the
    2-core CI machine (``bench/ledger.py``), for a session that commits many times (a background
    job posting one ledger transaction per commit, a CLI import). A request's session commits once,
    so it holds the connection for as long as before.

    Only the session's own engine is held, and only on SQLite (``make_sessionmaker``): PostgreSQL
    connections are pre-pinged at checkout, which a held connection would skip. Between
    transactions the held connection is idle: fundcircle emits BEGIN itself (``do_begin``) and
    pysqlite opens no transaction of its own, so no read snapshot outlives a commit. A session
    dropped without ``close()`` returns its connection when it is garbage-collected.
    """

    _held: sa.Connection | None = None
    _release: weakref.finalize | None = None

    def get_bind(self, mapper: Any = None, **kw: Any) -> Any:
        bind = super().get_bind(mapper, **kw)
        if bind is not self.bind:
            return bind
        held = self._held
        if held is None or held.closed:
            self._release_held()  # closed under us: drop its finalizer with it
            held = self._held = bind.connect()
            # a strong reference to the connection, none to the session
            self._release = weakref.finalize(self, held.close)
        return held

    def _release_held(self) -> None:
        release, self._release, self._held = self._release, None, None
        if release is not None:
            release()  # closes the connection (its transaction, if any, was closed by the session)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release_held()

    def reset(self) -> None:
        try:
            super().reset()
        finally:
            self._release_held()

    def invalidate(self) -> None:
        try:
            super().invalidate()
        finally:
            self._release_held()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    session_class = HeldConnectionSession if engine.dialect.name == "sqlite" else Session
    return sessionmaker(bind=engine, class_=session_class, expire_on_commit=False, autoflush=True)


# -- database errors raised by our triggers ------------------------------------------------------

class AppendOnlyViolation(RuleViolation):
    """A trigger refused to change or delete an append-only row."""


def translate_db_error(exc: BaseException) -> BaseException:
    """Map an error raised by a fundcircle trigger (SQLSTATE class FC / SQLite RAISE text)
    to a domain exception; anything else is returned unchanged."""
    orig = getattr(exc, "orig", None)
    text = str(orig or exc)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if (sqlstate and str(sqlstate).startswith("FC")) or "append-only" in text:
        return AppendOnlyViolation(text.splitlines()[0])
    return exc
