"""Shared fixtures: databases built by the migrations, on SQLite and (when configured) PostgreSQL.

Every test that asks for ``database_url`` (directly or through ``app``/``client``) runs once per
backend: SQLite always; PostgreSQL too when FUNDCIRCLE_TEST_DATABASE_URL points at a server
(a throwaway database is made per test from a migrated template; the URL names the database to
connect to for administration, e.g. postgresql://postgres@127.0.0.1:5432/postgres).
FUNDCIRCLE_TEST_BACKENDS=postgresql (or sqlite) restricts the backends.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundcircle.migrate import upgrade

PG_ADMIN_URL = os.environ.get("FUNDCIRCLE_TEST_DATABASE_URL", "").strip()


def _backends() -> list[str]:
    backends = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])
    only = os.environ.get("FUNDCIRCLE_TEST_BACKENDS", "").strip()
    if only:
        backends = [b for b in backends if b in only.split(",")]
    return backends


BACKENDS = _backends()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "db: touches a database (runs per backend)")


# -- PostgreSQL administration -------------------------------------------------------------------

def _pg_url(database: str) -> sa.URL:
    url = sa.make_url(PG_ADMIN_URL)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.set(database=database)


def _pg_admin(sql: str) -> None:
    engine = sa.create_engine(_pg_url(sa.make_url(PG_ADMIN_URL).database or "postgres"),
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not PG_ADMIN_URL:
        pytest.skip("FUNDCIRCLE_TEST_DATABASE_URL is not set")
    name = f"fc_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(_pg_url(name).render_as_string(hide_password=False))
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


def make_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database for one test; dropped afterwards."""
    if backend == "sqlite":
        path = tmp_path / "fundcircle.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"fc_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name).render_as_string(hide_password=False)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from make_database(request.param, tmp_path, request)


@pytest.fixture
def backend(database_url: str) -> str:
    return sa.make_url(database_url).get_backend_name()


@pytest.fixture
def app(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from fundcircle import create_app

    app = create_app({
        "ENVIRONMENT": "testing",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": tmp_path / "instance",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
    })
    yield app
    from fundcircle.extensions import db

    db.dispose(app)


@pytest.fixture
def session(app):  # type: ignore[no-untyped-def]
    """The app-context ORM session (what operations use). Commit explicitly to persist."""
    from fundcircle.extensions import db

    with app.app_context():
        yield db.session


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from tests.support.web import WebClient

    return WebClient(app)
