"""Public pages on the demo data: circle home, round page and the public ledger (filters,
pagination, bad parameters), caching validators (ETag/Last-Modified, 304) and that nothing
signed-in is ever cached publicly."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from fundcircle import ledger
from fundcircle.circles.models import Circle
from fundcircle.db import utcnow
from fundcircle.demo import seed_demo
from fundcircle.rounds.models import Round

SLUG = "riverside-commons"

#: a ledger row's sequence number (cells carry role and data-label attributes for the phone layout)
ROW_SEQ = r"<tr[^>]*>\s*<td [^>]*class=\"num\"[^>]*>(\d+)</td>"


def _plain(html: str) -> str:
    html = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return text.replace("&amp;", "&").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">")


@pytest.fixture
def demo(app, session):  # type: ignore[no-untyped-def]
    circle = seed_demo(session, utcnow())
    session.commit()
    rounds = {r.title.split(":")[0]: r for r in session.scalars(select(Round).where(Round.circle_id == circle.id))}
    # requests share this app-context session: end its read transaction so they see fresh data
    session.commit()
    return {"circle": circle, "rounds": rounds}


def test_circle_home_shows_purpose_members_pot_rounds_and_chain_head(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    circle: Circle = demo["circle"]
    balances = ledger.circle_balances(session, circle.id, circle.currency)
    head = ledger.head(session)
    members = len(circle.memberships)
    text = _plain(client.text(f"/c/{SLUG}"))
    assert "Riverside Commons Fund" in text and "pool money every season" in text
    assert f"{members} members" in text
    pot = f"{balances.pot_available_minor // 100:,}.{balances.pot_available_minor % 100:02d} EUR"
    assert f"In the pot, not yet awarded {pot}" in text
    assert balances.pot_available_minor > 0 and balances.earmarked_minor > 0
    for r in demo["rounds"].values():
        assert r.title in text
    assert f"chain head #{head.seq} {head.hash_hex[:16]}" in text
    assert f'href="/c/{SLUG}/ledger"' in client.text(f"/c/{SLUG}")


def test_round_page_shows_call_phase_dates_public_proposal_fields_and_rule(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    spring = demo["rounds"]["Spring 2027"]
    html = client.text(f"/c/{SLUG}/r/{spring.id}")
    text = _plain(html)
    assert "Call open" in text and "better place to live" in text
    assert "Voting:" in text and "Call for proposals:" in text
    assert "Quadratic voting." in text and "voice credits" in text
    for p in spring.proposals:
        if p.status == "submitted":
            assert p.title in text and p.summary[:40] in text
        if p.payee_email:
            assert p.payee_email not in html  # a private field never reaches a public page


def test_ledger_lists_every_transaction_with_running_balances_and_the_head(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    circle: Circle = demo["circle"]
    balances = ledger.circle_balances(session, circle.id, circle.currency)
    head = ledger.head(session)
    response = client.get(f"/c/{SLUG}/ledger?per_page=100")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = _plain(html)
    rows = re.findall(ROW_SEQ, html)
    assert [int(r) for r in rows] == list(range(head.seq, 0, -1))  # newest first, all of them
    # the newest row's running balances are today's balances
    first = html[html.index("<tbody"):].split("</tr>")[0]
    cells = re.findall(r'<td [^>]*class="num"[^>]*>([^<]+)</td>', first)
    assert cells[-2] == f"{balances.pot_available_minor / 100:,.2f}"
    assert cells[-1] == f"{balances.earmarked_minor / 100:,.2f}"
    assert f"Transaction #{head.seq} , hash {head.hash_hex}" in text
    assert "fundcircle ledger verify" in text
    # awards of the closed round, as the treasurer's reconciliation sees them
    assert "Awards: decided → paid" in text and "Paid (matched)" in text and "Open Collective expense" in text
    # memos are the treasurer's notes, never published
    assert "bank-statement" not in html and "card contribution via Stripe" not in html


def test_ledger_filters_by_kind_round_and_dates(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    autumn = demo["rounds"]["Autumn 2026"]
    html = client.text(f"/c/{SLUG}/ledger?kind=award")
    kinds = re.findall(r"<td[^>]*><strong>([^<]+)</strong>", html)
    assert kinds and set(kinds) == {"Award"}
    assert "matching the filters" in html
    by_round = client.text(f"/c/{SLUG}/ledger?round={autumn.id}")
    round_kinds = set(re.findall(r"<td[^>]*><strong>([^<]+)</strong>", by_round))
    assert "Award" in round_kinds and round_kinds <= {"Award", "Payout", "Reversal"}
    assert f'<option value="{autumn.id}" selected>' in by_round
    today = utcnow().date()
    recent = client.text(f"/c/{SLUG}/ledger?from={(today - dt.timedelta(days=35)).isoformat()}&to={today}")
    dates = re.findall(r"<td[^>]*>(\d{1,2} \w{3} \d{4})</td>", recent)
    assert dates and all(dt.datetime.strptime(d, "%d %b %Y").date() >= today - dt.timedelta(days=35) for d in dates)
    everything = re.findall(r"<td[^>]*>(\d{1,2} \w{3} \d{4})</td>", client.text(f"/c/{SLUG}/ledger"))
    assert len(dates) < len(everything)
    none = client.text(f"/c/{SLUG}/ledger?from=2000-01-01&to=2000-01-02")
    assert "No transaction matches these filters." in none


def test_ledger_paginates_and_clamps_a_page_past_the_end(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    head = ledger.head(session)
    first = client.text(f"/c/{SLUG}/ledger?per_page=5")
    second = client.text(f"/c/{SLUG}/ledger?per_page=5&page=2")
    seqs1 = [int(s) for s in re.findall(ROW_SEQ, first)]
    seqs2 = [int(s) for s in re.findall(ROW_SEQ, second)]
    assert seqs1 == list(range(head.seq, head.seq - 5, -1)) and seqs2 and max(seqs2) == head.seq - 5
    assert 'rel="next"' in first and "page=2" in first and "per_page=5" in first
    assert 'rel="prev"' in second
    pages = -(-head.seq // 5)
    past = client.get(f"/c/{SLUG}/ledger?per_page=5&page=999")
    assert past.status_code == 200
    assert f"There is no page 999; showing the last page, {pages}." in past.get_data(as_text=True)


@pytest.mark.parametrize("query, reason", [
    ("kind=bribe", "kind: 'bribe' is not one of"),
    ("round=abc", "round: 'abc' is not a round of this circle."),
    ("round=99999", "round: '99999' is not a round of this circle."),
    ("from=2026-13-40", "from: '2026-13-40' is not a date like 2026-11-21."),
    ("to=yesterday", "to: 'yesterday' is not a date like 2026-11-21."),
    ("from=2026-11-02&to=2026-11-01", "from: the start date is after the end date."),
    ("page=0", "page: '0' is not a whole number"),
    ("page=-3", "page: '-3' is not a whole number"),
    ("page=1e9", "page: '1e9' is not a whole number"),
    ("per_page=100000", "per_page: '100000' is not a whole number between 5 and 100."),
    ("page=%00", "page: '\\x00' is not a whole number"),
    # str.isdigit() accepts these, int() does not
    ("round=%C2%B2", "round: '²' is not a round of this circle."),
    ("page=%C2%B2", "page: '²' is not a whole number"),
    ("per_page=%C2%B2", "per_page: '²' is not a whole number between 5 and 100."),
])
def test_bad_ledger_parameters_are_400_with_a_reason(client, demo, query: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(f"/c/{SLUG}/ledger?{query}")
    assert response.status_code == 400
    body = response.get_data(as_text=True).replace("&#39;", "'")
    assert reason in body, body[body.find("could not be used"):][:400]
    assert "Clear filters" in body
    assert "public" not in (response.headers.get("Cache-Control") or "")


def test_unknown_parameters_are_ignored(client, demo) -> None:  # type: ignore[no-untyped-def]
    assert client.get(f"/c/{SLUG}/ledger?utm_source=newsletter").status_code == 200


@pytest.mark.parametrize("page", ["", "/ledger", "/r/{spring}", "/r/{autumn}/results"])
def test_public_pages_are_cacheable_with_validators_and_answer_304(client, session, demo, page: str) -> None:  # type: ignore[no-untyped-def]
    path = f"/c/{SLUG}" + page.format(spring=demo["rounds"]["Spring 2027"].id, autumn=demo["rounds"]["Autumn 2026"].id)
    response = client.get(path)
    assert response.status_code == 200
    etag = response.headers["ETag"]
    assert etag.startswith('W/"')
    assert response.headers["Last-Modified"]
    if "Set-Cookie" in response.headers:
        # a page that sets a cookie (e.g. a form's CSRF token) must never be shared
        assert page == "/r/{spring}" and not response.cache_control.public and response.cache_control.no_store
    else:
        assert response.cache_control.public and response.cache_control.max_age == 60
    assert "Cookie" in response.headers["Vary"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag
    since = client.get(path, headers={"If-Modified-Since": response.headers["Last-Modified"]})
    assert since.status_code == 304
    assert client.get(path, headers={"If-None-Match": 'W/"something-else"'}).status_code == 200
    # If-None-Match wins over If-Modified-Since
    assert client.get(path, headers={"If-None-Match": 'W/"x"', "If-Modified-Since": response.headers["Last-Modified"]}
                      ).status_code == 200


def test_etag_changes_when_the_ledger_changes(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    circle = demo["circle"]
    before = client.get(f"/c/{SLUG}/ledger")
    ledger.record_contribution(session, circle, gross_minor=12_34, manual_reference="test-etag-change",
                               now=utcnow())
    session.commit()
    after = client.get(f"/c/{SLUG}/ledger", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert "12.34" in after.get_data(as_text=True)
    home = client.get(f"/c/{SLUG}", headers={"If-None-Match": before.headers["ETag"]})
    assert home.status_code == 200


def test_signed_in_pages_are_never_cached_publicly(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    anonymous = client.get(f"/c/{SLUG}")
    etag = anonymous.headers["ETag"]
    client.sign_in("amara@riverside.example")
    for path in (f"/c/{SLUG}", f"/c/{SLUG}/ledger", f"/c/{SLUG}/r/{demo['rounds']['Spring 2027'].id}"):
        response = client.get(path, headers={"If-None-Match": etag})
        assert response.status_code == 200  # never a 304 built from the anonymous validators
        assert response.cache_control.no_store and not response.cache_control.public
        assert "ETag" not in response.headers
        assert "Cookie" in response.headers["Vary"]
    # the signed-in page carries the member's own controls, which must not reach a shared cache
    assert "Sign out" in client.text(f"/c/{SLUG}")


def test_anonymous_renders_are_shared_until_the_data_changes(app, client, session, demo) -> None:  # type: ignore[no-untyped-def]
    from flask import template_rendered

    rendered: list[str] = []

    def record(_sender, template, context, **_extra):  # type: ignore[no-untyped-def]
        rendered.append(template.name)

    template_rendered.connect(record, app)
    try:
        first = client.get(f"/c/{SLUG}/ledger")
        second = client.get(f"/c/{SLUG}/ledger")
        assert rendered.count("transparency/ledger.html") == 1  # the second came from the page cache
        assert second.get_data() == first.get_data() and second.headers["ETag"] == first.headers["ETag"]
        assert second.cache_control.public
        ledger.record_contribution(session, demo["circle"], gross_minor=7_00, manual_reference="page-cache-test",
                                   now=utcnow())
        session.commit()
        third = client.get(f"/c/{SLUG}/ledger")
        assert rendered.count("transparency/ledger.html") == 2 and third.headers["ETag"] != first.headers["ETag"]
        # a signed-in visitor never gets a shared render
        other = type(client)(app)
        other.sign_in("amara@riverside.example")
        signed_in = other.get(f"/c/{SLUG}/ledger")
        assert rendered.count("transparency/ledger.html") == 3 and "Sign out" in signed_in.get_data(as_text=True)
    finally:
        template_rendered.disconnect(record, app)


def test_the_state_memo_delays_a_change_by_at_most_its_ttl(app, client, session, demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.transparency import caching

    clock = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: clock[0])
    app.config["PUBLIC_STATE_TTL_S"] = 1.0
    app.extensions.pop("fundcircle.statememo", None)
    first = client.get(f"/c/{SLUG}/ledger")
    ledger.record_contribution(session, demo["circle"], gross_minor=9_00, manual_reference="memo-test", now=utcnow())
    session.commit()
    clock[0] += 0.9
    within = client.get(f"/c/{SLUG}/ledger")
    assert within.headers["ETag"] == first.headers["ETag"]  # inside the TTL: the memoised state
    clock[0] += 0.2
    after = client.get(f"/c/{SLUG}/ledger")
    assert after.headers["ETag"] != first.headers["ETag"] and "9.00" in after.get_data(as_text=True)


def test_results_page_shows_the_demo_tally_as_stored(client, session, demo) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.ledger.money import format_money
    from fundcircle.proposals.models import Proposal
    from fundcircle.voting.models import RoundResult

    autumn = demo["rounds"]["Autumn 2026"]
    text = _plain(client.text(f"/c/{SLUG}/r/{autumn.id}/results"))  # the first request tallies it if due
    session.expire_all()
    result = session.scalar(select(RoundResult).where(RoundResult.round_id == autumn.id))
    assert result is not None and result.ballot_count > 0
    funded = result.outcome["funded"]
    funded_section = text[text.index(f"Funded ({len(funded)})"):text.index("Not funded (")]
    positions = []
    for pid, amount_minor in funded.items():
        title = session.get(Proposal, int(pid)).title
        assert title in funded_section and format_money(amount_minor, "EUR") in funded_section
        positions.append(funded_section.index(title))
    assert positions == sorted(positions)  # in the rule's selection order
    used = sum(funded.values())
    assert f"Awarded {format_money(used, 'EUR')}" in text
    assert f"({result.ballot_count} ballots from {result.member_count} members)" in text
    assert result.ballot_digest in text and result.rule_id in text
    for step in result.trace:
        if step.get("proposal_id") and step["proposal_id"] in funded and step["action"] == "fund":
            assert step["message"] in funded_section


def test_a_nul_in_the_circle_address_is_a_404_on_every_backend(client, demo) -> None:  # type: ignore[no-untyped-def]
    # PostgreSQL refuses a NUL in a query parameter; the lookup must answer 404 before asking it
    round_id = demo["rounds"]["Winter 2026/27"].id
    paths = ("/c/a%00b", "/c/a%00b/ledger", f"/c/a%00b/r/{round_id}", f"/c/a%00b/r/{round_id}/results")
    for path in paths:
        assert client.get(path).status_code == 404, path
    client.sign_in("amara@riverside.example")
    for path in (*paths, f"/c/a%00b/r/{round_id}/ballot", f"/c/a%00b/r/{round_id}/my-conflicts",
                 f"/c/a%00b/r/{round_id}/conflicts"):
        assert client.get(path).status_code == 404, path
