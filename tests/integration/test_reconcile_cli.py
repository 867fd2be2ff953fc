"""``fundcircle reconcile --circle SLUG (--api | --csv FILE) [--confirm] [--json]`` end to end:
the command builds its own app from the environment, like an operator's shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fundcircle.cli import main
from fundcircle.integrations.fakes.opencollective import FAKE_TOKEN
from tests.fixtures.opencollective.world import OC_SLUG
from tests.integration.test_reconcile_scenario import EXPECTED_FIRST, _scenario
from tests.support.opencollective import fake  # noqa: F401  (the fixture)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, fake: Any):  # type: ignore[no-untyped-def]
    for key, value in {"DATABASE_URL": database_url, "FUNDCIRCLE_INSTANCE_PATH": str(tmp_path / "cli-instance"),
                       "SECRET_KEY": "cli-secret-" + "k" * 32, "FUNDCIRCLE_ENV": "testing",
                       "OPENCOLLECTIVE_API_URL": fake.graphql_url, "OPENCOLLECTIVE_TOKEN": FAKE_TOKEN,
                       "OPENCOLLECTIVE_WEBSITE_URL": fake.url}.items():
        monkeypatch.setenv(key, value)

    def invoke(*args: str, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, ["reconcile", *args])
        if ok:
            assert result.exit_code == 0, (result.output, result.exception)
        return result

    return invoke


def test_reconcile_json_import_again_csv_and_confirm(session: Any, fake: Any, run: Any, tmp_path: Path) -> None:
    world, _client = _scenario(session, fake)
    slug = world.circle.slug
    session.close()
    first = json.loads(run("--circle", slug, "--api", "--json").output)
    assert [a["state"] for a in first["awards"]] == [s.value for s in EXPECTED_FIRST]
    assert first["counts"]["unexplained"] == 1 and first["counts"]["paid"] == 1
    assert len(first["proposals"]) == 7 and first["posted"] == [] and first["rows_new"] > 0

    again = json.loads(run("--circle", slug, "--api", "--json").output)
    assert (again["rows_new"], again["proposals_new"]) == (0, 0)
    assert [p["id"] for p in again["proposals"]] == [p["id"] for p in first["proposals"]]

    export = tmp_path / "oc-labels.csv"
    export.write_text(fake.transactions_csv(OC_SLUG, use_field_names=True, fetch_all=True))
    from_csv = json.loads(run("--circle", slug, "--csv", str(export), "--json").output)
    assert from_csv["header_style"] == "labels" and from_csv["rows_new"] == 0
    assert from_csv["awards"] == again["awards"] and from_csv["proposals"] == again["proposals"]

    confirmed = json.loads(run("--circle", slug, "--api", "--confirm", "--json").output)
    assert len(confirmed["posted"]) == 6 and confirmed["proposals"] == []
    assert [a["state"] for a in confirmed["awards"]] == ["awarded", "expense_created", "approved", "paid", "approved",
                                                          "paid", "approved", "paid"]
    settled = json.loads(run("--circle", slug, "--api", "--confirm", "--json").output)
    assert settled["posted"] == [] and settled["proposals_new"] == 0

    text = run("--circle", slug, "--api").output
    assert "[paid]" in text and "nothing to confirm" in text


def test_reconcile_errors_are_one_line(session: Any, fake: Any, run: Any, tmp_path: Path) -> None:
    world, _client = _scenario(session, fake)
    slug = world.circle.slug
    session.close()
    bad = tmp_path / "bad.csv"
    bad.write_text("type,kind,group,currency,amount,legacyId\nDEBIT,EXPENSE,g,EUR,ten,1\n")
    result = run("--circle", slug, "--csv", str(bad), ok=False)
    assert result.exit_code == 1 and "line 2" in result.output and "Traceback" not in result.output
    assert run("--circle", "no-such-circle", "--api", ok=False).exit_code == 1
    assert run("--circle", slug, ok=False).exit_code == 2  # neither --api nor --csv
    fake.inject("*", "http_503", times=100)
    down = run("--circle", slug, "--api", ok=False)
    assert down.exit_code == 1 and "unavailable" in down.output
