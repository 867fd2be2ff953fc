"""Voter receipts: after the tally anyone with a receipt code sees the ballot as it was counted;
before, the page explains when it will work. Bad codes get a clear message, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from fundcircle.db import utcnow
from tests.support import factories as f
from tests.support.opendata import add_members, create_tallied_round


@pytest.fixture
def receipt_world(app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db
    from fundcircle.voting import operations as voting_ops

    now = utcnow()
    with app.app_context():
        s = db.session
        circle = f.create_circle(s, slug="receipt-circle")
        voters = add_members(s, circle, 5)
        # voter 0 votes, then changes the ballot: only the second code counts
        superseded: list[Any] = []
        round_, proposals, receipts = create_tallied_round(
            s, circle, voters, [[0], [0, 1], [1, 2], [2], [0, 2]], now=now, changes={0: [1]}, superseded=superseded)
        other, _, other_receipts = create_tallied_round(s, circle, voters, [[0]] * 5, now=now, title="Other round")
        voting = f.create_round(s, circle, title="Voting now", now=now - 30 * f.DAY,
                                submissions_open_at=now - 25 * f.DAY, submissions_close_at=now - 15 * f.DAY,
                                deliberation_open_at=now - 10 * f.DAY, voting_open_at=now - f.DAY,
                                voting_close_at=now + 6 * f.DAY)
        applicant = f.create_user(s, "someone@example.org", "Someone")
        live = f.create_proposal(s, voting, applicant, now=now - 24 * f.DAY)
        first = voting_ops.cast_ballot(s, voting, voters[0], [live.id], now)
        s.commit()
        return {"slug": circle.slug, "round": round_.id, "other": other.id, "voting": voting.id,
                "titles": [p.title for p in proposals], "codes": [r.code for r in receipts],
                "receipt_ids": [r.receipt_id for r in receipts], "other_code": other_receipts[0].code,
                "live_code": first.code, "superseded_code": superseded[0].code}


def _check(client, w: dict[str, Any], code: str, round_key: str = "round"):  # type: ignore[no-untyped-def]
    path = f"/c/{w['slug']}/r/{w[round_key]}/receipt"
    return client.post(path, {"code": code})


def test_a_receipt_shows_the_ballot_as_counted(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    w = receipt_world
    response = _check(client, w, w["codes"][1])
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your ballot was counted" in page
    assert w["receipt_ids"][1] in page
    assert w["titles"][0] in page and w["titles"][1] in page and w["titles"][2] not in page
    assert page.count("approved") == 2
    assert w["codes"][1] not in page, "the code itself is not echoed back into the page"


def test_codes_are_read_forgivingly(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    code = receipt_world["codes"][3]
    for variant in (code.lower(), code.replace("-", ""), f"  {code.replace('-', ' ')}  "):
        assert "Your ballot was counted" in _check(client, receipt_world, variant).get_data(as_text=True)


@pytest.mark.parametrize("code", ["AAAA-BBBB-CCCC-DDDD-EEEE", "X"])
def test_unknown_codes_get_a_clear_message(client, receipt_world, code: str) -> None:  # type: ignore[no-untyped-def]
    response = _check(client, receipt_world, code)
    assert response.status_code == 200
    assert "No ballot of this round has that receipt code" in response.get_data(as_text=True)


def test_only_the_code_of_the_last_change_counts(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    w = receipt_world
    old = _check(client, w, w["superseded_code"]).get_data(as_text=True)
    assert "No ballot of this round has that receipt code" in old and "only the code from your last change" in old
    new = _check(client, w, w["codes"][0]).get_data(as_text=True)
    assert "Your ballot was counted" in new and w["titles"][1] in new and w["titles"][0] not in new


def test_a_code_from_another_round_is_unknown_here(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    page = _check(client, receipt_world, receipt_world["other_code"]).get_data(as_text=True)
    assert "No ballot of this round has that receipt code" in page
    page = _check(client, receipt_world, receipt_world["other_code"], "other").get_data(as_text=True)
    assert "Your ballot was counted" in page


@pytest.mark.parametrize("code", ["", "<script>alert(1)</script>", "A" * 80, "ABCD\x00EFGH", "ABCD;DROP"])
def test_malformed_input_is_a_form_error(client, receipt_world, code: str) -> None:  # type: ignore[no-untyped-def]
    response = _check(client, receipt_world, code)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'class="errors"' in page and "<script>alert(1)</script>" not in page


def test_before_the_tally_the_page_explains(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    page = client.text(f"/c/{receipt_world['slug']}/r/{receipt_world['voting']}/receipt")
    assert "After voting closes" in page and "<form" not in page.split("</header>", 1)[1]
    response = client.post_raw(f"/c/{receipt_world['slug']}/r/{receipt_world['voting']}/receipt",
                               {"code": receipt_world["live_code"]})
    assert response.status_code in (400, 409)  # no form to post to (and no CSRF token): refused


def test_the_receipt_page_needs_the_csrf_token(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    response = client.post_raw(f"/c/{receipt_world['slug']}/r/{receipt_world['round']}/receipt",
                               {"code": receipt_world["codes"][0]})
    assert response.status_code in (400, 422)
    assert "Your ballot was counted" not in response.get_data(as_text=True)


def test_unknown_rounds_are_404(client, receipt_world) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"/c/{receipt_world['slug']}/r/999999/receipt").status_code == 404
    assert client.get(f"/c/no-circle/r/{receipt_world['round']}/receipt").status_code == 404


@pytest.mark.parametrize("rule_id, ballot, expected", [
    ("consent", {0: "consent", 1: ("objection", "Too expensive for what it does.")},
     ["consent", "objection: Too expensive for what it does."]),
    ("quadratic", {0: 3, 2: 1}, ["votes: 3", "votes: 1"]),
    ("borda", [2, 0], ["ranked 1", "ranked 2"]),
])
def test_receipts_show_every_ballot_kind(client, app, rule_id: str, ballot: Any, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db

    now = utcnow()
    with app.app_context():
        circle = f.create_circle(db.session, slug=f"kind-{rule_id}")
        voters = add_members(db.session, circle, 5)
        _, _, receipts = create_tallied_round(db.session, circle, voters, [ballot] * 5, now=now, rule_id=rule_id)
        db.session.commit()
        path = f"/c/{circle.slug}/r/{receipts[0].round_id}/receipt"
    page = client.post(path, {"code": receipts[2].code}).get_data(as_text=True)
    assert "Your ballot was counted" in page
    positions = [page.index(text) for text in expected]
    assert positions == sorted(positions), "choices appear in ballot order"


def test_a_receipt_check_does_not_wait_for_the_write_lock(client, receipt_world, database_url) -> None:  # type: ignore[no-untyped-def]
    """SQLite: checking a receipt only reads, so it answers while another transaction holds the
    database's write lock (a cast or a ledger post in progress)."""
    import sqlite3
    import time

    import sqlalchemy as sa

    if sa.make_url(database_url).get_backend_name() != "sqlite":
        pytest.skip("SQLite's single write lock")
    path = f"/c/{receipt_world['slug']}/r/{receipt_world['round']}/receipt"
    page = client.get(path)  # CSRF token first, before the lock is held
    from tests.support.web import csrf_from

    token = csrf_from(page.get_data(as_text=True))
    writer = sqlite3.connect(sa.make_url(database_url).database, timeout=0.1)
    try:
        writer.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        response = client.post_raw(path, {"csrf_token": token, "code": receipt_world["codes"][2]})
        elapsed = time.monotonic() - started
    finally:
        writer.rollback()
        writer.close()
    assert response.status_code == 200 and "Your ballot was counted" in response.get_data(as_text=True)
    assert elapsed < 2
