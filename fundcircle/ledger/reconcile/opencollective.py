"""Reconcile a circle's awards and ledger against its Open Collective activity (pure: no database).

Inputs are plain facts loaded in bulk by the treasury package: the awards, fundcircle's payout
records (which OC expense pays which award), the ledger's OC payouts, the keys of ledger entries
that already explain OC money, and the collective's OC transactions (from the API or a CSV).
Output: one state per award, the OC money nothing explains, and the ledger entries to propose.

Matching is by index (dicts keyed by the expense's three ids and by group), never nested loops:
100,000 transactions reconcile in well under a second (bench/reconcile.py).

Decisions:
- OC is reconciled on its **transactions**, not on the expense status (``PAID`` is not final:
  mark-as-unpaid moves it back, and writes a reversing group). What left the pot for an award is
  −Σ EXPENSE rows of its expense (refunds cancel), its fee −Σ PAYMENT_PROCESSOR_FEE/COVER rows.
- A ledger payout is keyed ``oc:expense:<publicId>:paid``; after a correction reversed it, the next
  payout of the same expense is ``…:paid:2`` and so on (a reversed key cannot be posted again).
- Unexplained OC money is grouped by OC ``group`` and keyed by the group's main row
  (``oc:transaction:<ref>``; a contribution recorded into the pot is ``manual:oc:transaction:<ref>``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fundcircle.integrations.opencollective import OCTransaction
from fundcircle.ledger.money import format_money
from fundcircle.treasury.models import AwardState, ProposalKind

EXPENSE_KINDS = frozenset({"EXPENSE"})
FEE_KINDS = frozenset({"PAYMENT_PROCESSOR_FEE", "PAYMENT_PROCESSOR_COVER"})
INCOME_KINDS = ("CONTRIBUTION", "ADDED_FUNDS")
APPROVED_STATUSES = frozenset({"APPROVED", "SCHEDULED_FOR_PAYMENT", "PROCESSING"})
CLOSED_STATUSES = frozenset({"REJECTED", "CANCELED", "SPAM", "INVITE_DECLINED"})


def payout_key(expense_public_id: str, attempt: int = 1) -> str:
    """The ledger key of the ``attempt``-th payout of an OC expense (1 = the first)."""
    base = f"oc:expense:{expense_public_id}:paid"
    return base if attempt == 1 else f"{base}:{attempt}"


def suspense_key(ref: str) -> str:
    return f"oc:transaction:{ref}"


def contribution_reference(ref: str) -> str:
    """``manual_reference`` for ``record_contribution`` (its key is ``manual:<reference>``)."""
    return f"oc:transaction:{ref}"


def contribution_key(ref: str) -> str:
    return f"manual:{contribution_reference(ref)}"


def release_key(expense_public_id: str) -> str:
    return f"oc:expense:{expense_public_id}:release"


@dataclass(frozen=True)
class AwardFacts:
    award_id: int
    circle_id: int
    round_id: int
    proposal_id: int
    proposal_title: str
    amount_minor: int
    currency: str
    decided_at: dt.datetime | None
    earmarked: bool


@dataclass(frozen=True)
class PayoutFacts:
    award_id: int
    oc_expense_id: str | None
    oc_public_id: str | None
    oc_legacy_id: int | None
    oc_status: str
    oc_amount_minor: int | None
    oc_currency: str
    oc_url: str = ""
    oc_paid_at: dt.datetime | None = None


@dataclass(frozen=True)
class LedgerPayout:
    """One ledger payout transaction of an OC expense."""

    key: str
    transaction_id: int
    expense_public_id: str
    amount_minor: int
    fee_minor: int
    reversed: bool


@dataclass(frozen=True)
class LedgerFacts:
    payouts: tuple[LedgerPayout, ...] = ()
    #: keys of posted entries that explain OC money (``oc:transaction:…``, ``manual:oc:transaction:…``)
    explaining_keys: frozenset[str] = frozenset()
    #: keys whose proposals the treasurer dismissed (explained by a decision, not by an entry)
    dismissed_keys: frozenset[str] = frozenset()


@dataclass
class Proposal:
    kind: ProposalKind
    ledger_key: str
    currency: str
    amount_minor: int
    fee_minor: int = 0
    award_id: int | None = None
    oc_ref: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d


@dataclass
class AwardLine:
    facts: AwardFacts
    state: AwardState
    note: str = ""
    oc_expense_public_id: str | None = None
    oc_status: str = ""
    oc_paid_minor: int = 0
    oc_fee_minor: int = 0
    ledger_paid_minor: int = 0

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {"award_id": f.award_id, "round_id": f.round_id, "proposal_id": f.proposal_id,
                "proposal_title": f.proposal_title, "amount_minor": f.amount_minor, "currency": f.currency,
                "state": self.state.value, "note": self.note, "oc_expense": self.oc_expense_public_id,
                "oc_status": self.oc_status, "oc_paid_minor": self.oc_paid_minor, "oc_fee_minor": self.oc_fee_minor,
                "ledger_paid_minor": self.ledger_paid_minor}


@dataclass
class Unexplained:
    """OC money in one group that no award, payout or recorded contribution explains."""

    group: str
    ref: str
    kind: str
    net_minor: int
    gross_minor: int
    currency: str
    description: str
    occurred_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["occurred_at"] = self.occurred_at.isoformat() if self.occurred_at else None
        return d


@dataclass
class Report:
    awards: list[AwardLine]
    unexplained: list[Unexplained]
    proposals: list[Proposal]
    transactions_seen: int
    transactions_other_accounts: int = 0

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in AwardState}
        for line in self.awards:
            counts[line.state.value] += 1
        counts["unexplained"] = len(self.unexplained)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts(), "awards": [a.to_dict() for a in self.awards],
                "unexplained": [u.to_dict() for u in self.unexplained],
                "proposals": [p.to_dict() for p in self.proposals], "transactions_seen": self.transactions_seen}


def reconcile(awards: Iterable[AwardFacts], payouts: Iterable[PayoutFacts], ledger: LedgerFacts,
              transactions: Iterable[OCTransaction], *, account_slug: str | None = None) -> Report:
    """Compare; see the module docstring. Pure and deterministic (order of awards kept)."""
    payout_of: dict[int, PayoutFacts] = {}
    award_by_expense: dict[str | int, int] = {}
    for p in payouts:
        payout_of[p.award_id] = p
        for ident in (p.oc_expense_id, p.oc_public_id, p.oc_legacy_id):
            if ident is not None:
                award_by_expense[ident] = p.award_id

    ledger_by_expense: dict[str, list[LedgerPayout]] = defaultdict(list)
    for lp in ledger.payouts:
        ledger_by_expense[lp.expense_public_id].append(lp)

    txs_of_award: dict[int, list[OCTransaction]] = defaultdict(list)
    other_groups: dict[str, list[OCTransaction]] = defaultdict(list)
    seen = other = 0
    for t in transactions:
        seen += 1
        if account_slug and t.account_slug and t.account_slug != account_slug:
            other += 1
            continue
        award_id = None
        for ident in (t.expense_public_id, t.expense_id, t.expense_legacy_id):
            if ident is not None:
                award_id = award_by_expense.get(ident)
                if award_id is not None:
                    break
        if award_id is not None:
            txs_of_award[award_id].append(t)
        else:
            other_groups[t.group].append(t)

    lines: list[AwardLine] = []
    proposals: list[Proposal] = []
    for facts in awards:
        line, props = _award_line(facts, payout_of.get(facts.award_id), txs_of_award.get(facts.award_id, []),
                                  ledger_by_expense)
        lines.append(line)
        proposals.extend(props)

    unexplained: list[Unexplained] = []
    for group, rows in other_groups.items():
        item = _unexplained(group, rows, ledger)
        if item is None:
            continue
        unexplained.append(item)
        proposals.extend(_unexplained_proposals(item))
    unexplained.sort(key=lambda u: (u.occurred_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc), u.ref))
    return Report(lines, unexplained, proposals, seen, other)


def _award_line(facts: AwardFacts, payout: PayoutFacts | None, txs: list[OCTransaction],
                ledger_by_expense: Mapping[str, list[LedgerPayout]]) -> tuple[AwardLine, list[Proposal]]:
    cur = facts.currency
    if payout is None or not payout.oc_public_id:
        return AwardLine(facts, AwardState.AWARDED, note="no Open Collective expense yet"), []
    pid = payout.oc_public_id
    oc_paid = -sum(t.amount_minor for t in txs if t.kind in EXPENSE_KINDS)
    oc_fee = -sum(t.amount_minor for t in txs if t.kind in FEE_KINDS)
    tx_currencies = {t.currency for t in txs}
    history = ledger_by_expense.get(pid, [])
    live = [lp for lp in history if not lp.reversed]
    ledger_paid = sum(lp.amount_minor for lp in live)
    ledger_fee = sum(lp.fee_minor for lp in live)
    line = AwardLine(facts, AwardState.AWARDED, oc_expense_public_id=pid, oc_status=payout.oc_status,
                     oc_paid_minor=oc_paid, oc_fee_minor=oc_fee, ledger_paid_minor=ledger_paid)
    props: list[Proposal] = []

    wrong_currency = sorted(c for c in tx_currencies | ({payout.oc_currency} if payout.oc_currency else set())
                            if c != cur)
    if wrong_currency:
        line.state = AwardState.AMOUNT_DIFFERS
        line.note = (f"Open Collective shows {', '.join(wrong_currency)}, the award is in {cur}: fix the expense "
                     f"(or the collective's currency) in Open Collective; fundcircle never converts implicitly")
        return line, props

    if oc_paid > 0:
        if live:
            if ledger_paid == oc_paid and ledger_fee == oc_fee:
                line.state = AwardState.PAID
                if oc_paid != facts.amount_minor:
                    line.note = f"paid {format_money(oc_paid, cur)} of {format_money(facts.amount_minor, cur)} awarded (confirmed)"
                return line, props
            line.state = AwardState.AMOUNT_DIFFERS
            line.note = (f"the ledger recorded {format_money(ledger_paid, cur)} (fee {format_money(ledger_fee, cur)}), "
                         f"Open Collective paid {format_money(oc_paid, cur)} (fee {format_money(oc_fee, cur)}): "
                         f"reverse the ledger payout and record what was paid")
            for lp in live:
                props.append(Proposal(ProposalKind.REVERSE_PAYOUT, f"reversal:{lp.transaction_id}", cur,
                                      lp.amount_minor, lp.fee_minor, facts.award_id, pid,
                                      f"Correction: the ledger payout of {pid} ({format_money(lp.amount_minor, cur)}) "
                                      f"does not match what Open Collective paid ({format_money(oc_paid, cur)})",
                                      {"transaction_id": lp.transaction_id, "ledger_key": lp.key}))
            props.extend(_payout_proposals(facts, pid, oc_paid, oc_fee, len(history) + 1))
            return line, props
        props.extend(_payout_proposals(facts, pid, oc_paid, oc_fee, len(history) + 1))
        if oc_paid == facts.amount_minor:
            line.state = AwardState.PAID_NOT_IN_LEDGER
            line.note = "Open Collective paid it; confirm the proposed payout entry"
        else:
            line.state = AwardState.AMOUNT_DIFFERS
            line.note = f"Open Collective paid {format_money(oc_paid, cur)}, the award is {format_money(facts.amount_minor, cur)}"
        return line, props

    if live:
        line.state = AwardState.MISSING_IN_OC
        refunded = any(t.is_refund for t in txs)
        line.note = ("Open Collective marked the expense as unpaid" if refunded else
                     "the ledger records a payout Open Collective does not show")
        for lp in live:
            props.append(Proposal(ProposalKind.REVERSE_PAYOUT, f"reversal:{lp.transaction_id}", cur, lp.amount_minor,
                                  lp.fee_minor, facts.award_id, pid,
                                  f"Correction: {line.note}; reverse the ledger payout of "
                                  f"{format_money(lp.amount_minor, cur)}",
                                  {"transaction_id": lp.transaction_id, "ledger_key": lp.key}))
        return line, props

    status = payout.oc_status
    if payout.oc_amount_minor is not None and payout.oc_amount_minor != facts.amount_minor \
            and status not in CLOSED_STATUSES:
        line.state = AwardState.AMOUNT_DIFFERS
        line.note = (f"the Open Collective expense asks for {format_money(payout.oc_amount_minor, cur)}, the award "
                     f"is {format_money(facts.amount_minor, cur)}: fix the expense in Open Collective before paying")
    elif status in APPROVED_STATUSES:
        line.state = AwardState.APPROVED
    elif status in CLOSED_STATUSES:
        line.state = AwardState.AWARDED
        line.note = f"the Open Collective expense was {status.lower().replace('_', ' ')}; create a new payout"
    else:
        line.state = AwardState.EXPENSE_CREATED
        if status == "ERROR":
            line.note = "the payout failed in Open Collective; it needs editing and re-approval there"
        elif status == "DRAFT":
            line.note = "the payee was invited to submit payout details"
    return line, props


def _payout_proposals(facts: AwardFacts, pid: str, paid_minor: int, fee_minor: int, attempt: int) -> list[Proposal]:
    cur = facts.currency
    key = payout_key(pid, attempt)
    extra = ""
    if paid_minor > facts.amount_minor:
        extra = f"; {format_money(paid_minor - facts.amount_minor, cur)} more than awarded comes from the pot"
    props = [Proposal(ProposalKind.RECORD_PAYOUT, key, cur, paid_minor, max(fee_minor, 0), facts.award_id, pid,
                      f"Open Collective paid {pid} for “{facts.proposal_title}”: {format_money(paid_minor, cur)}"
                      f"{f' plus a fee of {format_money(fee_minor, cur)}' if fee_minor > 0 else ''}{extra}",
                      {"attempt": attempt, "award_minor": facts.amount_minor})]
    if 0 < paid_minor < facts.amount_minor:
        rest = facts.amount_minor - paid_minor
        props.append(Proposal(ProposalKind.RELEASE_REMAINDER, release_key(pid), cur, rest, 0, facts.award_id, pid,
                              f"Open Collective paid {format_money(paid_minor, cur)} of the "
                              f"{format_money(facts.amount_minor, cur)} awarded: return the remaining "
                              f"{format_money(rest, cur)} of the earmark to the pot"))
    return props


def _unexplained(group: str, rows: list[OCTransaction], ledger: LedgerFacts) -> Unexplained | None:
    net = sum(t.amount_minor for t in rows)
    main = next((t for t in rows if t.kind in INCOME_KINDS), None) or next(
        (t for t in rows if t.kind in EXPENSE_KINDS), None) or max(rows, key=lambda t: abs(t.amount_minor))
    ref = main.ref
    keys = {suspense_key(ref), contribution_key(ref)}
    if keys & ledger.explaining_keys or keys & ledger.dismissed_keys or net == 0:
        return None
    return Unexplained(group=group, ref=ref, kind=main.kind, net_minor=net, gross_minor=main.amount_minor,
                       currency=main.currency, description=main.description, occurred_at=main.created_at)


def _unexplained_proposals(u: Unexplained) -> list[Proposal]:
    props = []
    if u.kind in INCOME_KINDS and u.gross_minor > 0 and 0 < u.net_minor <= u.gross_minor:
        props.append(Proposal(ProposalKind.RECORD_CONTRIBUTION, contribution_key(u.ref), u.currency, u.gross_minor,
                              u.gross_minor - u.net_minor, None, u.ref,
                              f"Record the Open Collective {u.kind.lower().replace('_', ' ')} {u.ref} "
                              f"(“{u.description}”) into the pot: {format_money(u.gross_minor, u.currency)} gross, "
                              f"{format_money(u.gross_minor - u.net_minor, u.currency)} fees", {"group": u.group}))
    direction = "came in" if u.net_minor > 0 else "went out"
    hint = (" If it is a Stripe payout the ledger already holds as a transfer to the host, dismiss both "
            "proposals with that note instead." if u.kind == "ADDED_FUNDS" else "")
    props.append(Proposal(ProposalKind.HOLD_IN_SUSPENSE, suspense_key(u.ref), u.currency, u.net_minor, 0, None, u.ref,
                          f"{format_money(abs(u.net_minor), u.currency)} {direction} in Open Collective ({u.kind}, “{u.description}”) that "
                          f"nothing in fundcircle explains: hold it in suspense until it is understood.{hint}",
                          {"group": u.group}))
    return props
