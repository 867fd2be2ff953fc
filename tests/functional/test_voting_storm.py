"""Ballots under concurrency through a real HTTP server (werkzeug over loopback, ``requests``):

* a double-submit storm: every member POSTs several copies of a ballot at once → exactly one
  ballot per member, every copy answered 200, no 5xx;
* a close racing casts: members cast around the close time while the facilitator closes and
  tallies → every accepted cast is in the tally, every refused one is not stored, and no ballot
  is stored after the close.

The operation-level storms (hundreds of members, tens of threads) are in
tests/integration/voting_db/test_storms.py; these stay small so CI stays fast. Sizes and timings
are printed (run with -s to see them).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from fundcircle.db import utcnow
from fundcircle.extensions import db
from fundcircle.voting import operations as ops
from fundcircle.voting.models import RoundResult, StoredBallot
from tests.support import factories as f
from tests.support.live_server import serve
from tests.support.web import TOTP_SECRET_RE

STORM_MEMBERS = 30
STORM_COPIES = 5
RACE_MEMBERS = 40
CLIENT_THREADS = 16
CSRF_RE = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
LINK_RE = re.compile(r"https?://\S+?(/signin/link/\S+)")


@pytest.fixture
def live_app(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from fundcircle import create_app

    app = create_app({
        "ENVIRONMENT": "testing", "DATABASE_URL": database_url, "INSTANCE_PATH": tmp_path / "instance",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "LOGIN_LINKS_PER_IP_PER_HOUR": 10_000,  # every member signs in from 127.0.0.1
        "AUTO_CLOSE_ROUNDS": False,  # the race test closes explicitly, at a moment it chooses
    })
    yield app
    db.dispose(app)


def _csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, html[:300]
    return match.group(1)


def _last_link(app, email: str) -> str:  # type: ignore[no-untyped-def]
    from fundcircle.notifications.models import OutgoingMail

    with app.app_context():
        body = db.session.scalar(sa.select(OutgoingMail.body_text).where(OutgoingMail.to_address == email)
                                 .order_by(OutgoingMail.id.desc()).limit(1))
    match = LINK_RE.search(body or "")
    assert match, body
    return match.group(1)


def sign_in(app, base: str, email: str) -> requests.Session:  # type: ignore[no-untyped-def]
    """The real sign-in flow over HTTP: request a link, open it, confirm it."""
    http = requests.Session()
    page = http.get(f"{base}/signin")
    sent = http.post(f"{base}/signin", data={"csrf_token": _csrf(page.text), "email": email, "next": "/"},
                     allow_redirects=False)
    assert sent.status_code == 302, sent.text[:300]
    path = _last_link(app, email)
    landing = http.get(base + path)
    done = http.post(f"{base}/signin/link", data={"csrf_token": _csrf(landing.text), "token": path.rsplit("/", 1)[1]},
                     allow_redirects=False)
    assert done.status_code == 302, done.text[:300]
    return http


def pass_second_factor(http: requests.Session, base: str) -> None:
    """A facilitator's first visit: enrol an authenticator (the page shows the secret)."""
    from fundcircle.auth import second_factor as sf

    page = http.get(f"{base}/account/second-factor")
    secret = TOTP_SECRET_RE.search(page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    done = http.post(f"{base}/account/second-factor", data={"csrf_token": _csrf(page.text),
                                                            "code": sf.totp(secret, utcnow())},
                     allow_redirects=False)
    assert done.status_code == 302, done.text[:300]


def _world(app, **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A round voting now in real time (the server runs on the real clock)."""
    now = utcnow()
    dates = dict(submissions_open_at=now - 20 * f.DAY, submissions_close_at=now - 10 * f.DAY,
                 deliberation_open_at=now - 9 * f.DAY, voting_open_at=now - f.DAY,
                 voting_close_at=now + 7 * f.DAY)
    dates.update(overrides.pop("dates", {}))
    with app.app_context():
        world = f.create_voting_round(db.session, proposals_at=now - 15 * f.DAY, **dates, **overrides)
        db.session.commit()
    return world


def _stored(app, round_id: int) -> list[tuple[int, int, dt.datetime]]:  # type: ignore[no-untyped-def]
    with app.app_context():
        return [tuple(r) for r in db.session.execute(
            sa.select(StoredBallot.voter_id, StoredBallot.times_cast, StoredBallot.updated_at)
            .where(StoredBallot.round_id == round_id))]


def test_http_double_submit_storm_stores_one_ballot_per_member(live_app) -> None:
    world = _world(live_app, members=STORM_MEMBERS, rule_id="quadratic", rule_params={"credits": "100"})
    p = world["proposal_ids"]
    path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
    with serve(live_app) as base:
        sessions = {email: sign_in(live_app, base, email) for email in world["members"]}
        try:
            tokens = {email: _csrf(http.get(base + path).text) for email, http in sessions.items()}
            jobs = [(email, n) for n in range(STORM_COPIES) for email in world["members"]]
            start = threading.Barrier(CLIENT_THREADS)

            def post(job: tuple[str, int]) -> int:
                email, copy = job
                if copy == 0:
                    try:
                        start.wait(timeout=5)  # the first wave leaves together
                    except threading.BrokenBarrierError:
                        pass
                data = {"csrf_token": tokens[email], f"p{p[0]}": "6", f"p{p[1]}": "8"}
                return sessions[email].post(base + path, data=data, timeout=60).status_code

            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
                statuses = Counter(pool.map(post, jobs))
            elapsed = time.perf_counter() - began
        finally:
            for http in sessions.values():
                http.close()
    stored = _stored(live_app, world["round_id"])
    print(f"\nHTTP storm ({live_app.config['DATABASE_URL'].split(':')[0]}): {STORM_MEMBERS} members × "
          f"{STORM_COPIES} concurrent copies, {CLIENT_THREADS} client threads: {elapsed:.2f} s, "
          f"statuses {dict(statuses)}, {len(stored)} ballots")
    assert statuses == Counter({200: STORM_MEMBERS * STORM_COPIES})  # every copy answered, none failed
    assert len(stored) == STORM_MEMBERS
    assert len({voter for voter, _n, _at in stored}) == STORM_MEMBERS
    assert sum(times for _v, times, _at in stored) == STORM_MEMBERS * STORM_COPIES


def test_http_close_racing_casts_admits_no_ballot_after_the_close(live_app) -> None:
    world = _world(live_app, members=RACE_MEMBERS, rule_id="approval-greedy")
    p = world["proposal_ids"]
    base_path = f"/c/{world['slug']}/r/{world['round_id']}"
    with serve(live_app) as base:
        sessions = {email: sign_in(live_app, base, email) for email in world["members"]}
        facilitator = sign_in(live_app, base, world["facilitator"])
        pass_second_factor(facilitator, base)
        try:
            tokens = {email: _csrf(http.get(base + base_path + "/ballot").text) for email, http in sessions.items()}
            close_token = _csrf(facilitator.get(base + base_path).text)
            # everyone is signed in with a form open: now let the close time arrive in 1.5 s
            closes_at = utcnow() + dt.timedelta(seconds=1.5)
            with live_app.app_context():
                db.session.get(ops.Round, world["round_id"]).voting_close_at = closes_at
                db.session.commit()
            # casts leave spread over [close - 1.0 s, close + 0.4 s] (requests take a while under
            # load, so most leave before the close); the closer fires at the close time
            spread = 1.4 / RACE_MEMBERS
            first_at = closes_at.timestamp() - 1.0

            def cast(n_email: tuple[int, str]) -> tuple[str, int]:
                n, email = n_email
                time.sleep(max(0.0, first_at + n * spread - time.time()))
                response = sessions[email].post(base + base_path + "/ballot", timeout=60,
                                                data={"csrf_token": tokens[email], f"p{p[n % 3]}": "y"})
                return email, response.status_code

            close_statuses: list[int] = []
            close_latency: list[float] = []

            def close() -> None:
                time.sleep(max(0.0, closes_at.timestamp() - time.time()))
                while True:
                    began = time.perf_counter()
                    response = facilitator.post(base + base_path + "/close", data={"csrf_token": close_token},
                                                allow_redirects=False, timeout=60)
                    close_latency.append(time.perf_counter() - began)
                    close_statuses.append(response.status_code)
                    if response.status_code != 409:  # 409: the server's clock is not past the close yet
                        return
                    time.sleep(0.01)

            closer = threading.Thread(target=close)
            closer.start()
            with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
                outcomes = list(pool.map(cast, enumerate(world["members"])))
            closer.join(timeout=60)
        finally:
            for http in [*sessions.values(), facilitator]:
                http.close()
    statuses = Counter(status for _e, status in outcomes)
    accepted = {email for email, status in outcomes if status == 200}
    with live_app.app_context():
        result = db.session.scalar(sa.select(RoundResult).where(RoundResult.round_id == world["round_id"]))
        tallied = (result.ballot_count, result.ballot_digest) if result is not None else None
        emails = dict(db.session.execute(sa.select(ops.User.id, ops.User.email)).all())
        recount = ops.tally_input(db.session, db.session.get(ops.Round, world["round_id"]))
    stored = _stored(live_app, world["round_id"])
    stored_emails = {emails[voter] for voter, _n, _at in stored}
    print(f"\nHTTP close race ({live_app.config['DATABASE_URL'].split(':')[0]}): {RACE_MEMBERS} members casting "
          f"around the close, statuses {dict(statuses)}, close answered {close_statuses[-1]} after "
          f"{len(close_statuses)} attempt(s), last close request {close_latency[-1] * 1000:.0f} ms; "
          f"{len(stored)} ballots stored, {tallied[0] if tallied else None} tallied")
    assert tallied is not None and close_statuses[-1] == 302
    assert set(statuses) <= {200, 409}, statuses  # accepted or refused as closed; never a 5xx
    assert statuses[200] >= 1 and statuses[409] >= 1, statuses  # the close really fell inside the storm
    assert stored_emails == accepted  # every accepted cast is stored, no refused one is
    assert tallied[0] == len(stored)  # ... and none was stored after the tally read
    assert recount.digest == tallied[1]
    assert all(at < closes_at for _v, _n, at in stored)
