"""fundcircle: a participatory micro-grant engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

__all__ = ["create_app"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``config`` (tests) on top."""
    from fundcircle import security
    from fundcircle.config import load_config, resource_dir
    from fundcircle.errors import register_error_handlers
    from fundcircle.extensions import csrf, db
    from fundcircle.notifications.operations import send_queued_after_commit
    from fundcircle.routing import RowIdConverter

    settings = load_config(config)
    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        # small progressive-enhancement scripts (fundcircle/static, shipped as package data)
        static_folder="static",
        static_url_path="/static",
        instance_path=str(settings["INSTANCE_PATH"]),
        instance_relative_config=False,
    )
    app.config.update(settings)
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    app.url_map.converters["int"] = RowIdConverter
    db.init_app(app)
    csrf.init_app(app)
    register_error_handlers(app)
    security.init_app(app)
    _register_blueprints(app)
    _register_template_helpers(app)
    from fundcircle.voting import autoclose

    autoclose.init_app(app)  # close and tally rounds whose voting time is over, on the next request

    def _mark_write_request() -> None:
        # Writing requests take the SQLite write lock at BEGIN (see db.begin_write).
        g._fc_write_request = request.method not in SAFE_METHODS

    # First of all hooks: auth's hook opens the request session to load the user, and a session
    # opened before this flag is set begins deferred (concurrent POSTs then failed with
    # "database is locked" on SQLite: the HTTP ballot storm found it).
    app.before_request_funcs.setdefault(None, []).insert(0, _mark_write_request)

    @app.after_request
    def _commit_unit_of_work(response):  # type: ignore[no-untyped-def]
        # The request boundary: commit once when the request succeeded, else roll back.
        session = g.get("_fc_session")
        if session is not None:
            if response.status_code < 400:
                session.commit()
                send_queued_after_commit()
            else:
                session.rollback()
        return response

    return app


def _register_blueprints(app: Flask) -> None:
    from fundcircle.auth.blueprint import bp as auth_bp
    from fundcircle.circles.blueprint import bp as circles_bp
    from fundcircle.notifications.blueprint import bp as notifications_bp
    from fundcircle.proposals.blueprint import bp as proposals_bp
    from fundcircle.rounds.blueprint import bp as rounds_bp
    from fundcircle.api.blueprint import bp as api_bp
    from fundcircle.contributions.blueprint import bp as contributions_bp
    from fundcircle.deliberation.blueprint import bp as deliberation_bp
    from fundcircle.transparency.blueprint import bp as transparency_bp
    from fundcircle.treasury.blueprint import bp as treasury_bp
    from fundcircle.voting.blueprint import bp as voting_bp

    for bp in (auth_bp, circles_bp, rounds_bp, proposals_bp, notifications_bp, deliberation_bp, voting_bp,
               transparency_bp, api_bp, contributions_bp, treasury_bp):
        app.register_blueprint(bp)


def _register_template_helpers(app: Flask) -> None:
    from fundcircle import templating

    templating.init_app(app)
