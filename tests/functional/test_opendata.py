"""Open-data pages and downloads: nothing before the tally, everything documented after it,
ballots withheld for tiny rounds, cacheable files, the ledger without private notes."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest

from fundcircle.db import utcnow
from fundcircle.transparency import opendata
from tests.support import factories as f
from tests.support.opendata import add_members, create_tallied_round

BALLOTS = [[0, 1], [0], [1, 2], [0, 2], [1], [0, 1], [2]]


@pytest.fixture
def data_world(app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from fundcircle import ledger
    from fundcircle.extensions import db

    now = utcnow()
    with app.app_context():
        s = db.session
        circle = f.create_circle(s, slug="data-circle")
        voters = add_members(s, circle, 7)
        ledger.record_contribution(s, circle, gross_minor=4_000_00, fee_minor=2_00, now=now - 60 * f.DAY,
                                   manual_reference="statement-line-77", memo="Treasurer: gift from Mrs Example")
        tallied, proposals, receipts = create_tallied_round(s, circle, voters, BALLOTS, now=now)
        tiny, _, _ = create_tallied_round(s, circle, voters[:4], [[0], [1], [0, 1], [2]], now=now, title="Tiny round",
                                          proposals=[dict(title="Small A", amount_requested_minor=300_00),
                                                     dict(title="Small B", amount_requested_minor=300_00),
                                                     dict(title="Small C", amount_requested_minor=300_00)])
        consent, _, _ = create_tallied_round(s, circle, voters[:5], [{0: "consent", 1: "consent"}] * 5, now=now,
                                             rule_id="consent", title="Consent round")
        upcoming = f.create_round(s, circle, title="Next call", now=now - 2 * f.DAY,
                                  submissions_open_at=now - f.DAY, submissions_close_at=now + 9 * f.DAY,
                                  deliberation_open_at=now + 10 * f.DAY, voting_open_at=now + 12 * f.DAY,
                                  voting_close_at=now + 19 * f.DAY)
        hidden = f.create_round(s, circle, publish=False, title="Unpublished", now=now)
        s.commit()
        return {"slug": circle.slug, "tallied": tallied.id, "tiny": tiny.id, "consent": consent.id,
                "upcoming": upcoming.id, "hidden": hidden.id, "proposals": [p.id for p in proposals],
                "receipt_ids": sorted(r.receipt_id for r in receipts)}


def _url(w: dict[str, Any], round_key: str, name: str = "") -> str:
    base = f"/c/{w['slug']}/r/{w[round_key]}/data"
    return f"{base}/{name}" if name else base


def test_schema_page_documents_every_export(client) -> None:  # type: ignore[no-untyped-def]
    page = client.text("/data/schema")
    for export in opendata.EXPORTS:
        assert f'id="{export.key.replace(".", "-")}"' in page
        for field in export.fields:
            assert field.name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in page
    assert "consent" in page and "fewer than 5 ballots" in page


def _documented(export_key: str) -> set[str]:
    export = next(e for e in opendata.EXPORTS if e.key == export_key)
    names: set[str] = set()
    for field in export.fields:
        for part in field.name.split(","):
            names.add(part.strip())
    return names


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Dotted field paths of a JSON document; list items as name[]."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(sub, dict) and key not in ("params", "ballot"):
                out |= _paths(sub, path)
            elif isinstance(sub, list) and sub and isinstance(sub[0], dict):
                out |= _paths(sub[0], path + "[]")
            else:
                out.add(path)
    return out


def _covered(path: str, documented: set[str]) -> bool:
    if path in documented or any(d.startswith(path + "[]") for d in documented):  # an empty list
        return True
    last = path.rsplit(".", 1)[-1]
    # "transactions[].postings[].round_id, …proposal_id" and "balances.*_minor" style shorthands
    return any(d.endswith("…" + last) or (d.endswith("*_minor") and path.startswith(d[:-7]) and
                                          path.endswith("_minor")) for d in documented)


def test_nothing_before_the_tally_and_nothing_of_unpublished_rounds(client, data_world) -> None:  # type: ignore[no-untyped-def]
    page = client.get(_url(data_world, "upcoming"))
    assert page.status_code == 200
    assert "Not published yet" in page.get_data(as_text=True)
    for name in ("results.json", "results.csv", "ballots.json", "ballots.csv", "ballots.pb"):
        response = client.get(_url(data_world, "upcoming", name), headers={"Accept": "application/json"})
        assert response.status_code == 409, name
        assert "has not been tallied yet" in response.get_json()["message"]
        assert client.get(_url(data_world, "hidden", name)).status_code == 404
    assert client.get(_url(data_world, "hidden")).status_code == 404
    assert client.get(_url(data_world, "tallied", "secrets.txt")).status_code == 404


def test_tallied_round_downloads(client, data_world) -> None:  # type: ignore[no-untyped-def]
    page = client.text(_url(data_world, "tallied"))
    links = set(re.findall(r'href="([^"]+/data/[^"]+)"', page))
    assert {_url(data_world, "tallied", n) for n in opendata_views_files()} <= links

    results = client.get(_url(data_world, "tallied", "results.json"))
    assert results.status_code == 200 and results.mimetype == "application/json"
    assert 'filename="round-' in results.headers["Content-Disposition"]
    doc = results.get_json()
    undocumented = {p for p in _paths(doc) if not _covered(p, _documented("results.json"))}
    assert not undocumented, undocumented
    assert doc["ballot_count"] == len(BALLOTS) and doc["ballots_published"] is True

    rows = list(csv.DictReader(io.StringIO(client.text(_url(data_world, "tallied", "results.csv")))))
    assert [int(r["proposal_id"]) for r in rows] == data_world["proposals"]
    assert set(rows[0]) == _documented("results.csv")
    assert sum(int(r["amount_awarded_minor"]) for r in rows) == doc["funded_total_minor"]

    ballots = client.get(_url(data_world, "tallied", "ballots.json")).get_json()
    assert all(_covered(p, _documented("ballots.json")) for p in _paths(ballots)), _paths(ballots)
    assert sorted(b["receipt_id"] for b in ballots["ballots"]) == data_world["receipt_ids"]
    # anyone can recompute the ballot digest from the list
    from fundcircle.voting.tiebreak import ballot_digest

    assert ballot_digest([frozenset(b["ballot"]) for b in ballots["ballots"]]) == doc["ballot_digest"]
    listed = list(csv.DictReader(io.StringIO(client.text(_url(data_world, "tallied", "ballots.csv")))))
    assert sorted(r["receipt_id"] for r in listed) == data_world["receipt_ids"]

    pb = client.get(_url(data_world, "tallied", "ballots.pb"))
    assert pb.status_code == 200 and pb.headers["Content-Type"].startswith("text/plain")
    text = pb.get_data(as_text=True)
    assert text.startswith("META\n") and f"fundcircle_ballot_digest;{doc['ballot_digest']}" in text
    for receipt_id in data_world["receipt_ids"]:
        assert receipt_id not in text, "the .pb file carries no receipt ids (they would link lines to voters)"


def opendata_views_files() -> list[str]:
    from fundcircle.transparency.opendata_views import ROUND_FILES

    return list(ROUND_FILES)


def test_downloads_are_cacheable(client, data_world) -> None:  # type: ignore[no-untyped-def]
    first = client.get(_url(data_world, "tallied", "ballots.pb"))
    etag = first.headers["ETag"]
    assert "public" in first.headers["Cache-Control"]
    again = client.get(_url(data_world, "tallied", "ballots.pb"), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""


def test_tiny_rounds_withhold_ballots_but_keep_totals(client, app, data_world) -> None:  # type: ignore[no-untyped-def]
    page = client.text(_url(data_world, "tiny"))
    assert "fewer than 5" in page and "ballots.pb" not in page
    for name in ("ballots.json", "ballots.csv", "ballots.pb"):
        response = client.get(_url(data_world, "tiny", name), headers={"Accept": "application/json"})
        assert response.status_code == 409 and "fewer than 5" in response.get_json()["message"]
    results = client.get(_url(data_world, "tiny", "results.json")).get_json()
    assert results["ballots_published"] is False and results["ballot_count"] == 4
    assert sum(p["score"] or 0 for p in results["proposals"]) == 5  # approvals stay published as totals
    app.config["OPEN_DATA_MIN_VOTERS"] = 3  # a circle may choose a lower threshold
    assert client.get(_url(data_world, "tiny", "ballots.json")).status_code == 200
    app.config["OPEN_DATA_MIN_VOTERS"] = 10
    assert client.get(_url(data_world, "tallied", "ballots.json")).status_code == 409


def test_consent_rounds_explain_why_there_is_no_pb(client, data_world) -> None:  # type: ignore[no-untyped-def]
    page = client.text(_url(data_world, "consent"))
    assert "No pabulib file for this round" in page
    response = client.get(_url(data_world, "consent", "ballots.pb"), headers={"Accept": "application/json"})
    assert response.status_code == 409 and "would not reproduce the result" in response.get_json()["message"]
    ballots = client.get(_url(data_world, "consent", "ballots.json")).get_json()
    assert ballots["ballot_kind"] == "consent"
    assert all(v["response"] == "consent" for b in ballots["ballots"] for v in b["ballot"].values())


def test_circle_data_and_ledger_files(client, data_world) -> None:  # type: ignore[no-untyped-def]
    page = client.text(f"/c/{data_world['slug']}/data")
    assert f"/c/{data_world['slug']}/data/ledger.json" in page and _url(data_world, "tallied") in page
    assert _url(data_world, "upcoming") not in page, "no data link before the tally"
    as_json = client.get(f"/c/{data_world['slug']}/data/ledger.json").get_json()
    assert as_json["transactions"][0]["kind"] == "contribution"
    undocumented = {p for p in _paths(as_json) if not _covered(p, _documented("ledger.json"))}
    assert not undocumented, undocumented
    as_csv = client.text(f"/c/{data_world['slug']}/data/ledger.csv")
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert set(rows[0]) == _documented("ledger.csv")
    assert len(rows) == sum(len(t["postings"]) for t in as_json["transactions"])
    for text in (json.dumps(as_json), as_csv):
        assert "Mrs Example" not in text and "statement-line-77" not in text
    assert client.get(f"/c/{data_world['slug']}/data/ledger.xml").status_code == 404
    assert client.get("/c/no-such-circle/data/ledger.json").status_code == 404


def test_the_threshold_comes_from_config_then_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.errors import ConfigurationError

    monkeypatch.delenv("FUNDCIRCLE_OPEN_DATA_MIN_VOTERS", raising=False)
    assert opendata.configured_min_voters({}) == 5
    monkeypatch.setenv("FUNDCIRCLE_OPEN_DATA_MIN_VOTERS", "8")
    assert opendata.configured_min_voters({}) == 8
    assert opendata.configured_min_voters({"OPEN_DATA_MIN_VOTERS": 3}) == 3
    for bad in ("many", 0, "-2"):
        with pytest.raises(ConfigurationError):
            opendata.configured_min_voters({"OPEN_DATA_MIN_VOTERS": bad})
