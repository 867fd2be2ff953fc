"""The applicant's journey over HTTP, with the clock pinned at each phase edge."""

from __future__ import annotations

import re

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from tests.support.factories import DAY, T0
from tests.support.web import WebClient

APPLICANT = "rosa@example.org"
DESCRIPTION = "We will turn the empty laundry room into a lending library for tools. " * 4


def form(**overrides: str) -> dict[str, str]:
    data = {
        "title": "Tool library", "summary": "Lend tools to neighbours.", "description": DESCRIPTION,
        "amount_requested": "1,000.00", "payee_kind": "opencollective", "payee_oc_slug": "riverside-tools",
        "payee_email": "", "budget_lines-0-item": "Shelving", "budget_lines-0-amount": "400",
        "budget_lines-1-item": "Tools", "budget_lines-1-amount": "600.00", "action": "submit",
    }
    data.update(overrides)
    return data


def urls(world: dict) -> dict[str, str]:
    base = f"/c/{world['slug']}/r/{world['round_id']}"
    return {"round": base, "new": f"{base}/proposals/new"}


def proposal_id(response) -> int:  # type: ignore[no-untyped-def]
    return int(re.search(r"/p/(\d+)$", response.headers["Location"]).group(1))


def test_visitor_reads_the_open_call(client: WebClient, world: dict) -> None:
    with freeze_time(T0 + DAY):
        page = client.text(urls(world)["round"])
        assert "Spring grants" in page and "Call open" in page and "Propose a project" in page
        home = client.text("/")
        assert "Spring grants" in home


def test_draft_submit_edit_withdraw(client: WebClient, world: dict, app) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        draft = client.post(u["new"], form(action="draft", description="too short"))
        assert draft.status_code == 302
        pid = proposal_id(draft)
        page = f"{u['round']}/p/{pid}"
        text = client.text(page)
        assert "This is a draft" in text and "full description" in text  # unmet criterion named
        # A visitor cannot see a draft.
        assert WebClient(app).get(page).status_code == 404
        submitted = client.post(f"{page}/edit", form(), form_page=f"{page}/edit")
        assert submitted.status_code == 302
        assert "Submitted" in client.text(page)
        assert WebClient(app).get(page).status_code == 200  # public once submitted
        edited = client.post(f"{page}/edit", form(title="Tool library, extended", action="save"),
                             form_page=f"{page}/edit")
        assert edited.status_code == 302
        assert "Tool library, extended" in client.text(page)
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal, ProposalRevision

    with app.app_context():
        revisions = db.session.scalars(select(ProposalRevision).where(ProposalRevision.proposal_id == pid)
                                       .order_by(ProposalRevision.number)).all()
        assert [r.number for r in revisions] == [1, 2]
        assert revisions[0].snapshot["title"] == "Tool library"
        assert revisions[1].snapshot["title"] == "Tool library, extended"
        assert revisions[1].snapshot["budget_lines"][1] == {"description": "Tools", "amount_minor": 600_00}
        assert db.session.get(Proposal, pid).amount_requested_minor == 1000_00
    with freeze_time(T0 + 11 * DAY):  # after the call closed, before voting
        client.sign_in(APPLICANT)  # the old session timed out
        withdrawn = client.post(f"{page}/withdraw", {}, form_page=page)
        assert withdrawn.status_code == 302
        assert "Withdrawn" in client.text(page)


def test_edit_after_the_deadline_is_refused_with_a_clear_message(client: WebClient, world: dict, app) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY) as clock:
        client.sign_in(APPLICANT)
        pid = proposal_id(client.post(u["new"], form()))
        page = f"{u['round']}/p/{pid}"
        clock.move_to(T0 + 10 * DAY)  # exactly at close: the phase has ended
        client.sign_in(APPLICANT)
        response = client.post(f"{page}/edit", form(title="Sneaky late change", action="save"), form_page=page)
        assert response.status_code == 409
        body = response.get_data(as_text=True)
        assert "Submissions for this round closed on 11 Mar 2027, 12:00 UTC" in body
        assert "Sneaky late change" in body  # what the person typed is kept in the form
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal

    with app.app_context():
        assert db.session.get(Proposal, pid).title == "Tool library"


@pytest.mark.parametrize("offset_seconds, allowed", [(-1, True), (0, False), (1, False)])
def test_submission_window_edges(client: WebClient, world: dict, offset_seconds: int, allowed: bool) -> None:
    u = urls(world)
    import datetime as dt

    with freeze_time(T0 + DAY) as clock:
        client.sign_in(APPLICANT)
        assert "Propose a project" in client.text(u["round"])
        clock.move_to(T0 + 10 * DAY + dt.timedelta(seconds=offset_seconds))
        client.sign_in(APPLICANT)
        response = client.post(u["new"], form(), form_page=u["round"])
        assert (response.status_code == 302) is allowed, response.get_data(as_text=True)[:300]
        if not allowed:
            assert response.status_code == 409


def test_submission_before_the_call_opens_is_refused(client: WebClient, world: dict) -> None:
    u = urls(world)
    with freeze_time(T0 - DAY):
        client.sign_in(APPLICANT)
        draft = client.post(u["new"], form(action="draft"))
        assert draft.status_code == 302  # drafts may be written once the round is announced
        submit = client.post(u["new"], form(action="submit"))
        assert submit.status_code == 409
        assert "Submissions open on 1 Mar 2027, 12:00 UTC" in submit.get_data(as_text=True)


def test_each_failed_criterion_gets_its_own_message(client: WebClient, world: dict, app) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        response = client.post(u["new"], form(**{
            "amount_requested": "50", "summary": "", "description": "short",
            "budget_lines-0-amount": "10", "budget_lines-1-amount": "10"}))
        assert response.status_code == 422
        body = response.get_data(as_text=True)
        assert "at least 100.00 EUR" in body
        assert "one- or two-sentence summary" in body
        assert "full description" in body
        assert "add up to 20.00 EUR, not the 50.00 EUR requested" in body
    from fundcircle.extensions import db
    from fundcircle.proposals.models import Proposal

    with app.app_context():  # nothing half-written
        assert db.session.scalar(select(Proposal)) is None


@pytest.mark.parametrize("amount", ["abc", "1e309", "NaN", "12.345", "-5", "9" * 40, "１２", "1,2,3", ""])
def test_malformed_amounts_get_a_form_error_not_a_500(client: WebClient, world: dict, amount: str) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        response = client.post(u["new"], form(amount_requested=amount))
        assert response.status_code == 422
        assert 'class="errors"' in response.get_data(as_text=True)
        assert "Tool library" in response.get_data(as_text=True)  # input kept


def test_facilitator_screens_and_applicant_sees_the_reason(client: WebClient, world: dict, app) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        pid = proposal_id(client.post(u["new"], form()))
        page = f"{u['round']}/p/{pid}"
        assert client.post(f"{page}/screen", {"decision": "ineligible", "reason": "x"}, form_page=page
                           ).status_code == 403
        facilitator = WebClient(app)
        facilitator.sign_in("fac@example.org")
        facilitator.pass_second_factor()
        no_reason = facilitator.post(f"{page}/screen", {"decision": "ineligible", "reason": ""}, form_page=page)
        assert no_reason.status_code == 422
        ok = facilitator.post(f"{page}/screen", {"decision": "ineligible",
                                                  "reason": "Commercial venture; the call funds community projects."},
                              form_page=page)
        assert ok.status_code == 302
        text = client.text(page)
        assert "Not eligible" in text and "Commercial venture" in text


def test_private_fields_stay_private(client: WebClient, world: dict, app) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        pid = proposal_id(client.post(u["new"], form(payee_kind="email", payee_email="secret-payee@example.net")))
        page = f"{u['round']}/p/{pid}"
        assert "secret-payee@example.net" in client.text(page)
        public = WebClient(app)
        for path in (page, u["round"], "/", f"/c/{world['slug']}"):
            text = public.text(path)
            assert "secret-payee@example.net" not in text and APPLICANT not in text


@pytest.mark.parametrize("field", ["title", "summary", "description"])
def test_nul_bytes_and_control_characters_are_refused_cleanly(client: WebClient, world: dict, field: str) -> None:
    u = urls(world)
    with freeze_time(T0 + DAY):
        client.sign_in(APPLICANT)
        value = form()[field] + "\x00hidden"
        response = client.post(u["new"], form(**{field: value}))
        assert response.status_code == 422
        assert "control characters" in response.get_data(as_text=True)
