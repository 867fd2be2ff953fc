"""The read-only JSON API (/api/v1): what it lists, what it hides, pagination, filters, errors,
and every response checked against the served OpenAPI document."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from fundcircle.db import utcnow
from tests.support import factories as f
from tests.support.opendata import add_members, create_tallied_round


@pytest.fixture
def api_world(app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A circle with a tallied round (7 ballots), an open round, a draft round and a draft proposal."""
    from fundcircle.extensions import db

    now = utcnow()
    with app.app_context():
        s = db.session
        circle = f.create_circle(s, slug="api-circle")
        voters = add_members(s, circle, 7)
        tallied, proposals, receipts = create_tallied_round(
            s, circle, voters, [[0, 1], [0], [1, 2], [0, 2], [1], [0, 1], [2]], now=now)
        open_round = f.create_round(s, circle, title="Open call", now=now - 2 * f.DAY,
                                    submissions_open_at=now - f.DAY, submissions_close_at=now + 9 * f.DAY,
                                    deliberation_open_at=now + 10 * f.DAY, voting_open_at=now + 12 * f.DAY,
                                    voting_close_at=now + 19 * f.DAY)
        draft = f.create_proposal(s, open_round, voters[0], submit=False, title="Secret draft idea", now=now)
        hidden = f.create_round(s, circle, publish=False, title="Unpublished round", now=now)
        s.commit()
        return {"slug": circle.slug, "tallied": tallied.id, "open": open_round.id, "hidden": hidden.id,
                "draft": draft.id, "proposals": [p.id for p in proposals],
                "receipt_ids": [r.receipt_id for r in receipts]}


@pytest.fixture
def spec(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def check(spec: dict[str, Any], response: Any, schema: str, status: int = 200) -> Any:
    """The response has this status, is JSON, and matches the named component of the document."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{schema}",
                                             "components": spec["components"]})
    errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors
    return body


def test_index_and_document(client, spec) -> None:  # type: ignore[no-untyped-def]
    body = check(spec, client.get("/api/v1"), "Index")
    assert body["links"]["openapi"] == "/api/v1/openapi.json"
    assert spec["openapi"].startswith("3.")
    # every route the app serves under /api/v1 is documented, and nothing else
    documented = {p for p in spec["paths"]}
    served = {r.rule.replace("<slug>", "{slug}").replace("<int:round_id>", "{round_id}")
              .replace("<int:proposal_id>", "{proposal_id}")
              for r in client.app.url_map.iter_rules() if r.rule.startswith("/api/v1")} - {"/api/v1/openapi.json"}
    assert documented == served


def test_circle_round_proposals_result(client, spec, api_world) -> None:  # type: ignore[no-untyped-def]
    slug = api_world["slug"]
    circles = check(spec, client.get("/api/v1/circles"), "CircleList")
    assert [c["slug"] for c in circles["data"]] == [slug]
    circle = check(spec, client.get(f"/api/v1/circles/{slug}"), "Circle")
    assert circle["member_count"] == 8  # the facilitator and 7 voters

    rounds = check(spec, client.get(f"/api/v1/circles/{slug}/rounds"), "RoundList")
    ids = [r["id"] for r in rounds["data"]]
    assert api_world["tallied"] in ids and api_world["open"] in ids
    assert api_world["hidden"] not in ids, "an unpublished round is not public"
    by_id = {r["id"]: r for r in rounds["data"]}
    assert by_id[api_world["tallied"]]["tallied"] is True and by_id[api_world["tallied"]]["phase"] == "closed"
    assert by_id[api_world["open"]]["tallied"] is False and by_id[api_world["open"]]["phase"] == "call_open"
    check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['hidden']}"), "Error", 404)

    proposals = check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['tallied']}/proposals"),
                      "ProposalList")
    assert [p["id"] for p in proposals["data"]] == api_world["proposals"]
    first = check(spec, client.get(proposals["data"][0]["links"]["self"]), "Proposal")
    assert first["payee"] == {"kind": "opencollective", "open_collective_slug": "corner-fridge"}
    assert first["applicant_name"] == "Ada Applicant"
    open_props = check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['open']}/proposals"),
                       "ProposalList")
    assert open_props["data"] == [], "drafts are never listed"
    check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['open']}/proposals/{api_world['draft']}"),
          "Error", 404)

    result = check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['tallied']}/result"), "Result")
    assert result["ballot_count"] == 7 and result["rule"]["id"] == "approval-greedy"
    funded = [p["proposal_id"] for p in result["proposals"] if p["funded"]]
    assert funded and all(p["amount_awarded_minor"] > 0 for p in result["proposals"] if p["funded"])
    early = check(spec, client.get(f"/api/v1/circles/{slug}/rounds/{api_world['open']}/result"), "Error", 409)
    assert "has not been tallied yet" in early["message"]


def test_pagination_links_walk_every_page(client, spec, app) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db

    with app.app_context():
        for n in range(7):
            f.create_circle(db.session, slug=f"circle-{n:02d}", facilitator_email=f"fac{n}@example.org")
        db.session.commit()
    seen: list[str] = []
    url: str | None = "/api/v1/circles?per_page=3"
    pages = 0
    while url:
        body = check(spec, client.get(url), "CircleList")
        assert body["meta"]["total"] == 7 and body["meta"]["pages"] == 3
        seen += [c["slug"] for c in body["data"]]
        url = body["links"]["next"]
        pages += 1
    assert pages == 3 and seen == sorted(seen) and len(set(seen)) == 7
    last = check(spec, client.get("/api/v1/circles?per_page=3&page=3"), "CircleList")
    assert last["links"]["prev"] == "/api/v1/circles?page=2&per_page=3" and last["links"]["next"] is None
    beyond = check(spec, client.get("/api/v1/circles?per_page=3&page=9"), "CircleList")
    assert beyond["data"] == []


@pytest.mark.parametrize("query, field", [
    ("per_page=0", "per_page"), ("per_page=101", "per_page"), ("page=abc", "page"), ("page=-1", "page"),
    ("page=99999999999999999999", "page"),
])
def test_bad_paging_is_a_422_naming_the_parameter(client, spec, query: str, field: str) -> None:  # type: ignore[no-untyped-def]
    body = check(spec, client.get(f"/api/v1/circles?{query}"), "Error", 422)
    assert field in body["fields"] and field in body["message"]


def test_ledger_filters_and_head(client, spec, app, api_world) -> None:  # type: ignore[no-untyped-def]
    from fundcircle import ledger
    from fundcircle.circles.models import Circle
    from fundcircle.extensions import db
    from fundcircle.rounds.models import Round
    from fundcircle.voting.operations import earmark_awards

    now = utcnow()
    with app.app_context():
        circle = db.session.query(Circle).filter_by(slug=api_world["slug"]).one()
        ledger.record_contribution(db.session, circle, gross_minor=5_000_00, fee_minor=1_50, now=now,
                                   manual_reference="bank-2026-001", memo="Treasurer note: from a donor")
        earmark_awards(db.session, db.session.get(Round, api_world["tallied"]), now=now)
        db.session.commit()
    slug = api_world["slug"]
    page = check(spec, client.get(f"/api/v1/circles/{slug}/ledger"), "LedgerPage")
    kinds = [t["kind"] for t in page["data"]]
    assert kinds[0] == "contribution" and "award" in kinds
    seqs = [t["seq"] for t in page["data"]]
    assert seqs == sorted(seqs)
    pot = [p for p in page["data"][0]["postings"] if p["account"] == "pot:available"][0]
    assert pot["amount_minor"] == -5_000_00 and pot["balance_after_minor"] == 5_000_00
    assert page["chain_head"]["seq"] == seqs[-1]
    text = client.get(f"/api/v1/circles/{slug}/ledger").get_data(as_text=True)
    assert "Treasurer note" not in text and "bank-2026-001" not in text, "memos and manual references are private"

    awards = check(spec, client.get(f"/api/v1/circles/{slug}/ledger?kind=award"), "LedgerPage")
    assert awards["data"] and {t["kind"] for t in awards["data"]} == {"award"}
    by_round = check(spec, client.get(f"/api/v1/circles/{slug}/ledger?round={api_world['tallied']}"), "LedgerPage")
    assert {t["kind"] for t in by_round["data"]} == {"award"}
    assert all(p["round_id"] in (None, api_world["tallied"]) for t in by_round["data"] for p in t["postings"])
    none = check(spec, client.get(f"/api/v1/circles/{slug}/ledger?from=2999-01-01"), "LedgerPage")
    assert none["data"] == [] and none["meta"]["total"] == 0
    paged = check(spec, client.get(f"/api/v1/circles/{slug}/ledger?per_page=1&kind=award"), "LedgerPage")
    assert paged["links"]["next"] is None or "kind=award" in paged["links"]["next"]
    empty = check(spec, client.get(f"/api/v1/circles/{slug}/ledger?from=2026-05-01&to=2026-04-01"), "LedgerPage")
    assert empty["data"] == [], "an empty date range is a valid question with no answer"
    for bad in ("kind=theft", "from=yesterday", "from=2026-02-30", "round=0"):
        check(spec, client.get(f"/api/v1/circles/{slug}/ledger?{bad}"), "Error", 422)
    head = check(spec, client.get("/api/v1/chain/head"), "ChainHeadExplained")
    assert head["seq"] >= seqs[-1] and len(head["hash"]) == 64


@pytest.mark.parametrize("path", [
    "/api/v1/circles/nope", "/api/v1/circles/NOPE%00", "/api/v1/circles/api-circle/rounds/99999999999999999999",
    "/api/v1/circles/api-circle/rounds/2147483648/proposals/1", "/api/v1/nothing-here",
])
def test_unknown_things_are_json_404s(client, spec, api_world, path: str) -> None:  # type: ignore[no-untyped-def]
    body = check(spec, client.get(path), "Error", 404)
    assert body["status"] == 404 and body["message"]


def test_the_api_is_read_only(client, api_world) -> None:  # type: ignore[no-untyped-def]
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client.http, method)(f"/api/v1/circles/{api_world['slug']}")
        assert response.status_code == 405
        assert response.get_json()["status"] == 405


def test_api_answers_revalidate_with_etags(client, api_world) -> None:  # type: ignore[no-untyped-def]
    path = f"/api/v1/circles/{api_world['slug']}/rounds/{api_world['tallied']}/result"
    first = client.get(path)
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert "ETag" not in client.get("/api/v1/circles/nope").headers, "errors are not cached"
