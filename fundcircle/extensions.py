"""Unbound extensions, attached to the app in create_app with init_app."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, has_app_context
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from fundcircle.db import begin_write, make_engine, make_sessionmaker

csrf = CSRFProtect()


class Database:
    """Engine + one ORM session per app context.

    Operations use ``db.session`` and flush; the request boundary (or a CLI command) commits.
    """

    def __init__(self) -> None:
        self._apps: dict[int, tuple[Engine, sessionmaker[Session]]] = {}

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"], echo=app.config.get("SQL_ECHO", False))
        app.extensions["fundcircle.db"] = (engine, make_sessionmaker(engine))

        @app.teardown_appcontext
        def _close_session(_exc: BaseException | None) -> None:
            session: Session | None = g.pop("_fc_session", None)
            if session is not None:
                session.rollback()  # anything not committed by the boundary is discarded
                session.close()

    def _pair(self, app: Flask | None = None) -> tuple[Engine, sessionmaker[Session]]:
        from flask import current_app

        return (app or current_app).extensions["fundcircle.db"]

    @property
    def engine(self) -> Engine:
        return self._pair()[0]

    @property
    def session(self) -> Session:
        if not has_app_context():
            raise RuntimeError("db.session needs an app context")
        session = g.get("_fc_session")
        if session is None:
            session = self._pair()[1]()
            g._fc_session = session
            if g.get("_fc_write_request"):
                begin_write(session)
        return session

    def new_session(self) -> Session:
        """A session outside the app-context one (background work, tests)."""
        return self._pair()[1]()

    def dispose(self, app: Any = None) -> None:
        self._pair(app)[0].dispose()


db = Database()
