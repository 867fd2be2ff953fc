"""Read functions of the treasury, all scoped by circle.

``award_statuses(session, circle_id)`` is the public contract the transparency pages use: each award
of the circle with its state between "awarded" and "paid", computed by the same reconciliation the
treasurer sees (over the Open Collective activity imported so far).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.integrations.opencollective import OCTransaction
from fundcircle.ledger import accounts as chart
from fundcircle.ledger.models import LedgerAccount, LedgerPosting, LedgerTransaction
from fundcircle.ledger.reconcile.opencollective import (
    AwardFacts,
    LedgerFacts,
    LedgerPayout,
    PayoutFacts,
    Report,
    reconcile,
)
from fundcircle.proposals.models import Proposal
from fundcircle.rounds.models import Round
from fundcircle.treasury.models import (
    AwardState,
    ImportedTransaction,
    ImportRun,
    PayoutRecord,
    ProposalStatus,
    ProposedEntry,
    TreasuryAccount,
)
from fundcircle.voting.models import Award, RoundResult


@dataclass(frozen=True)
class AwardStatus:
    """One award's money state (the shape the transparency pages rely on)."""

    award_id: int
    round_id: int
    proposal_id: int
    proposal_title: str
    amount_minor: int
    currency: str
    state: AwardState
    oc_expense_id: str | None
    oc_expense_url: str
    decided_at: dt.datetime | None
    paid_at: dt.datetime | None
    #: why, in words (e.g. "paid 950 of 1,000 awarded")
    note: str = ""
    oc_status: str = ""
    oc_paid_minor: int = 0
    ledger_paid_minor: int = 0


def treasury_account(session: Session, circle_id: int) -> TreasuryAccount | None:
    return session.get(TreasuryAccount, circle_id)


def awards_of_circle(session: Session, circle_id: int) -> list[Award]:
    return list(session.scalars(
        sa.select(Award).join(Round, Round.id == Award.round_id).where(Round.circle_id == circle_id)
        .order_by(Award.round_id, Award.position)))


def award_in_circle(session: Session, circle_id: int, award_id: int) -> Award | None:
    """The award if it belongs to the circle (an id copied from another circle finds nothing)."""
    return session.scalar(sa.select(Award).join(Round, Round.id == Award.round_id)
                          .where(Award.id == award_id, Round.circle_id == circle_id))


def award_facts(session: Session, circle_id: int) -> list[AwardFacts]:
    rows = session.execute(
        sa.select(Award.id, Award.round_id, Award.proposal_id, Proposal.title, Award.amount_minor, Award.currency,
                  RoundResult.tallied_at, Award.earmarked_at)
        .join(Round, Round.id == Award.round_id).join(Proposal, Proposal.id == Award.proposal_id)
        .join(RoundResult, RoundResult.round_id == Award.round_id)
        .where(Round.circle_id == circle_id, Award.amount_minor > 0).order_by(Award.round_id, Award.position))
    return [AwardFacts(award_id=r[0], circle_id=circle_id, round_id=r[1], proposal_id=r[2], proposal_title=r[3],
                       amount_minor=r[4], currency=r[5], decided_at=r[6], earmarked=r[7] is not None) for r in rows]


def payouts_of_circle(session: Session, circle_id: int) -> dict[int, PayoutRecord]:
    return {p.award_id: p for p in session.scalars(sa.select(PayoutRecord).where(PayoutRecord.circle_id == circle_id))}


def payout_facts(records: dict[int, PayoutRecord]) -> list[PayoutFacts]:
    return [PayoutFacts(award_id=p.award_id, oc_expense_id=p.oc_expense_id, oc_public_id=p.oc_public_id,
                        oc_legacy_id=p.oc_legacy_id, oc_status=p.oc_status, oc_amount_minor=p.oc_amount_minor,
                        oc_currency=p.oc_currency, oc_url=p.oc_url, oc_paid_at=p.oc_paid_at)
            for p in records.values()]


def payout_facts_of_circle(session: Session, circle_id: int) -> dict[int, PayoutFacts]:
    """The circle's payout records as facts, by award id (one Core query: thousands of awards)."""
    c = PayoutRecord.__table__.c
    rows = session.execute(sa.select(c.award_id, c.oc_expense_id, c.oc_public_id, c.oc_legacy_id, c.oc_status,
                                     c.oc_amount_minor, c.oc_currency, c.oc_url, c.oc_paid_at)
                           .where(c.circle_id == circle_id))
    return {r[0]: PayoutFacts(award_id=r[0], oc_expense_id=r[1], oc_public_id=r[2], oc_legacy_id=r[3], oc_status=r[4],
                              oc_amount_minor=r[5], oc_currency=r[6], oc_url=r[7], oc_paid_at=r[8]) for r in rows}


def ledger_facts(session: Session, circle_id: int) -> LedgerFacts:
    """The ledger's OC payouts (amount and fee per transaction, reversed or not) and the keys of
    entries that already explain OC money. Reads the ledger tables; never writes them."""
    t, p, a = LedgerTransaction.__table__, LedgerPosting.__table__, LedgerAccount.__table__
    host_key, fee_key = chart.oc_host(circle_id).key, chart.fees_oc(circle_id).key
    payout_rows = session.execute(
        sa.select(t.c.id, t.c.idempotency_key, a.c.key, p.c.amount_minor)
        .select_from(t.join(p, p.c.transaction_id == t.c.id).join(a, a.c.id == p.c.account_id))
        .where(t.c.circle_id == circle_id, t.c.kind == "payout", t.c.idempotency_key.like("oc:expense:%"),
               a.c.key.in_([host_key, fee_key])))
    legs: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for tx_id, key, account_key, amount in payout_rows:
        legs[(tx_id, key)][account_key] = int(amount)
    reversed_ids = set(session.scalars(sa.select(t.c.reverses_id).where(
        t.c.circle_id == circle_id, t.c.reverses_id.is_not(None))))
    payouts = []
    for (tx_id, key), by_account in legs.items():
        fee = by_account.get(fee_key, 0)
        amount = -by_account.get(host_key, 0) - fee
        expense = key.split(":")[2]
        payouts.append(LedgerPayout(key=key, transaction_id=tx_id, expense_public_id=expense, amount_minor=amount,
                                    fee_minor=fee, reversed=tx_id in reversed_ids))
    payouts.sort(key=lambda lp: lp.transaction_id)
    explaining = frozenset(session.scalars(sa.select(t.c.idempotency_key).where(
        t.c.circle_id == circle_id, sa.or_(t.c.idempotency_key.like("oc:transaction:%"),
                                           t.c.idempotency_key.like("manual:oc:transaction:%")))))
    dismissed = frozenset(session.scalars(sa.select(ProposedEntry.ledger_key).where(
        ProposedEntry.circle_id == circle_id, ProposedEntry.status == ProposalStatus.DISMISSED.value)))
    return LedgerFacts(tuple(payouts), explaining, dismissed)


def stored_transactions(session: Session, circle_id: int, *, expense_rows_only: bool = False) -> list[OCTransaction]:
    """The circle's imported OC rows; ``expense_rows_only``: just those linked to an expense (all an
    award's state depends on, a small part of a busy collective's ledger)."""
    c = ImportedTransaction.__table__.c
    query = sa.select(
        c.oc_id, c.public_id, c.legacy_id, c.group_id, c.type, c.kind, c.is_refund, c.is_refunded, c.amount_minor,
        c.currency, c.occurred_at, c.account_slug, c.opposite_slug, c.expense_oc_id, c.expense_public_id,
        c.expense_legacy_id, c.description).where(c.circle_id == circle_id).order_by(c.id)
    if expense_rows_only:
        query = query.where(sa.or_(c.expense_public_id.is_not(None), c.expense_oc_id.is_not(None),
                                   c.expense_legacy_id.is_not(None)))
    rows = session.execute(query)
    return [OCTransaction(id=r[0], public_id=r[1], legacy_id=r[2], group=r[3], type=r[4], kind=r[5],
                          is_refund=bool(r[6]), is_refunded=bool(r[7]), amount_minor=int(r[8]), currency=r[9],
                          created_at=r[10], account_slug=r[11], opposite_slug=r[12], expense_id=r[13],
                          expense_public_id=r[14], expense_legacy_id=r[15], description=r[16]) for r in rows]


def current_report(session: Session, circle_id: int, *, transactions: list[OCTransaction] | None = None) -> Report:
    """Reconcile what is stored now (awards, payouts, ledger, imported OC transactions);
    ``transactions``: the circle's complete stored rows when the caller already holds them."""
    account = treasury_account(session, circle_id)
    rows = stored_transactions(session, circle_id) if transactions is None else transactions
    return reconcile(award_facts(session, circle_id), payout_facts_of_circle(session, circle_id).values(),
                     ledger_facts(session, circle_id), rows, account_slug=account.oc_account_slug if account else None)


def award_statuses(session: Session, circle_id: int, *, report: Report | None = None) -> list[AwardStatus]:
    """Every award of the circle (with an amount) and its state; see AwardState. ``report``: the
    circle's full current report when the caller already built it (the treasurer's dashboard)."""
    payouts = payout_facts_of_circle(session, circle_id)
    if report is None:
        # award states depend only on expense-linked rows (the public pages call this on every view)
        report = current_report(session, circle_id,
                                transactions=stored_transactions(session, circle_id, expense_rows_only=True))
    out = []
    for line in report.awards:
        f = line.facts
        p = payouts.get(f.award_id)
        out.append(AwardStatus(
            award_id=f.award_id, round_id=f.round_id, proposal_id=f.proposal_id, proposal_title=f.proposal_title,
            amount_minor=f.amount_minor, currency=f.currency, state=line.state,
            oc_expense_id=p.oc_public_id if p else None, oc_expense_url=p.oc_url if p else "",
            decided_at=f.decided_at, paid_at=p.oc_paid_at if p and line.oc_paid_minor > 0 else None,
            note=line.note, oc_status=line.oc_status, oc_paid_minor=line.oc_paid_minor,
            ledger_paid_minor=line.ledger_paid_minor))
    return out


def open_proposals(session: Session, circle_id: int) -> list[ProposedEntry]:
    return list(session.scalars(sa.select(ProposedEntry).where(
        ProposedEntry.circle_id == circle_id, ProposedEntry.status == ProposalStatus.OPEN.value)
        .order_by(ProposedEntry.id)))


def proposal_in_circle(session: Session, circle_id: int, proposal_id: int) -> ProposedEntry | None:
    return session.scalar(sa.select(ProposedEntry).where(ProposedEntry.id == proposal_id,
                                                         ProposedEntry.circle_id == circle_id))


def recent_imports(session: Session, circle_id: int, limit: int = 10) -> list[ImportRun]:
    return list(session.scalars(sa.select(ImportRun).where(ImportRun.circle_id == circle_id)
                                .order_by(ImportRun.id.desc()).limit(limit)))


def ledger_payout_transactions(session: Session, circle_id: int) -> list[LedgerPayout]:
    """Live (unreversed) ledger payouts of the circle: what a correction may reverse."""
    return [lp for lp in ledger_facts(session, circle_id).payouts if not lp.reversed]
