"""Read functions behind the public pages: results, the public ledger, award statuses, participation.

Everything here is public by construction: it reads only what the public may see (published
rounds, submitted proposals' public fields, stored results, sealed ledger transactions by kind,
amount and account) and never a name, an e-mail, a ballot, a conflict's free-text reason or a
ledger memo (memos are the treasurer's notes and may name people). A consent round's concern and
objection reasons are public as the tally's trace holds them: per proposal, with no name. Core
queries where the ORM would drag in relationships the page does not need (a Round loads its
circle and every member).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, lazyload

from fundcircle.circles.models import Circle, Membership
from fundcircle.ledger import accounts as chart
from fundcircle.ledger.models import LedgerAccount, LedgerPosting, LedgerSeal, LedgerTransaction
from fundcircle.proposals.models import Proposal, ProposalStatus, Screening
from fundcircle.rounds.models import Phase, Round
from fundcircle.transparency.consent_reasons import StatedReason, reasons_by_proposal
from fundcircle.voting.explain import Explanation, explain
from fundcircle.voting.models import RoundResult
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
    # lazyload: a result eagerly loads its awards, their proposals, rounds, circle and members
    return {r.round_id: r for r in session.scalars(sa.select(RoundResult).options(lazyload("*"))
                                                   .where(RoundResult.round_id.in_(ids)))}


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
    #: consent rounds: the concerns and objections members raised, with their reasons (no names)
    stated_reasons: tuple[StatedReason, ...] = ()


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
    #: the rule's ballot kind ("approval", "consent", ...; "none" for a rule no longer installed)
    ballot_kind: str = "none"

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
    result = session.scalar(sa.select(RoundResult).options(lazyload("*")).where(RoundResult.round_id == round_.id))
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
    stated = reasons_by_proposal(trace) if kind == "consent" else {}
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
            recusal_categories=tuple(categories), is_on_ballot=is_on_ballot, stated_reasons=stated.get(pid, ())))
    # funded first in selection order, then the rest by score (highest first), then by id
    lines.sort(key=lambda x: (0, x.explanation.selection_position or 0) if x.explanation.is_funded
               else (1, -(x.score if x.score is not None else -10**18), x.id))
    used = sum(funded.values())
    return ResultsView(
        round=round_, result=result, rule_name=rule_name, rule_description=rule_description,
        score_label=SCORE_LABELS.get(kind, "Score"), proposals=lines, participation=_participation(result),
        budget_minor=int(outcome.get("budget_minor") or round_.budget_minor), used_minor=used,
        params=dict(result.params or {}), excluded_ballots=dict(outcome.get("excluded_ballots") or {}),
        ballot_kind=kind)


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


def _ledger_rows() -> sa.Subquery:
    """Per sealed transaction of a circle: its deltas and the running balances (window sums over
    the whole ledger, so a filtered view still shows true balances). Parameters: ``circle_id``,
    ``pot_key``, ``earmark_like``."""
    t, s, p, a = (LedgerTransaction.__table__, LedgerSeal.__table__, LedgerPosting.__table__,
                  LedgerAccount.__table__)
    is_pot = a.c.key == sa.bindparam("pot_key", type_=sa.String)
    is_earmark = a.c.key.like(sa.bindparam("earmark_like", type_=sa.String))
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
        .where(t.c.circle_id == sa.bindparam("circle_id", type_=sa.Integer))
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


#: (count statement, page statement) per combination of active filters, built once: building
#: these statements cost more per request than running them
_LEDGER_STATEMENTS: dict[tuple[bool, ...], tuple[sa.Select[Any], sa.Select[Any]]] = {}


def _ledger_statements(active: tuple[bool, bool, bool, bool]) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """Statements for the filters that are set: (kind, date_from, date_to, round)."""
    cached = _LEDGER_STATEMENTS.get(active)
    if cached is not None:
        return cached
    running = _ledger_rows()
    conditions = []
    if active[0]:
        conditions.append(running.c.kind == sa.bindparam("kind", type_=sa.String))
    if active[1]:
        conditions.append(running.c.effective_on >= sa.bindparam("date_from", type_=sa.Date))
    if active[2]:
        conditions.append(running.c.effective_on <= sa.bindparam("date_to", type_=sa.Date))
    if active[3]:
        conditions.append(running.c.earmark_key.like(sa.bindparam("round_like", type_=sa.String)))
    count = sa.select(sa.func.count()).select_from(running).where(*conditions)
    rows = (sa.select(running).where(*conditions).order_by(running.c.seq.desc())
            .limit(sa.bindparam("limit", type_=sa.Integer)).offset(sa.bindparam("offset", type_=sa.Integer)))
    _LEDGER_STATEMENTS[active] = (count, rows)
    return count, rows


def ledger_page(session: Session, circle: Circle, filters: LedgerFilters, page: int, per_page: int) -> LedgerPage:
    """One page of the circle's public ledger, newest first. ``page`` is clamped by the caller."""
    active = (filters.kind is not None, filters.date_from is not None, filters.date_to is not None,
              filters.round_id is not None)
    count, select_rows = _ledger_statements(active)
    params: dict[str, Any] = {"circle_id": circle.id, "pot_key": chart.pot_available(circle.id).key,
                              "earmark_like": _earmark_like(circle.id)}
    if active[0]:
        params["kind"] = filters.kind
    if active[1]:
        params["date_from"] = filters.date_from
    if active[2]:
        params["date_to"] = filters.date_to
    if active[3]:
        params["round_like"] = f"{circle.id}:pot:{filters.round_id}:earmarked:%"
    total = session.scalar(count, params) or 0
    rows = session.execute(select_rows, {**params, "limit": per_page, "offset": (page - 1) * per_page}).all()
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


# -- award statuses (decided -> paid) --------------------------------------------------------------

#: treasury AwardState value -> badge style on the public pages
AWARD_STATUS_STYLES = {"paid": "ok", "awarded": "", "expense_created": "", "approved": "",
                       "amount_differs": "bad", "paid_not_in_ledger": "warn", "missing_in_oc": "bad"}


@dataclass(frozen=True)
class AwardStatus:
    """One award's public money state, from the treasurer's reconciliation."""

    round_id: int
    proposal_id: int
    title: str
    amount_minor: int
    currency: str
    #: fundcircle.treasury.models.AwardState value
    status: str
    status_label: str
    decided_at: dt.datetime | None
    paid_at: dt.datetime | None = None
    oc_expense_id: str | None = None
    oc_expense_url: str | None = None

    @property
    def style(self) -> str:
        return AWARD_STATUS_STYLES.get(self.status, "")


def award_statuses(session: Session, circle_id: int, round_id: int | None = None) -> list[AwardStatus]:
    """Each award of the circle's published rounds (of ``round_id`` only, when given) with its state
    from awarded to paid and its Open Collective expense, as ``fundcircle.treasury.queries.
    award_statuses`` reconciles them. The reconciliation's notes are instructions for the
    treasurer and stay on the treasury pages."""
    from fundcircle.treasury.queries import award_statuses as reconciled_statuses

    r = Round.__table__
    published = set(session.scalars(sa.select(r.c.id).where(r.c.circle_id == circle_id,
                                                            r.c.published_at.is_not(None))))
    return [
        AwardStatus(round_id=a.round_id, proposal_id=a.proposal_id, title=a.proposal_title,
                    amount_minor=a.amount_minor, currency=a.currency, status=a.state.value, status_label=a.state.label,
                    decided_at=a.decided_at, paid_at=a.paid_at, oc_expense_id=a.oc_expense_id,
                    oc_expense_url=a.oc_expense_url or None)
        for a in reconciled_statuses(session, circle_id)
        if a.round_id in published and (round_id is None or a.round_id == round_id)
    ]


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


# -- the cheap pre-render state of a public page (validators and the page-cache key) ---------------

@dataclass(frozen=True)
class PublicState:
    """What a public page's validators are computed from, read with three core queries and no ORM
    objects, so a revalidation (304) or a page-cache hit costs no rendering and no model loading."""

    circle_id: int
    #: published rounds of the circle: (id, phase value) in id order
    phases: tuple[tuple[int, str], ...]
    parts: tuple[Any, ...]
    stamps: tuple[dt.datetime | None, ...]


# Plain SQL, built once: this runs before every public page, and building the equivalent Core
# statement (and its cache key) per request cost more than running it.
_STATE_SQL = sa.text("""
SELECT c.id,
  (SELECT max(id) FROM audit_events WHERE circle_id = c.id),
  (SELECT max(created_at) FROM audit_events WHERE circle_id = c.id),
  (SELECT seq FROM ledger_seal ORDER BY seq DESC LIMIT 1),
  (SELECT sealed_at FROM ledger_seal ORDER BY seq DESC LIMIT 1),
  (SELECT count(*) FROM round_results WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT max(tallied_at) FROM round_results WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT count(earmarked_at) FROM awards WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT max(earmarked_at) FROM awards WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT count(*) FROM ballots WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT sum(times_cast) FROM ballots WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id)),
  (SELECT max(updated_at) FROM ballots WHERE round_id IN (SELECT id FROM rounds WHERE circle_id = c.id))
FROM circles c WHERE c.slug = :slug
""")
_ROUNDS_SQL = sa.text("""
SELECT id, published_at, submissions_open_at, submissions_close_at, deliberation_open_at, voting_open_at,
       voting_close_at
FROM rounds WHERE circle_id = :circle_id AND published_at IS NOT NULL ORDER BY id
""")


def public_state(session: Session, slug: str, now: dt.datetime, round_id: int | None = None) -> PublicState | None:
    """The state behind the public pages of circle ``slug`` (and of its round ``round_id``), as an
    anonymous visitor sees them; None when the circle (or that published round) does not exist.

    Sources, each of which changes whenever something on a public page of the circle changes:
    the circle's audit log (every round, proposal, screening and membership change is audited
    with the circle id; rounds have no updated_at), the ledger head, the stored results and
    award earmarks, the ballots of the circle's rounds (the round page shows turnout while voting
    is open), and each published round's phase now (dates make pages change with no row change).
    """
    if "\x00" in slug:  # no slug has one, and PostgreSQL refuses the parameter (a 500, not a 404)
        return None
    row = session.execute(_STATE_SQL, {"slug": slug}).first()
    if row is None:
        return None
    circle_id = row[0]
    rounds = session.execute(_ROUNDS_SQL, {"circle_id": circle_id}).all()
    if round_id is not None and round_id not in {x.id for x in rounds}:
        return None
    (audit_id, audit_at, head_seq, head_at, results, tallied_at, earmarks, earmarked_at,
     ballots, casts, cast_at) = row[1:]
    phases = []
    boundaries: list[dt.datetime] = []
    for x in rounds:
        dates = [_aware(d) for d in (x.published_at, x.submissions_open_at, x.submissions_close_at,
                                      x.deliberation_open_at, x.voting_open_at, x.voting_close_at)]
        phases.append((x.id, _phase(dates, now).value))
        boundaries.extend(d for d in dates if d <= now)
    parts = (circle_id, audit_id, head_seq or 0, results, earmarks, ballots, casts or 0, tuple(phases))
    stamps = tuple(_aware(t) for t in (audit_at, head_at, tallied_at, earmarked_at, cast_at)) + tuple(boundaries)
    return PublicState(circle_id=circle_id, phases=tuple(phases), parts=parts, stamps=stamps)


def _aware(value: Any) -> Any:
    """A timestamp from plain SQL as the driver gives it (SQLite: text in UTC; PostgreSQL: aware)."""
    if value is None or isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.timezone.utc)


def _phase(dates: Sequence[dt.datetime | None], now: dt.datetime) -> Phase:
    """``Round.phase_at`` itself, applied to the raw dates (so the two can never disagree)."""
    names = ("published_at", "submissions_open_at", "submissions_close_at", "deliberation_open_at",
             "voting_open_at", "voting_close_at")
    return Round.phase_at(SimpleNamespace(**dict(zip(names, dates))), now)  # type: ignore[arg-type]


# -- light loaders for the public pages ------------------------------------------------------------

def circle_or_404(session: Session, slug: str) -> Circle:
    """The circle without its member list (the ORM would eagerly load every membership and user,
    which no public page needs). NotFound when there is none."""
    from fundcircle.errors import NotFound

    circle = None if "\x00" in slug else session.scalar(  # PostgreSQL refuses a NUL parameter
        sa.select(Circle).options(lazyload("*")).where(Circle.slug == slug))
    if circle is None:
        raise NotFound("There is no circle here.")
    return circle


def published_rounds(session: Session, circle_id: int) -> list[Any]:
    """(id, title) rows of the circle's published rounds, newest call first."""
    r = Round.__table__
    return list(session.execute(sa.select(r.c.id, r.c.title).where(r.c.circle_id == circle_id,
                                                                   r.c.published_at.is_not(None))
                                .order_by(r.c.submissions_open_at.desc())))


def round_or_404(session: Session, circle: Circle, round_id: int, user: Any) -> Round:
    """Like ``rounds.queries.round_or_404`` (same visibility rule, same 404), without the eager
    circle -> memberships -> users chain a Round brings along."""
    from fundcircle.errors import NotFound
    from fundcircle.rounds.permissions import can_view_round

    round_ = session.scalar(sa.select(Round).options(lazyload("*"))
                            .where(Round.id == round_id, Round.circle_id == circle.id))
    if round_ is None or not can_view_round(user, round_):
        raise NotFound("There is no such round in this circle.")
    return round_
