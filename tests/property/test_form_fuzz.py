"""Malformed input never gives a 500: random field dictionaries against every form endpoint."""

from __future__ import annotations

import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import factories as f
from tests.support.factories import DAY, T0
from tests.support.web import WebClient, csrf_from

NASTY = st.sampled_from(["", "NaN", "1e309", "-1", "0", "٣", "１２", "9" * 25, "\x00", "1,0,0", "12.345",
                         "<script>", "' OR 1=1 --", "2027-13-45T99:99", "true", " ", "€", "1.5e3", "∞"])
VALUE = st.one_of(NASTY, st.text(max_size=40), st.integers(-10**20, 10**20).map(str))
FIELDS = {
    "proposal": ["title", "summary", "description", "amount_requested", "payee_kind", "payee_oc_slug",
                 "payee_email", "budget_lines-0-item", "budget_lines-0-amount", "budget_lines-7-amount",
                 "budget_lines-99-amount", "action", "unknown"],
    "round": ["title", "call_text", "budget", "currency", "rule_id", "rule_params", "submissions_open_at",
              "submissions_close_at", "deliberation_open_at", "voting_open_at", "voting_close_at", "min_request",
              "max_request", "required_fields", "max_proposals_per_applicant", "show_running_results"],
    "invite": ["email", "as_facilitator", "as_treasurer", "message"],
    "signin": ["email", "next"],
}


VALID = {
    "proposal": {"title": "Fridge", "summary": "A fridge.", "description": "A shared fridge. " * 20,
                 "amount_requested": "800", "payee_kind": "opencollective", "payee_oc_slug": "fridge",
                 "budget_lines-0-item": "Fridge", "budget_lines-0-amount": "800", "action": "submit"},
    "round": {"title": "Grants", "call_text": "Ideas.", "budget": "3000", "currency": "EUR", "rule_id": "quadratic",
              "rule_params": "credits = 50", "submissions_open_at": "2027-03-05T09:00",
              "submissions_close_at": "2027-03-20T18:00", "deliberation_open_at": "2027-03-21T09:00",
              "voting_open_at": "2027-03-28T09:00", "voting_close_at": "2027-04-04T18:00"},
    "invite": {"email": "new@example.org", "message": "Hello"},
    "signin": {"email": "someone@example.org", "next": "/"},
}


@pytest.fixture
def fuzz_client(app):  # type: ignore[no-untyped-def]
    from fundcircle.extensions import db

    with app.app_context():
        circle = f.create_circle(db.session)
        round_ = f.create_round(db.session, circle)
        db.session.commit()
        round_id = round_.id
    client = WebClient(app)
    with freeze_time(T0 + DAY):
        client.sign_in("fac@example.org")
        client.pass_second_factor()  # the round form is a facilitator action
    paths = {"proposal": f"/c/test-circle/r/{round_id}/proposals/new", "round": "/c/test-circle/rounds/new",
             "invite": "/c/test-circle/members", "signin": "/signin"}
    return client, paths


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_form_input_gives_a_server_error(fuzz_client, data) -> None:  # type: ignore[no-untyped-def]
    client, paths = fuzz_client
    form_name = data.draw(st.sampled_from(sorted(paths)))
    # Start from a valid submission and break a few fields, so bad values reach the operations
    # and the database instead of stopping at the first missing field.
    mutated = data.draw(st.dictionaries(st.sampled_from(FIELDS[form_name]), VALUE, max_size=3))
    fields = {**VALID[form_name], **mutated}
    with freeze_time(T0 + DAY):
        token = csrf_from(client.get(paths["round"]).get_data(as_text=True))
        response = client.http.post(paths[form_name], data={"csrf_token": token, **fields})
    assert response.status_code < 500, (form_name, fields, response.get_data(as_text=True)[:500])
