"""The Open Collective client against the fake OC server over real HTTP on loopback: pagination,
429 with Retry-After, retries, "created then timed out" without duplicates, and clear errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import requests

from fundcircle.integrations.fakes.opencollective import FAKE_TOKEN, FakeOpenCollective
from fundcircle.integrations.opencollective import (
    GrantRequest,
    OCAmbiguous,
    OCAuthError,
    OCTwoFactorRequired,
    OCUnavailable,
    OCValidationError,
    OCVisibilityError,
    OpenCollectiveClient,
    OpenCollectiveError,
    minor_to_oc_cents,
    oc_cents_to_minor,
)

SLUG = "riverside"


@pytest.fixture
def fake() -> Iterator[FakeOpenCollective]:
    server = FakeOpenCollective()
    server.add_account(SLUG, name="Riverside", currency="EUR")
    server.add_account("payee-one", type_="INDIVIDUAL")
    server.add_account("no-grants", currency="EUR", grant_allowed=False)
    server.add_token(FAKE_TOKEN)
    server.add_token("not-an-admin", admin_of=["someone-else"])
    server.add_token("two-factor", two_factor=True, preauthorized_2fa=False)
    server.start()
    server.add_funds(SLUG, 1_000_000_00, processor_fee_cents=50_00)
    yield server
    server.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(fake: FakeOpenCollective, token: str = FAKE_TOKEN, **kwargs: object) -> OpenCollectiveClient:
    options: dict[str, object] = {"timeout_s": 3.0, "backoff_s": 0.01, "max_attempts": 4, **kwargs}
    return OpenCollectiveClient(fake.graphql_url, token, website_url=fake.url, **options)  # type: ignore[arg-type]


def grant(n: int = 1, **overrides: object) -> GrantRequest:
    values: dict[str, object] = dict(account_slug=SLUG, award_ref=f"fundcircle:award:1:{n}",
                                     custom_data={"fundcircle_award_id": n, "fundcircle_circle_id": 1},
                                     description=f"Grant: project {n}", amount_minor=250_00, currency="EUR",
                                     payee_slug="payee-one")
    values.update(overrides)
    return GrantRequest(**values)  # type: ignore[arg-type]


# -- amounts ---------------------------------------------------------------------------------------

def test_oc_cents_are_major_times_100_for_every_currency() -> None:
    assert minor_to_oc_cents(250_00, "EUR") == 25000
    assert minor_to_oc_cents(500, "JPY") == 50000  # ¥500: Stripe says 500, OC says 50000
    assert oc_cents_to_minor(25000.0, "EUR") == 25000
    assert oc_cents_to_minor(50000.0, "JPY") == 500
    with pytest.raises(OpenCollectiveError):
        oc_cents_to_minor(12.5, "EUR")  # valueInCents is a Float: a fraction is refused, never rounded away
    with pytest.raises(OpenCollectiveError):
        oc_cents_to_minor(50050.0, "JPY")  # ¥500.50 does not exist
    with pytest.raises(OCValidationError):
        minor_to_oc_cents(1000, "KWD")  # three-decimal currencies are not in OC's enum
    for garbage in ("abc", float("nan"), float("inf"), [1]):
        with pytest.raises(OpenCollectiveError, match="not a number"):
            oc_cents_to_minor(garbage, "EUR")  # type: ignore[arg-type]


def test_timestamps_from_oc_parse_or_fail_with_a_clear_error() -> None:
    from fundcircle.integrations.opencollective import _ts

    assert _ts("2026-11-21T10:00:00.000Z") == dt.datetime(2026, 11, 21, 10, tzinfo=dt.timezone.utc)
    assert _ts("2026-11-21T10:00:00") == dt.datetime(2026, 11, 21, 10, tzinfo=dt.timezone.utc)
    assert _ts(None) is None and _ts("") is None
    for garbage in ("yesterday", "2026-13-01T00:00:00Z", 1763719200, ["2026-11-21"]):
        with pytest.raises(OpenCollectiveError, match="not ISO 8601"):
            _ts(garbage)


# -- listing -------------------------------------------------------------------------------------

def test_expenses_and_transactions_paginate_oldest_first(fake: FakeOpenCollective) -> None:
    c = client(fake)
    created = [c.create_grant_expense(grant(n)).expense for n in range(1, 26)]
    before = fake.requests_by_op.get("expenses", 0)
    listed = list(c.iter_expenses(SLUG, page_size=10))
    assert [e.public_id for e in listed] == [e.public_id for e in created]
    assert fake.requests_by_op["expenses"] - before == 3  # 10 + 10 + 5
    for e in created[:4]:
        c.process_expense(e.id, "APPROVE")
        c.process_expense(e.public_id, "PAY", payment_params={"paymentProcessorFeeInHostCurrency": 1_00})
    rows = list(c.iter_transactions(SLUG, page_size=3))
    # the contribution group (CONTRIBUTION + fee) and 4 expense groups (EXPENSE + fee), collective side
    assert len(rows) == 2 + 4 * 2 == len({r.ref for r in rows})
    assert all(r.amount_minor < 0 for r in rows if r.type == "DEBIT")
    assert all(r.amount_minor > 0 for r in rows if r.type == "CREDIT")
    assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)  # type: ignore[type-var]


def test_listing_above_the_cap_is_an_error_not_a_silent_truncation(fake: FakeOpenCollective) -> None:
    from fundcircle.integrations.opencollective import Q_EXPENSES

    with pytest.raises(OCValidationError, match="1,000"):
        client(fake).execute(Q_EXPENSES, {"account": {"slug": SLUG}, "limit": 1001, "offset": 0}, "FcExpenses")


# -- rate limits and transient failures ------------------------------------------------------------

def test_429_waits_the_fractional_retry_after_then_retries(fake: FakeOpenCollective) -> None:
    sleeps = Sleeps()
    fake.inject("expenses", "rate_limit", times=2, retry_after="0.25")
    assert list(client(fake, sleep=sleeps).iter_expenses(SLUG)) == []
    assert len(sleeps) == 2 and all(0.25 <= s < 0.35 for s in sleeps)


def test_429_on_create_is_resent_as_is_because_it_did_not_run(fake: FakeOpenCollective) -> None:
    sleeps = Sleeps()
    fake.inject("createExpense", "rate_limit", times=1, retry_after="1.5")
    outcome = client(fake, sleep=sleeps).create_grant_expense(grant())
    assert outcome.created and fake.expense_count() == 1
    assert any(1.5 <= s < 1.6 for s in sleeps)


def test_a_real_rate_limit_window_ends_in_a_clear_error(fake: FakeOpenCollective) -> None:
    fake.rate_limit_per_minute = 2
    c = client(fake, sleep=Sleeps(), max_rate_limit_wait_s=90)
    c.get_expense("ex_unknown")
    c.get_expense("ex_unknown")
    raw = requests.post(fake.graphql_url, json={"query": "{ expense(expense: {id: \"x\"}) { id } }"},
                        headers={"Personal-Token": FAKE_TOKEN}, timeout=5)
    assert raw.status_code == 429
    assert raw.json() == {"error": {"message": "Rate limit exceeded. Contact-us to get higher limits."}}
    assert float(raw.headers["Retry-After"]) > 0 and raw.headers["X-RateLimit-Remaining"] == "0"
    with pytest.raises(OCUnavailable, match="rate-limiting"):
        c.get_expense("ex_unknown")


def test_5xx_and_slow_answers_on_queries_are_retried_with_backoff(fake: FakeOpenCollective) -> None:
    c = client(fake)
    fake.inject("expenses", "http_502", times=2)
    fake.inject("transactions", "slow", times=1, delay_s=2.5)
    assert list(c.iter_expenses(SLUG)) == []
    c.timeout = (1.0, 1.5)  # shorter than the slow answer
    assert len(list(c.iter_transactions(SLUG))) == 2
    assert c.stats.retried == 3


def test_queries_give_up_after_the_last_attempt(fake: FakeOpenCollective) -> None:
    fake.inject("*", "http_503", times=10)
    with pytest.raises(OCUnavailable, match="HTTP 503 after 4 attempts"):
        list(client(fake).iter_expenses(SLUG))


@pytest.mark.parametrize("mode", ["commit_then_timeout", "commit_then_drop"])
def test_created_then_timed_out_is_found_by_the_lookup_not_created_again(fake: FakeOpenCollective,
                                                                          mode: str) -> None:
    fake.inject("createExpense", mode, delay_s=3.0)
    c = client(fake, timeout_s=1.5)
    outcome = c.create_grant_expense(grant())
    assert fake.expense_count() == 1
    assert outcome.created is False  # the lookup after the timeout found what OC had created
    assert outcome.expense.reference == "fundcircle:award:1:1"
    assert c.stats.by_operation["FcCreateGrant"] == 1
    # asking again (a retried request, a second treasurer) finds it too
    assert c.create_grant_expense(grant()).expense.id == outcome.expense.id
    assert fake.expense_count() == 1


def test_a_5xx_before_creating_leads_to_one_expense(fake: FakeOpenCollective) -> None:
    fake.inject("createExpense", "http_502", times=2)
    c = client(fake)
    outcome = c.create_grant_expense(grant())
    assert outcome.created and fake.expense_count() == 1
    assert c.stats.by_operation["FcCreateGrant"] == 3


def test_oc_unreachable_creates_nothing_and_says_so(fake: FakeOpenCollective) -> None:
    fake.inject("createExpense", "drop", times=10)
    with pytest.raises(OCUnavailable, match="nothing was created"):
        client(fake).create_grant_expense(grant())
    assert fake.expense_count() == 0


# -- lookups -----------------------------------------------------------------------------------

def test_rejected_expenses_do_not_block_a_new_payout_but_two_live_ones_are_ambiguous(fake: FakeOpenCollective) -> None:
    c = client(fake)
    first = c.create_grant_expense(grant()).expense
    c.process_expense(first.id, "REJECT")
    second = c.create_grant_expense(grant())
    assert second.created and second.expense.id != first.id
    # someone created a duplicate by hand in OC
    fake.state["expenses"].append({**fake.find_expense(second.expense.id), "id": "dup-1", "publicId": "ex_dup1",
                                   "legacyId": 99999})
    with pytest.raises(OCAmbiguous, match="ex_dup1"):
        c.create_grant_expense(grant())


def test_on_hold_expenses_are_found_too(fake: FakeOpenCollective) -> None:
    c = client(fake)
    e = c.create_grant_expense(grant()).expense
    c.process_expense(e.id, "HOLD")
    assert c.create_grant_expense(grant()).expense.id == e.id
    assert fake.expense_count() == 1


def test_inviting_a_payee_by_email_is_a_draft_found_again(fake: FakeOpenCollective) -> None:
    c = client(fake)
    invite = grant(payee_slug=None, invite_email="fatima@example.org", invite_name="Homework club")
    first = c.create_grant_expense(invite)
    assert first.created and first.expense.status == "DRAFT"
    assert c.create_grant_expense(invite).expense.id == first.expense.id
    assert fake.expense_count() == 1


# -- errors that stop --------------------------------------------------------------------------------

def test_bad_token_is_an_auth_error(fake: FakeOpenCollective) -> None:
    with pytest.raises(OCAuthError, match="token"):
        list(client(fake, token="wrong").iter_expenses(SLUG))


def test_two_factor_without_pre_authorisation_says_how_to_fix_it(fake: FakeOpenCollective) -> None:
    with pytest.raises(OCTwoFactorRequired, match="Advanced privileges"):
        client(fake, token="two-factor").create_grant_expense(grant())
    assert fake.expense_count() == 0


def test_a_non_admin_token_never_creates_on_a_blind_lookup(fake: FakeOpenCollective) -> None:
    client(fake).create_grant_expense(grant(2))  # an expense exists, but this token cannot see its custom data
    with pytest.raises(OCAuthError):
        client(fake, token="not-an-admin").create_grant_expense(grant(2))
    assert fake.expense_count() == 1


def test_visibility_error_on_search_fallback(fake: FakeOpenCollective) -> None:
    c = client(fake)
    c.create_grant_expense(grant(3))
    other = client(fake, token="not-an-admin")
    with pytest.raises(OCVisibilityError):
        for e in other.iter_expenses(SLUG, search_term="fundcircle"):
            other._check_visible(e)


def test_validation_failures_are_reported(fake: FakeOpenCollective) -> None:
    c = client(fake)
    with pytest.raises(OCValidationError, match="grant are not allowed"):
        c.create_grant_expense(grant(account_slug="no-grants"))
    with pytest.raises(OCValidationError, match="another currency"):
        c.create_grant_expense(grant(currency="USD"))
    with pytest.raises(OCValidationError, match="not found"):
        c.create_grant_expense(grant(payee_slug="nobody-by-that-name"))
    assert fake.expense_count() == 0


def test_transitions_follow_oc(fake: FakeOpenCollective) -> None:
    c = client(fake)
    e = c.create_grant_expense(grant()).expense
    assert e.status == "PENDING"
    with pytest.raises(OCValidationError, match="Cannot pay"):
        c.process_expense(e.id, "PAY")
    assert c.process_expense(e.id, "APPROVE").status == "APPROVED"
    paid = c.process_expense(e.id, "PAY", payment_params={"paymentProcessorFeeInHostCurrency": 2_00})
    assert paid.status == "PAID" and paid.paid_at is not None
    groups = {r.group for r in c.iter_transactions(SLUG, expense_id=e.id)}
    assert len(groups) == 1
    unpaid = c.process_expense(e.id, "MARK_AS_UNPAID", payment_params={"markAsUnPaidStatus": "APPROVED"})
    assert unpaid.status == "APPROVED" and unpaid.paid_at is None
    rows = list(c.iter_transactions(SLUG, expense_id=e.id, kinds=None))
    assert len({r.group for r in rows}) == 2  # mark as unpaid writes a new group
    assert sum(r.amount_minor for r in rows if r.kind == "EXPENSE") == 0
    assert [r.kind for r in rows if r.is_refund] == ["EXPENSE"]
    # the fee is not reversed; a cover pair gives it back
    assert sum(r.amount_minor for r in rows if r.kind in ("PAYMENT_PROCESSOR_FEE", "PAYMENT_PROCESSOR_COVER")) == 0


def test_bank_payouts_process_before_they_are_paid(fake: FakeOpenCollective) -> None:
    c = client(fake)
    e = c.create_grant_expense(grant()).expense
    fake.find_expense(e.id)["payoutMethodType"] = "BANK_ACCOUNT"
    c.process_expense(e.id, "APPROVE")
    assert c.process_expense(e.id, "PAY").status == "PROCESSING"
    assert list(c.iter_transactions(SLUG, expense_id=e.id)) == []
    fake.complete_processing(e.id, ok=False)
    assert c.get_expense(e.public_id).status == "ERROR"  # type: ignore[union-attr]


def test_the_fake_keeps_its_state_in_a_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "oc.json"
    with FakeOpenCollective(state_path=path) as first:
        first.add_account(SLUG)
        first.add_account("payee-one", type_="INDIVIDUAL")
        first.add_token(FAKE_TOKEN)
        client(first).create_grant_expense(grant())
    with FakeOpenCollective(state_path=path) as second:
        assert second.expense_count() == 1
        assert client(second).create_grant_expense(grant()).created is False


def test_the_fakes_admin_page_approves_and_pays_like_oc(fake: FakeOpenCollective) -> None:
    """The demo's stand-in for clicking in OC: plain HTML forms, real OC effects (status, ledger rows)."""
    c = client(fake)
    e = c.create_grant_expense(grant()).expense
    page = requests.get(fake.url + "/", timeout=5).text
    assert e.public_id in page and "Approve" in page
    assert requests.post(f"{fake.url}/__fake__/expenses/{e.public_id}/approve", timeout=5,
                         allow_redirects=False).status_code == 303
    paid = requests.post(f"{fake.url}/__fake__/expenses/{e.public_id}/pay", data={"fee": "1.50", "amount": "240"},
                         timeout=5, allow_redirects=False)
    assert paid.status_code == 303
    rows = list(c.iter_transactions(SLUG, expense_id=e.id))
    assert sorted((r.kind, r.amount_minor) for r in rows) == [("EXPENSE", -240_00), ("PAYMENT_PROCESSOR_FEE", -150)]
    again = requests.post(f"{fake.url}/__fake__/expenses/{e.public_id}/pay", data={}, timeout=5, allow_redirects=False)
    assert again.status_code == 409  # already paid


def test_someone_elses_unreadable_expense_does_not_break_a_listing(fake: FakeOpenCollective) -> None:
    c = client(fake)
    ours = c.create_grant_expense(grant()).expense
    # a hand-made expense fundcircle cannot represent: 123.45 ISK (ISK has no minor unit)
    fake.state["expenses"].append({**fake.find_expense(ours.id), "id": "odd-1", "publicId": "ex_odd1",
                                   "legacyId": 77777, "currency": "ISK", "amount_cents": 12345, "customData": None,
                                   "reference": None})
    with pytest.raises(OpenCollectiveError, match="not a whole amount of ISK"):
        list(c.iter_expenses(SLUG))
    assert [e.id for e in c.iter_expenses(SLUG, skip_unreadable=True)] == [ours.id]
