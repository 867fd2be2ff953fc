"""The newcomer's path on the demo circle: from the circle's open-data page to each tallied round's
files, then ``fundcircle simulate`` on the downloaded .pb gives the published awards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from fundcircle.cli import main
from fundcircle.db import utcnow


def test_download_and_rerun_every_tallied_demo_round(app, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fundcircle.demo import DEMO_SLUG, seed_demo
    from fundcircle.extensions import db
    from fundcircle.voting.models import RoundResult

    with app.app_context():
        seed_demo(db.session, utcnow())
        db.session.commit()
        tallied = {r.round_id: [str(a.proposal_id) for a in r.awards] for r in db.session.query(RoundResult)}
    if not tallied:
        pytest.skip("the demo has no tallied round yet")

    data_page = client.text(f"/c/{DEMO_SLUG}/data")
    round_pages = sorted(set(re.findall(rf'href="(/c/{DEMO_SLUG}/r/(\d+)/data)"', data_page)))
    assert {int(rid) for _, rid in round_pages} == set(tallied)
    for page_url, rid in round_pages:
        page = client.text(page_url)
        results = client.get(f"{page_url}/results.json").get_json()
        assert [str(p["proposal_id"]) for p in sorted(
            (p for p in results["proposals"] if p["funded"]), key=lambda p: p["selection_position"])] == tallied[int(rid)]
        if "ballots.pb" not in page:
            assert "fewer than" in page or "No pabulib file" in page
            continue
        pb = client.get(f"{page_url}/ballots.pb")
        assert pb.status_code == 200
        path = tmp_path / f"round-{rid}.pb"
        path.write_bytes(pb.get_data())
        simulated = CliRunner().invoke(main, ["simulate", str(path), "--json"])
        assert simulated.exit_code == 0, simulated.output
        assert json.loads(simulated.stdout)["selected"] == tallied[int(rid)]
