"""Read functions behind the public pages: results, the public ledger, award statuses, participation.

Everything here is public by construction: it reads only what the public may see (published
rounds, submitted proposals' public fields, stored results, sealed ledger transactions by kind,
amount and account) and never a name, an e-mail, a ballot, a conflict's free-text reason or a
ledger memo (memos are the treasurer's notes and may name people). Core queries where the ORM
would drag in relationships the page does not need (a Round loads its circle and every member).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.audit.models import AuditEvent
from fundcircle.circles.models import Circle, Membership
from fundcircle.ledger import accounts as chart
from fundcircle.ledger.models import LedgerAccount, LedgerPosting, LedgerSeal, LedgerTransaction
from fundcircle.proposals.models import Proposal, ProposalStatus, Screening
from fundcircle.rounds.models import Phase, Round
from fundcircle.voting.explain import Explanation, explain
from fundcircle.voting.models import Award, RoundResult, StoredBallot
from fundcircle.voting.registry import UnknownRule, get_rule

#: ConflictCategory value -> words for the published recusal log
RECUSAL_CATEGORY_LABELS = {
    "applicant": "applicant of the proposal",
    "payee": "receives the money",
    "co_applicant": "co-applicant",
    "family": "close personal relationship",
    "financial": "financial interest",
    "organisation": "works for or governs the applicant organisation",
    "other": "other",
}

#: ledger transaction kind -> words on the public ledger
KIND_LABELS = {
    "contribution": "Contribution",
    "transfer": "Transfer",
    "award": "Award",
    "payout": "Payout",
    "reversal": "Reversal",
    "refund": "Refund",
    "fee": "Fee",
    "adjustment": "Adjustment",
    "opening": "Opening balance",
}

#: what a rule's score means, by ballot kind (the results table's column heading)
SCORE_LABELS = {
    "approval": "Approvals",
    "points": "Votes",
    "scores": "Score",
    "ranking": "Score",
    "consent": "Consents",
    "allocation": "Allocated",
    "none": "Score",
}


# -- rounds and participation ----------------------------------------------------------------------

@dataclass(frozen=True)
class Participation:
    """Turnout of a tallied round: ballots counted out of the members at close."""

    ballot_count: int
    member_count: int
    excluded_count: int = 0

    @property
    def turnout(self) -> Fraction:
        return Fraction(self.ballot_count, self.member_count) if self.member_count else Fraction(0)

    @property
    def turnout_percent_text(self) -> str:
        """'67%' (rounded half up; display only)."""
        scaled = self.turnout * 100
        return f"{(scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)}%"


@dataclass(frozen=True)
class RoundSummary:
    """One row of a circle's round list."""

    round: Round
    phase: Phase
    is_tallied: bool
    participation: Participation | None
    funded_count: int
    awarded_minor: int


def _participation(result: RoundResult) -> Participation:
    excluded = result.outcome.get("excluded_ballots") or {}
    return Participation(result.ballot_count, result.member_count, len(excluded))


def results_of(session: Session, round_ids: Iterable[int]) -> dict[int, RoundResult]:
    ids = list(round_ids)
    if not ids:
        return {}
    return {r.round_id: r for r in session.scalars(sa.select(RoundResult).where(RoundResult.round_id.in_(ids)))}


def round_summaries(session: Session, rounds: Sequence[Round], now: dt.datetime) -> list[RoundSummary]:
    results = results_of(session, (r.id for r in rounds))
    rows = []
    for r in rounds:
        result = results.get(r.id)
        funded = (result.outcome.get("funded") or {}) if result is not None else {}
        rows.append(RoundSummary(
            round=r, phase=r.phase_at(now), is_tallied=result is not None,
            participation=_participation(result) if result is not None else None,
            funded_count=len(funded), awarded_minor=sum(int(v) for v in funded.values())))
    return rows


def member_count(session: Session, circle_id: int) -> int:
    m = Membership.__table__
    return session.scalar(sa.select(sa.func.count()).select_from(m).where(m.c.circle_id == circle_id)) or 0


# -- results -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProposalResult:
    """One proposal's line on the results page."""

    id: int
    title: str
    summary: str
    amount_requested_minor: int
    #: exact score as the rule defines it (None: the rule gave it none, e.g. not on the ballot)
    score: int | Fraction | None
    explanation: Explanation
    recusals: int
    #: (category label, count), most frequent first
    recusal_categories: tuple[tuple[str, int], ...]
    is_on_ballot: bool = True


@dataclass(frozen=True)
class ResultsView:
    round: Round
    result: RoundResult
    rule_name: str
    rule_description: str
    score_label: str
    proposals: list[ProposalResult]
    participation: Participation
    budget_minor: int
    used_minor: int
    params: dict[str, Any]
    excluded_ballots: dict[str, str] = field(default_factory=dict)

    @property
    def left_minor(self) -> int:
        return self.budget_minor - self.used_minor

    @property
    def funded(self) -> list[ProposalResult]:
        return [p for p in self.proposals if p.explanation.is_funded]

    @property
    def not_funded(self) -> list[ProposalResult]:
        return [p for p in self.proposals if not p.explanation.is_funded]

    @property
    def total_recusals(self) -> int:
        return sum(p.recusals for p in self.proposals)


def parse_score(raw: Any) -> int | Fraction | None:
    """A stored score: an int, or a Fraction stored as "p/q" (see voting.base.jsonable)."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        return None
    return int(value) if value.denominator == 1 else value


def format_score(value: int | Fraction | None) -> str:
    """A score for people: '12', '3.67' (two decimals for fractions; display only)."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    scaled = value * 100
    rounded = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
    sign = "-" if rounded < 0 else ""
    whole, cents = divmod(abs(rounded), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def results_view(session: Session, round_: Round) -> ResultsView | None:
    """Everything the results page shows, or None while the round has no stored result."""
    result = session.scalar(sa.select(RoundResult).where(RoundResult.round_id == round_.id))
    if result is None:
        return None
    outcome = result.outcome or {}
    funded = {str(k): int(v) for k, v in (outcome.get("funded") or {}).items()}
    scores = {str(k): parse_score(v) for k, v in (outcome.get("scores") or {}).items()}
    p = Proposal.__table__
    rows = session.execute(
        sa.select(p.c.id, p.c.title, p.c.summary, p.c.amount_requested_minor, p.c.screening)
        .where(p.c.round_id == round_.id, p.c.status == ProposalStatus.SUBMITTED.value)
        .order_by(p.c.id)).all()
    trace = result.trace or outcome.get("trace") or []
    on_ballot = [r for r in rows if r.screening != Screening.INELIGIBLE.value or str(r.id) in funded]
    titles = {str(r.id): r.title for r in rows}
    explanations = explain([str(r.id) for r in rows], funded, trace, titles)
    try:
        rule = get_rule(result.rule_id)
        rule_name, rule_description, kind = rule.name, rule.description, rule.ballot_kind.value
    except UnknownRule:  # a plugin rule no longer installed: the stored result still stands
        rule_name, rule_description, kind = result.rule_id, "", "none"
    lines = []
    for r in rows:
        pid = str(r.id)
        log = (result.recusal_log or {}).get(pid) or {}
        categories = sorted(((RECUSAL_CATEGORY_LABELS.get(c, c), int(n))
                             for c, n in (log.get("categories") or {}).items()), key=lambda x: (-x[1], x[0]))
        # the tally saw every submitted proposal not screened out (voting.operations.eligible_proposals)
        is_on_ballot = r in on_ballot
        explanation = explanations[pid]
        if not is_on_ballot:
            explanation = Explanation(pid, False, 0, "Not on the ballot: it was screened out before voting.", ())
        lines.append(ProposalResult(
            id=r.id, title=r.title, summary=r.summary, amount_requested_minor=r.amount_requested_minor,
            score=scores.get(pid), explanation=explanation, recusals=int(log.get("recusals") or 0),
            recusal_categories=tuple(categories), is_on_ballot=is_on_ballot))
    # funded first in selection order, then the rest by score (highest first), then by id
    lines.sort(key=lambda x: (0, x.explanation.selection_position or 0) if x.explanation.is_funded
               else (1, -(x.score if x.score is not None else -10**18), x.id))
    used = sum(funded.values())
    return ResultsView(
        round=round_, result=result, rule_name=rule_name, rule_description=rule_description,
        score_label=SCORE_LABELS.get(kind, "Score"), proposals=lines, participation=_participation(result),
        budget_minor=int(outcome.get("budget_minor") or round_.budget_minor), used_minor=used,
        params=dict(result.params or {}), excluded_ballots=dict(outcome.get("excluded_ballots") or {}))


# -- the public ledger ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerFilters:
    round_id: int | None = None
    kind: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @property
    def is_active(self) -> bool:
        return any(v is not None for v in (self.round_id, self.kind, self.date_from, self.date_to))


@dataclass(frozen=True)
class LedgerEntry:
    seq: int
    transaction_id: int
    kind: str
    effective_on: dt.date
    recorded_at: dt.datetime
    #: the money this transaction moved (sum of its debit legs), minor units of the circle currency
    moved_minor: int
    #: change of the pot (available, unawarded) and of the awarded-unpaid earmarks, natural side
    pot_change_minor: int
    earmarked_change_minor: int
    #: running balances after this transaction (whole ledger order, not the filtered view)
    pot_after_minor: int
    earmarked_after_minor: int
    round_id: int | None
    proposal_id: int | None
    external_source: str | None
    external_id: str | None
    reverses_seq: int | None
    reverses_kind: str | None
    #: (account label, signed natural-side change) per leg
    legs: tuple[tuple[str, int], ...] = ()

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.capitalize())

    @property
    def oc_expense_id(self) -> str | None:
        if self.external_source == "opencollective" and (self.external_id or "").startswith("expense:"):
            return self.external_id.split(":", 1)[1]  # type: ignore[union-attr]
        return None


@dataclass(frozen=True)
class LedgerPage:
    entries: list[LedgerEntry]
    total: int
    page: int
    per_page: int
    #: proposal id -> (title, round id), for the entries that name one
    proposals: dict[int, tuple[str, int]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _account_label(circle_id: int, key: str) -> str:
    labels = {
        chart.pot_available(circle_id).key: "Pot (not yet awarded)",
        chart.stripe_clearing(circle_id).key: "Card payments (Stripe)",
        chart.oc_host(circle_id).key: "Held by the fiscal host (Open Collective)",
        chart.fees_stripe(circle_id).key: "Card fees (Stripe)",
        chart.fees_oc(circle_id).key: "Host fees (Open Collective)",
        chart.suspense(circle_id).key: "Suspense (not yet matched)",
    }
    if key in labels:
        return labels[key]
    if chart.is_earmark_key(key):
        return f"Awarded to proposal #{key.split(':')[4]}, not yet paid"
    return key


def _earmark_like(circle_id: int) -> str:
    return f"{circle_id}:pot:%:earmarked:%"


def _ledger_rows(circle_id: int) -> sa.Subquery:
    """Per sealed transaction of the circle: its deltas and the running balances (window sums over
    the whole ledger, so a filtered view still shows true balances)."""
    t, s, p, a = (LedgerTransaction.__table__, LedgerSeal.__table__, LedgerPosting.__table__,
                  LedgerAccount.__table__)
    pot_key = chart.pot_available(circle_id).key
    is_pot = a.c.key == pot_key
    is_earmark = a.c.key.like(_earmark_like(circle_id))
    zero = sa.literal(0, sa.BigInteger)
    deltas = (
        sa.select(
            t.c.id.label("transaction_id"), s.c.seq, t.c.kind, t.c.effective_on, t.c.recorded_at,
            t.c.external_source, t.c.external_id, t.c.reverses_id,
            sa.func.sum(sa.case((p.c.amount_minor > 0, p.c.amount_minor), else_=zero)).label("moved"),
            sa.func.sum(sa.case((is_pot, p.c.amount_minor), else_=zero)).label("pot_delta"),
            sa.func.sum(sa.case((is_earmark, p.c.amount_minor), else_=zero)).label("earmark_delta"),
            sa.func.max(sa.case((is_earmark, a.c.key), else_=sa.null())).label("earmark_key"),
        )
        .select_from(t.join(s, s.c.transaction_id == t.c.id).join(p, p.c.transaction_id == t.c.id)
                     .join(a, a.c.id == p.c.account_id))
        .where(t.c.circle_id == circle_id)
        .group_by(t.c.id, s.c.seq, t.c.kind, t.c.effective_on, t.c.recorded_at, t.c.external_source,
                  t.c.external_id, t.c.reverses_id)
    ).subquery("deltas")
    window = {"order_by": deltas.c.seq}
    return sa.select(
        deltas,
        # liabilities are credit-normal: natural balance = -(debit-positive sum)
        (-sa.func.sum(deltas.c.pot_delta).over(**window)).label("pot_after"),
        (-sa.func.sum(deltas.c.earmark_delta).over(**window)).label("earmarked_after"),
    ).subquery("running")


def ledger_page(session: Session, circle: Circle, filters: LedgerFilters, page: int, per_page: int) -> LedgerPage:
    """One page of the circle's public ledger, newest first. ``page`` is clamped by the caller."""
    running = _ledger_rows(circle.id)
    conditions = []
    if filters.kind is not None:
        conditions.append(running.c.kind == filters.kind)
    if filters.date_from is not None:
        conditions.append(running.c.effective_on >= filters.date_from)
    if filters.date_to is not None:
        conditions.append(running.c.effective_on <= filters.date_to)
    if filters.round_id is not None:
        conditions.append(running.c.earmark_key.like(f"{circle.id}:pot:{filters.round_id}:earmarked:%"))
    total = session.scalar(sa.select(sa.func.count()).select_from(running).where(*conditions)) or 0
    rows = session.execute(
        sa.select(running).where(*conditions).order_by(running.c.seq.desc())
        .limit(per_page).offset((page - 1) * per_page)).all()
    entries = _entries(session, circle.id, rows)
    proposal_ids = {e.proposal_id for e in entries if e.proposal_id is not None}
    return LedgerPage(entries=entries, total=total, page=page, per_page=per_page,
                      proposals=proposal_titles(session, circle.id, proposal_ids))


def _entries(session: Session, circle_id: int, rows: Sequence[Any]) -> list[LedgerEntry]:
    t, s, p, a = (LedgerTransaction.__table__, LedgerSeal.__table__, LedgerPosting.__table__,
                  LedgerAccount.__table__)
    ids = [r.transaction_id for r in rows]
    legs: dict[int, list[tuple[str, int]]] = {}
    reversed_of: dict[int, tuple[int, str]] = {}
    if ids:
        for leg in session.execute(
                sa.select(p.c.transaction_id, a.c.key, a.c.normal_side, p.c.amount_minor)
                .join(a, a.c.id == p.c.account_id).where(p.c.transaction_id.in_(ids)).order_by(p.c.id)):
            natural = leg.amount_minor if leg.normal_side == "debit" else -leg.amount_minor
            legs.setdefault(leg.transaction_id, []).append((_account_label(circle_id, leg.key), natural))
        originals = [r.reverses_id for r in rows if r.reverses_id is not None]
        if originals:
            for orig in session.execute(sa.select(t.c.id, t.c.kind, s.c.seq).join(s, s.c.transaction_id == t.c.id)
                                        .where(t.c.id.in_(originals))):
                reversed_of[orig.id] = (int(orig.seq), orig.kind)
    entries = []
    for r in rows:
        round_id = proposal_id = None
        if r.earmark_key:
            parts = r.earmark_key.split(":")
            round_id, proposal_id = int(parts[2]), int(parts[4])
        original = reversed_of.get(r.reverses_id) if r.reverses_id is not None else None
        entries.append(LedgerEntry(
            seq=int(r.seq), transaction_id=r.transaction_id, kind=r.kind, effective_on=r.effective_on,
            recorded_at=r.recorded_at, moved_minor=int(r.moved or 0), pot_change_minor=-int(r.pot_delta or 0),
            earmarked_change_minor=-int(r.earmark_delta or 0), pot_after_minor=int(r.pot_after or 0),
            earmarked_after_minor=int(r.earmarked_after or 0), round_id=round_id, proposal_id=proposal_id,
            external_source=r.external_source, external_id=r.external_id,
            reverses_seq=original[0] if original else None, reverses_kind=original[1] if original else None,
            legs=tuple(legs.get(r.transaction_id, ()))))
    return entries


def proposal_titles(session: Session, circle_id: int, proposal_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """Titles of submitted proposals of the circle (an id of another circle finds nothing)."""
    ids = list(proposal_ids)
    if not ids:
        return {}
    p, r = Proposal.__table__, Round.__table__
    return {row.id: (row.title, row.round_id) for row in session.execute(
        sa.select(p.c.id, p.c.title, p.c.round_id).join(r, r.c.id == p.c.round_id)
        .where(p.c.id.in_(ids), r.c.circle_id == circle_id, r.c.published_at.is_not(None)))}


def ledger_round_ids(session: Session, circle_id: int) -> set[int]:
    """Rounds of the circle that appear on the ledger (have an earmark account)."""
    a = LedgerAccount.__table__
    keys = session.scalars(sa.select(a.c.key).where(a.c.circle_id == circle_id,
                                                    a.c.key.like(_earmark_like(circle_id))))
    return {int(k.split(":")[2]) for k in keys if chart.is_earmark_key(k)}


# -- award statuses (decided -> earmarked -> paid) --------------------------------------------------

AWARD_STATUS_LABELS = {
    "decided": "Decided, not yet set aside",
    "awarded": "Awarded (money set aside)",
    "paid": "Paid",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True)
class AwardStatus:
    round_id: int
    proposal_id: int
    title: str
    amount_minor: int
    currency: str
    #: decided | awarded | paid | cancelled
    status: str
    decided_at: dt.datetime | dt.date | None
    paid_on: dt.date | None = None
    oc_expense_id: str | None = None
    oc_expense_url: str | None = None
    #: why the money is not set aside yet (e.g. the pot was short at the close)
    note: str = ""

    @property
    def status_label(self) -> str:
        return AWARD_STATUS_LABELS.get(self.status, self.status)


def ledger_award_statuses(session: Session, circle_id: int, round_id: int | None = None) -> list[AwardStatus]:
    """Each award of the circle with its status as the ledger shows it, oldest round first.

    An award is every funded proposal of a stored result plus every earmark account the ledger
    holds (awards recorded before or outside a stored tally). decided: no earmark posted yet;
    awarded: the earmark is posted; paid: a payout cleared the earmark (with the Open Collective
    expense id); cancelled: the award was reversed.
    """
    aw, p, r = Award.__table__, Proposal.__table__, Round.__table__
    res = RoundResult.__table__
    q = (sa.select(aw.c.round_id, aw.c.proposal_id, aw.c.amount_minor, aw.c.currency, aw.c.earmarked_at,
                   aw.c.earmark_problem, res.c.tallied_at)
         .join(r, r.c.id == aw.c.round_id).join(res, res.c.round_id == aw.c.round_id)
         .where(r.c.circle_id == circle_id, r.c.published_at.is_not(None)).order_by(aw.c.round_id, aw.c.position))
    if round_id is not None:
        q = q.where(aw.c.round_id == round_id)
    awards = {(w.round_id, w.proposal_id): w for w in session.execute(q)}
    t, s, lp, a = (LedgerTransaction.__table__, LedgerSeal.__table__, LedgerPosting.__table__,
                   LedgerAccount.__table__)
    like = _earmark_like(circle_id) if round_id is None else f"{circle_id}:pot:{round_id}:earmarked:%"
    events = session.execute(
        sa.select(a.c.key, a.c.currency, lp.c.amount_minor, t.c.id, t.c.kind, t.c.reverses_id, t.c.effective_on,
                  t.c.recorded_at, t.c.external_source, t.c.external_id)
        .select_from(lp.join(a, a.c.id == lp.c.account_id).join(t, t.c.id == lp.c.transaction_id)
                     .join(s, s.c.transaction_id == t.c.id))
        .where(a.c.circle_id == circle_id, a.c.key.like(like))
        .order_by(s.c.seq)).all()
    kind_of = {e.id: e.kind for e in events}
    by_pair: dict[tuple[int, int], list[Any]] = {}
    for e in events:
        if chart.is_earmark_key(e.key):
            parts = e.key.split(":")
            by_pair.setdefault((int(parts[2]), int(parts[4])), []).append(e)
    pairs = sorted(set(awards) | set(by_pair))
    titles = proposal_titles(session, circle_id, {pid for _rid, pid in pairs})
    statuses = []
    for pair in pairs:
        if pair[1] not in titles:  # a proposal of an unpublished round: not public
            continue
        w = awards.get(pair)
        status = "awarded" if w is not None and w.earmarked_at is not None else "decided"
        amount_minor = w.amount_minor if w is not None else 0
        currency = w.currency if w is not None else ""
        decided_at = w.tallied_at if w is not None else None
        paid_on, expense_id = None, None
        for e in by_pair.get(pair, []):
            currency = currency or e.currency
            if e.kind == "award":
                status = "awarded"
                if w is None:  # credit-normal earmark: a credit (negative) is the awarded amount
                    amount_minor, decided_at = -int(e.amount_minor), e.effective_on
            elif e.kind == "payout":
                status, paid_on = "paid", e.effective_on
                if e.external_source == "opencollective" and (e.external_id or "").startswith("expense:"):
                    expense_id = e.external_id.split(":", 1)[1]
            elif e.kind == "reversal":
                reversed_kind = kind_of.get(e.reverses_id)
                if reversed_kind == "award":
                    status = "cancelled"
                elif reversed_kind == "payout":
                    status, paid_on, expense_id = "awarded", None, None
        statuses.append(AwardStatus(
            round_id=pair[0], proposal_id=pair[1], title=titles[pair[1]][0], amount_minor=amount_minor,
            currency=currency, status=status, decided_at=decided_at, paid_on=paid_on, oc_expense_id=expense_id,
            note=(w.earmark_problem if w is not None and status == "decided" else "")))
    return statuses


# -- freshness (ETag / Last-Modified sources) -------------------------------------------------------

def circle_freshness_sources(session: Session, circle_id: int, rounds: Sequence[Round],
                             now: dt.datetime) -> tuple[list[Any], list[dt.datetime | None]]:
    """(fingerprint parts, timestamps) of everything the circle's public pages read.

    * the circle's audit log position: every change of a round, proposal, screening or
      membership is audited with the circle's id (the round table has no updated_at);
    * the ledger head (global seq, and when it was sealed);
    * stored results (how many, the latest tally) and award earmarks;
    * ballots of the rounds shown (count, casts, latest cast): the round page shows turnout;
    * each round's phase now, and the latest phase boundary that has passed.
    """
    ae = AuditEvent.__table__
    audit = session.execute(sa.select(sa.func.max(ae.c.id), sa.func.max(ae.c.created_at))
                            .where(ae.c.circle_id == circle_id)).one()
    s = LedgerSeal.__table__
    head = session.execute(sa.select(s.c.seq, s.c.sealed_at).order_by(s.c.seq.desc()).limit(1)).first()
    res, aw, r = RoundResult.__table__, Award.__table__, Round.__table__
    results = session.execute(
        sa.select(sa.func.count(res.c.id), sa.func.max(res.c.tallied_at))
        .join(r, r.c.id == res.c.round_id).where(r.c.circle_id == circle_id)).one()
    earmarks = session.execute(
        sa.select(sa.func.count(aw.c.earmarked_at), sa.func.max(aw.c.earmarked_at))
        .join(r, r.c.id == aw.c.round_id).where(r.c.circle_id == circle_id)).one()
    # ballots: the round page shows turnout (and, where a round allows it, running results) while
    # voting is open
    b = StoredBallot.__table__
    ballots = session.execute(
        sa.select(sa.func.count(b.c.id), sa.func.max(b.c.updated_at), sa.func.sum(b.c.times_cast))
        .where(b.c.round_id.in_([x.id for x in rounds]))).one() if rounds else (0, None, 0)
    phases = [(x.id, x.phase_at(now).value) for x in rounds]
    boundaries = [b for x in rounds if x.published_at is not None
                  for b in (x.published_at, x.submissions_open_at, x.submissions_close_at,
                            x.deliberation_open_at, x.voting_open_at, x.voting_close_at) if b <= now]
    parts = [circle_id, audit[0], head.seq if head else 0, results[0], earmarks[0], ballots[0], ballots[2], phases]
    stamps = [audit[1], head.sealed_at if head else None, results[1], earmarks[1], ballots[1], *boundaries]
    return parts, stamps


# -- circle overview ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CircleOverview:
    member_count: int
    #: fundcircle.ledger.CircleBalances (pot available, earmarked, paid out, …)
    balances: Any
    #: fundcircle.ledger.Head of the whole chain (its hash commits to every transaction)
    head: Any
    rounds: list[RoundSummary]


def circle_overview(session: Session, circle: Circle, rounds: Sequence[Round], now: dt.datetime) -> CircleOverview:
    from fundcircle import ledger

    return CircleOverview(
        member_count=member_count(session, circle.id),
        balances=ledger.circle_balances(session, circle.id, circle.currency),
        head=ledger.head(session),
        rounds=round_summaries(session, rounds, now),
    )
