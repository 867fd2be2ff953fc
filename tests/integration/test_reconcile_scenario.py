"""Reconciliation of a recorded scenario with every award state, over the fake OC (real HTTP).

Awards A–H (amounts in EUR cents):
  A awarded (no expense) · B expense created · C approved · D paid in OC, not in the ledger ·
  E paid, recorded, then marked as unpaid in OC (in the ledger, missing in OC) · F paid 900 of
  1,000 (amount differs) · G paid in a foreign currency account? no: G is recorded in the ledger but
  OC never paid it (missing in OC) · H paid and recorded (matched)
plus the collective's founding contribution, which nothing in fundcircle explains (suspense).
"""

from __future__ import annotations

from typing import Any

import pytest

from fundcircle import ledger
from fundcircle.ledger.reconcile.csv_import import parse_transactions_csv
from fundcircle.ledger.reconcile.opencollective import reconcile
from fundcircle.treasury import operations as ops
from fundcircle.treasury import queries
from fundcircle.treasury.models import AwardState, ProposalKind
from tests.fixtures.opencollective.world import NOW, OC_SLUG, World, build_world, client_for, later
from tests.support.opencollective import fake  # noqa: F401  (the fixture)

AMOUNTS = [400_00, 500_00, 600_00, 700_00, 800_00, 1_000_00, 300_00, 250_00]


def _scenario(session: Any, fake: Any) -> tuple[World, Any]:
    world = build_world(session, AMOUNTS)
    client = client_for(fake)
    a, b, c, d, e, f_, g, h = world.awards
    payouts = {aw.id: ops.create_payout(session, world.circle, aw, actor=world.treasurer, client=client, now=NOW)
               for aw in (b, c, d, e, f_, g, h)}
    pid = {aw_id: p.oc_public_id for aw_id, p in payouts.items()}
    fake.process(pid[c.id], "APPROVE")
    for aw, fee in ((d, 1_50), (e, 0), (h, 1_00)):
        fake.process(pid[aw.id], "APPROVE")
        fake.process(pid[aw.id], "PAY", {"paymentProcessorFeeInHostCurrency": fee})
    fake.find_expense(pid[f_.id])["amount_cents"] = 900_00  # edited in OC before paying
    fake.process(pid[f_.id], "APPROVE")
    fake.process(pid[f_.id], "PAY", {})
    fake.process(pid[g.id], "APPROVE")
    # the ledger already recorded H (matched), E (later unpaid in OC) and G (never paid in OC)
    for aw, fee in ((h, 1_00), (e, 0), (g, 0)):
        ledger.record_payout(session, world.round_, aw.proposal, expense_id=pid[aw.id], amount_minor=aw.amount_minor,
                             fee_minor=fee, now=later(1))
    fake.process(pid[e.id], "MARK_AS_UNPAID", {"markAsUnPaidStatus": "APPROVED"})
    session.commit()
    return world, client


def _states(session: Any, world: World) -> list[str]:
    return [s.state.value for s in queries.award_statuses(session, world.circle.id)]


EXPECTED_FIRST = [AwardState.AWARDED, AwardState.EXPENSE_CREATED, AwardState.APPROVED, AwardState.PAID_NOT_IN_LEDGER,
                  AwardState.MISSING_IN_OC, AwardState.AMOUNT_DIFFERS, AwardState.MISSING_IN_OC, AwardState.PAID]


def test_every_state_then_confirm_then_reimport_posts_nothing(session: Any, fake: Any) -> None:
    world, client = _scenario(session, fake)
    result = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(2))
    session.commit()
    assert _states(session, world) == [s.value for s in EXPECTED_FIRST]
    assert result.rows_new == len(list(client.iter_transactions(OC_SLUG)))
    # the founding contribution (with its fees) is the only unexplained money
    assert [(u.kind, u.gross_minor, u.net_minor) for u in result.report.unexplained] == [
        ("CONTRIBUTION", 50_000_00, 50_000_00 - 1_25 - 5_00)]
    proposals = {(p.kind, p.award_id, p.amount_minor, p.fee_minor) for p in queries.open_proposals(session, world.circle.id)}
    a, b, c, d, e, f_, g, h = world.awards
    assert ("record_payout", d.id, 700_00, 1_50) in proposals
    assert ("record_payout", f_.id, 900_00, 0) in proposals
    assert ("release_remainder", f_.id, 100_00, 0) in proposals
    assert {p[1] for p in proposals if p[0] == "reverse_payout"} == {e.id, g.id}
    assert ("record_contribution", None, 50_000_00, 6_25) in proposals
    assert ("hold_in_suspense", None, 50_000_00 - 6_25, 0) in proposals
    assert len(proposals) == 7

    # importing again: no new rows, no new proposals, nothing posted
    head = ledger.head(session)
    again = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(3))
    session.commit()
    assert (again.rows_new, again.proposals_new) == (0, 0)
    assert ledger.head(session) == head

    # the treasurer confirms everything (the contribution alternative supersedes suspense)
    posted = ops.confirm_all(session, world.circle, actor=world.treasurer, now=later(4))
    session.commit()
    assert len(posted) == 6
    assert ledger.verify(session).ok
    ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(5))
    session.commit()
    # E and G: the wrong ledger payouts are reversed; they wait, approved, in OC
    assert _states(session, world) == ["awarded", "expense_created", "approved", "paid", "approved", "paid",
                                       "approved", "paid"]
    statuses = {s.award_id: s for s in queries.award_statuses(session, world.circle.id)}
    assert "900" in statuses[f_.id].note.replace("_", "")
    assert queries.open_proposals(session, world.circle.id) == []
    balances = ledger.circle_balances(session, world.circle.id, "EUR")
    assert balances.fees_minor == 1_50 + 1_00 + 6_25
    # F's unpaid 100 went back to the pot; nothing earmarked remains for paid awards
    head = ledger.head(session)
    assert ops.confirm_all(session, world.circle, actor=world.treasurer, now=later(6)) == []
    again = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(7))
    session.commit()
    assert (again.rows_new, again.proposals_new) == (0, 0)
    assert ledger.head(session) == head


def _comparable(report: Any) -> dict[str, Any]:
    data = report.to_dict()
    for u in data["unexplained"]:
        u["occurred_at"] = None  # the CSV has seconds, the API milliseconds
    return data


@pytest.mark.parametrize("use_field_names", [False, True], ids=["raw-keys", "labels"])
def test_csv_gives_the_same_result_as_the_api(session: Any, fake: Any, use_field_names: bool) -> None:
    world, client = _scenario(session, fake)
    ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(2))
    session.commit()
    api_rows = list(client.iter_transactions(OC_SLUG))
    text = fake.transactions_csv(OC_SLUG, use_field_names=use_field_names, fetch_all=True)
    parsed = parse_transactions_csv(text, account_slug=OC_SLUG)
    assert parsed.header_style == ("labels" if use_field_names else "keys")

    def key(t: Any) -> tuple[Any, ...]:
        return (t.ref, t.public_id, t.group, t.type, t.kind, t.is_refund, t.is_refunded, t.amount_minor, t.currency,
                t.account_slug, t.opposite_slug, t.expense_id, t.expense_public_id, t.expense_legacy_id)

    assert sorted(map(key, parsed.rows)) == sorted(map(key, api_rows))
    facts = (queries.award_facts(session, world.circle.id),
             queries.payout_facts(queries.payouts_of_circle(session, world.circle.id)),
             queries.ledger_facts(session, world.circle.id))
    assert _comparable(reconcile(*facts, parsed.rows, account_slug=OC_SLUG)) == _comparable(
        reconcile(*facts, api_rows, account_slug=OC_SLUG))

    # and as an import: the same rows, so nothing new, and the same states
    before = _states(session, world)
    result = ops.import_from_csv(session, world.circle, actor=world.treasurer, data=text.encode(), filename="x.csv",
                                 now=later(3))
    session.commit()
    assert (result.rows_new, result.proposals_new) == (0, 0)
    assert _states(session, world) == before == [s.value for s in EXPECTED_FIRST]


def test_csv_first_import_in_a_fresh_circle(session: Any, fake: Any) -> None:
    """The CSV alone (statuses as fundcircle last saw them) proposes the same ledger entries."""
    world, client = _scenario(session, fake)
    text = fake.transactions_csv(OC_SLUG, use_field_names=True, fetch_all=True)
    result = ops.import_from_csv(session, world.circle, actor=world.treasurer, data=text, filename="oc.csv",
                                 now=later(2))
    session.commit()
    kinds = sorted(p.kind.value for p in result.report.proposals)
    assert kinds == sorted(["record_payout", "record_payout", "release_remainder", "reverse_payout", "reverse_payout",
                            "record_contribution", "hold_in_suspense"])
    states = _states(session, world)
    # paid, unpaid and amount states come from the transactions, so they agree with the API path
    assert [states[i] for i in (0, 3, 4, 5, 6, 7)] == [EXPECTED_FIRST[i].value for i in (0, 3, 4, 5, 6, 7)]


def test_confirming_a_proposal_twice_posts_once(session: Any, fake: Any) -> None:
    world, client = _scenario(session, fake)
    ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(2))
    entry = next(p for p in queries.open_proposals(session, world.circle.id) if p.kind == ProposalKind.RECORD_PAYOUT.value)
    first = ops.confirm_proposal(session, world.circle, entry, actor=world.treasurer, now=later(3))
    assert not first.replayed
    with pytest.raises(Exception, match="not open"):
        ops.confirm_proposal(session, world.circle, entry, actor=world.treasurer, now=later(3))
    session.commit()
    ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(4))
    session.commit()
    assert not any(p.ledger_key == entry.ledger_key for p in queries.open_proposals(session, world.circle.id))


def test_api_imports_after_the_first_read_only_what_is_new(session: Any, fake: Any) -> None:
    import datetime as dt

    from fundcircle.db import utcnow
    from fundcircle.integrations.fakes.opencollective import _iso
    from fundcircle.treasury.models import ImportedTransaction

    world, client = _scenario(session, fake)
    # on OC's clock, the older half of the history happened 100 days ago, the rest 50 days ago
    rows = sorted(fake.state["transactions"], key=lambda t: t["legacyId"])
    for n, t in enumerate(rows):
        t["createdAt"] = _iso(utcnow() - dt.timedelta(days=100 if n < len(rows) // 2 else 50))
    recent = sum(1 for n, t in enumerate(rows) if n >= len(rows) // 2 and t["account"] == OC_SLUG)
    first = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(2))
    session.commit()
    total = first.run.rows_seen
    assert first.run.summary["since"] is None  # the first import reads the whole history
    h = world.awards[7]
    pid = queries.payouts_of_circle(session, world.circle.id)[h.id].oc_public_id
    fake.process(pid, "MARK_AS_UNPAID", {"markAsUnPaidStatus": "APPROVED"})  # OC's clock: now
    again = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(3))
    session.commit()
    # from two days before the newest stored row: the recent half again, and the new reversal
    # (the EXPENSE credit and the fee cover on the collective's side)
    assert (again.run.rows_seen, again.rows_new) == (recent + 2, 2)
    assert again.run.rows_seen < total
    states = {s.award_id: s.state for s in queries.award_statuses(session, world.circle.id)}
    assert states[h.id] is AwardState.MISSING_IN_OC  # the ledger still has H's payout; OC took it back
    full = ops.import_from_api(session, world.circle, actor=world.treasurer, client=client, now=later(4), full=True)
    session.commit()
    assert (full.run.rows_seen, full.rows_new, full.proposals_new) == (total + 2, 0, 0)
    assert session.query(ImportedTransaction).count() == total + 2
