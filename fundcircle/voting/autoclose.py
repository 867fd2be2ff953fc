"""Close rounds whose voting time is over on the first request after it (no cron needed).

``init_app`` registers a ``before_request`` hook that, at most once every
``AUTO_CLOSE_INTERVAL_S`` seconds per process (and by one thread at a time), asks the database
for due rounds and closes and tallies each with ``operations.run_due_closes``: its own sessions,
one transaction per round, committed there. A failure is logged and never reaches the request.

The clock is ``fundcircle.db.utcnow`` (so tests that pin time with freezegun move it); when the
clock goes backwards (a test moving the frozen time back) the throttle starts over.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from flask import Flask, request

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 30


class AutoCloser:
    """Per-app throttle state for the hook."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.interval = dt.timedelta(seconds=int(app.config.get("AUTO_CLOSE_INTERVAL_S", DEFAULT_INTERVAL_S)))
        self.last_check_at: dt.datetime | None = None
        self._running = threading.Lock()

    def is_due(self, now: dt.datetime) -> bool:
        last = self.last_check_at
        return last is None or now < last or now - last >= self.interval

    def maybe_run(self) -> list[int]:
        from fundcircle.db import utcnow

        now = utcnow()
        if not self.is_due(now):
            return []
        if not self._running.acquire(blocking=False):
            return []  # another thread of this process is checking right now
        try:
            if not self.is_due(now):
                return []
            self.last_check_at = now
            return self.run(now)
        finally:
            self._running.release()

    def run(self, now: dt.datetime) -> list[int]:
        from fundcircle.extensions import db
        from fundcircle.voting.operations import run_due_closes

        try:
            closed = run_due_closes(lambda: db.new_session(), now)
        except Exception:  # noqa: BLE001 - the request must go on; the next check tries again
            log.exception("automatic close check failed")
            return []
        for round_id in closed:
            log.info("round_closed_automatically round=%s at=%s", round_id, now.isoformat())
        return closed


def init_app(app: Flask) -> None:
    if not app.config.get("AUTO_CLOSE_ROUNDS", True):
        return
    closer = AutoCloser(app)
    app.extensions["fundcircle.autoclose"] = closer

    def _close_due_rounds() -> None:
        if request.endpoint == "static":
            return
        closer.maybe_run()

    # First of all hooks: the closes commit in their own sessions before this request opens its
    # session (on SQLite a snapshot taken earlier could not write after them).
    app.before_request_funcs.setdefault(None, []).insert(0, _close_due_rounds)
