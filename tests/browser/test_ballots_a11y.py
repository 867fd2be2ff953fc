"""The ballot page of every ballot kind passes axe-core, blank and with field errors, and the
receipt page too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser.test_ballots_browser import _sign_in, _voting_round

pytestmark = pytest.mark.browser

KINDS = [("approval-greedy", {"max_ballot_cost": "165000"}), ("quadratic", {}), ("cumulative", {}), ("score", {}),
         ("borda", {}), ("consent", {}), ("equal-allocation", {})]
#: a ballot the form or the rule refuses, per kind (so error messages are on the page)
INVALID = {"approval-greedy": lambda p: [p[0], p[1], p[2]], "quadratic": lambda p: {p[0]: "8", p[1]: "7"},
           "cumulative": lambda p: {p[0]: "9", p[1]: "9"}, "score": lambda p: {},
           "borda": lambda p: {p[0]: "1", p[1]: "1"}, "consent": lambda p: {p[0]: "objection"},
           "equal-allocation": lambda p: {p[0]: "1.234.5"}}


def _axe(page) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    axe = pytest.importorskip("axe_playwright_python")
    page.evaluate((Path(axe.__file__).parent / "axe.min.js").read_text(encoding="utf-8"))
    return page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }")


def test_every_ballot_kind_passes_axe(app, live_server: str, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    for n, (rule_id, params) in enumerate(KINDS):
        world = _voting_round(app, rule_id, params, slug=f"a11y-{n}")
        path = f"/c/{world['slug']}/r/{world['round_id']}/ballot"
        _sign_in(page, live_server, world["members"][0], path)
        page.get_by_role("heading", name="Your ballot").wait_for()
        assert _axe(page) == [], f"{rule_id} blank:\n{json.dumps(_axe(page), indent=1)}"

        p = world["proposal_ids"]
        invalid = INVALID[rule_id](p)
        if isinstance(invalid, list):
            for pid in invalid:
                page.locator(f"#p{pid}").check()
        else:
            for pid, value in invalid.items():
                field = page.locator(f"[name=p{pid}]")
                tag = field.first.evaluate("e => e.tagName + ':' + (e.type || '')")
                if tag.startswith("SELECT"):
                    field.select_option(value)
                elif tag.endswith(":radio"):
                    page.locator(f"[name=p{pid}][value={value}]").check()
                else:
                    field.fill(value)
        page.get_by_role("button", name="Cast my ballot").click()
        if rule_id == "score":  # an empty score ballot is an abstention: it is recorded
            page.get_by_role("heading", name="Your ballot is recorded").wait_for()
        else:
            try:
                page.locator(".errors").first.wait_for(state="attached")
            except Exception:
                raise AssertionError(f"{rule_id}: {page.url} {page.content()[-3000:]}") from None
        assert _axe(page) == [], f"{rule_id} after submit:\n{json.dumps(_axe(page), indent=1)}"
        page.get_by_role("button", name="Sign out").click()
