"""Voting operations: conflicts of interest, casting ballots, closing and tallying a round.

Every operation takes the session, the acting user and ``now`` explicitly, flushes and never
commits: the request or command boundary commits (see DESIGN.md).

Concurrency (reference/ledger-and-reliability.md §2.2–2.5):

* One ballot per member per round is the unique constraint ``uq_ballots_round_id_voter_id``;
  casting is ``INSERT … ON CONFLICT (round_id, voter_id) DO UPDATE``, never a read-then-write.
* Close versus late ballot. PostgreSQL: a cast holds ``pg_advisory_xact_lock_shared(LOCK_ROUND_NS,
  round_id)`` for its whole transaction, the close (and a conflict declaration) holds the exclusive
  form. Advisory locks queue fairly, so a waiting closer holds back casts that arrive after it, and
  it reads the ballots only once every earlier cast has committed; casts that were queued behind it
  see the stored result and are refused. SQLite: every one of these transactions holds the
  database write lock (``BEGIN IMMEDIATE``), so they run one at a time. On both, the freeze trigger
  refuses ballot writes of a round that has a result, as a backstop.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.auth.models import User
from fundcircle.circles.models import Membership
from fundcircle.db import begin_write
from fundcircle.errors import FundcircleError, NotFound, PermissionDenied, RuleViolation, ValidationError
from fundcircle.proposals.models import Proposal, ProposalStatus, Screening
from fundcircle.rounds.models import Phase, Round
from fundcircle.voting import ballots as ballot_codec
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, jsonable
from fundcircle.voting.base import Proposal as RuleProposal
from fundcircle.voting.models import (
    AUTOMATIC_CATEGORIES,
    Award,
    BallotItem,
    ConflictCategory,
    ConflictLevel,
    ConflictOfInterest,
    RoundResult,
    StoredBallot,
)
from fundcircle.voting.registry import get_rule
from fundcircle.voting.tiebreak import ballot_digest, make_seed

log = logging.getLogger(__name__)

#: first key of the two-int advisory locks on rounds: b"fcrv" as a big-endian int32. The ledger
#: uses the one-bigint form, which PostgreSQL keeps in a separate key space.
LOCK_ROUND_NS = 0x66637276

_PG_LOCK_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(CAST(:ns AS integer), CAST(:rid AS integer))")
_PG_LOCK_EXCLUSIVE = sa.text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:rid AS integer))")
# A write that changes nothing: takes SQLite's write lock in a transaction that began deferred.
_SQLITE_TAKE_WRITE_LOCK = sa.text("DELETE FROM awards WHERE 0")


class VotingClosed(RuleViolation):
    """The round is not in its voting phase (not yet open, closed, or already tallied)."""


class Recused(RuleViolation):
    """The member is recused from a proposal the ballot names."""


@dataclass(frozen=True)
class Receipt:
    """What a cast returns. ``code`` is shown (and mailed) once and never stored."""

    round_id: int
    ballot_id: int
    code: str
    #: the id printed next to this ballot in the published ballot list
    receipt_id: str
    cast_at: dt.datetime
    updated_at: dt.datetime
    #: True when this cast replaced an earlier ballot of the same member
    is_change: bool


@dataclass(frozen=True)
class TallyInput:
    """Everything a tally reads, built the same way at close and for a recount."""

    rule_id: str
    params: dict[str, Any]
    proposals: list[RuleProposal]
    budget: Budget
    exported: list[ballot_codec.ExportedBallot]
    #: receipt id -> why the ballot was left out (no longer valid for the proposals at close)
    excluded: dict[str, str]
    member_count: int
    recusal_log: dict[str, Any]

    @property
    def ballots(self) -> list[Ballot]:
        return [e.ballot for e in self.exported]

    @property
    def digest(self) -> str:
        return ballot_digest(self.ballots)


# -- locks ------------------------------------------------------------------------------------------

def _take_write_lock(session: Session) -> None:
    try:
        begin_write(session)
    except RuntimeError:
        # The transaction began deferred (e.g. it read first): take the write lock now. This can
        # fail with "database is locked" when another writer committed since our first read; the
        # boundary retries. Requests that write begin IMMEDIATE, so they never take this path.
        session.execute(_SQLITE_TAKE_WRITE_LOCK)


def lock_round(session: Session, round_id: int, *, exclusive: bool) -> None:
    """Hold the round's voting lock until the end of the session's transaction.

    Shared for casts (they run concurrently with each other), exclusive for the close and for
    conflict declarations. PostgreSQL: transaction-scoped advisory lock. SQLite: the database
    write lock (exclusive in effect for everybody); must come before the transaction's first read
    to avoid a retry (see ``fundcircle.db.begin_write``).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(_PG_LOCK_EXCLUSIVE if exclusive else _PG_LOCK_SHARED, {"ns": LOCK_ROUND_NS, "rid": round_id})
    elif dialect == "sqlite":
        _take_write_lock(session)


def _dialect_insert(session: Session, table: sa.Table) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


# -- reading helpers --------------------------------------------------------------------------------

def has_result(session: Session, round_id: int) -> bool:
    """True when the round has been tallied (read fresh from the database, not the identity map)."""
    t = RoundResult.__table__
    return session.execute(sa.select(t.c.id).where(t.c.round_id == round_id)).first() is not None


def stored_result(session: Session, round_id: int) -> RoundResult | None:
    return session.scalar(sa.select(RoundResult).where(RoundResult.round_id == round_id))


def is_circle_member(session: Session, circle_id: int, user_id: int) -> bool:
    m = Membership.__table__
    return session.execute(
        sa.select(m.c.id).where(m.c.circle_id == circle_id, m.c.user_id == user_id)).first() is not None


def on_ballot(round_id: int) -> tuple[sa.ColumnElement[bool], ...]:
    """Where-criteria of the proposals that can be voted on in a round: submitted (so not
    withdrawn or draft), not screened out. The one definition of "on the ballot"."""
    return (Proposal.round_id == round_id, Proposal.status == ProposalStatus.SUBMITTED.value,
            Proposal.screening != Screening.INELIGIBLE.value)


def eligible_proposals(session: Session, round_id: int) -> list[sa.Row[Any]]:
    """Proposals that can be voted on (:func:`on_ballot`).

    Rows of (id, title, amount_requested_minor), by id: columns only, because loading ORM
    proposals drags in the round, its circle and every membership (the storms measured it)."""
    return list(session.execute(
        sa.select(Proposal.id, Proposal.title, Proposal.amount_requested_minor)
        .where(*on_ballot(round_id)).order_by(Proposal.id)))


def recused_proposal_ids(session: Session, round_id: int, user_id: int) -> set[int]:
    """Proposals of the round the user is recused from (declared or automatic)."""
    c, p = ConflictOfInterest.__table__, Proposal.__table__
    return set(session.scalars(
        sa.select(c.c.proposal_id).join(p, p.c.id == c.c.proposal_id)
        .where(p.c.round_id == round_id, c.c.user_id == user_id, c.c.level == ConflictLevel.RECUSE.value)))


def rule_budget(round_: Round) -> Budget:
    from fundcircle.ledger.money import exponent

    return Budget(round_.budget_minor, round_.currency, 10 ** exponent(round_.currency))


def round_params(session: Session, round_: Round) -> dict[str, Any]:
    """The round's rule parameters, resolved, as ballots are checked and the tally runs.

    A personal-share rule (``equal-allocation``) with neither ``share`` nor ``members`` set would
    otherwise size the share from the ballots cast, which nobody knows while voting: a member
    could be told "up to the whole budget" and then break the tally. Such a round's share is the
    budget divided by the circle's members, stated up front and stored with the result. Reads only.
    """
    rule = get_rule(round_.rule_id)
    raw = dict(round_.rule_params or {})
    names = {p.name for p in rule.all_params()}
    if ({"share", "members"} <= names and raw.get("share") in (None, "")
            and raw.get("members") in (None, "")):
        m = Membership.__table__
        count = session.scalar(sa.select(sa.func.count()).select_from(m).where(m.c.circle_id == round_.circle_id))
        if count:
            raw["members"] = count
    return rule.resolve_params(raw)


def _rule_proposal(p: Any, eligible_voters: int | None = None) -> RuleProposal:
    return RuleProposal(id=str(p.id), cost_minor=p.amount_requested_minor, title=p.title,
                        eligible_voters=eligible_voters)


# -- conflicts of interest -------------------------------------------------------------------------

def _automatic_conflicts(session: Session, round_id: int, users: Iterable[Any]
                         ) -> list[tuple[int, int, str]]:
    """(user id, proposal id, category) for every proposal of the round a given user applied for
    or is the payee of by e-mail. Applicant wins over payee when both hold."""
    by_id = {u.id: u for u in users}
    by_email = {u.email.strip().lower(): u.id for u in by_id.values()}
    if not by_id:
        return []
    p = Proposal.__table__
    rows = session.execute(
        sa.select(p.c.id, p.c.applicant_id, p.c.payee_email).where(
            p.c.round_id == round_id,
            sa.or_(p.c.applicant_id.in_(list(by_id)), sa.func.lower(p.c.payee_email).in_(list(by_email))))
    ).all()
    found: dict[tuple[int, int], str] = {}
    for row in rows:
        payee_user = by_email.get((row.payee_email or "").strip().lower())
        if payee_user is not None:
            found[(payee_user, row.id)] = ConflictCategory.PAYEE.value
        if row.applicant_id in by_id:
            found[(row.applicant_id, row.id)] = ConflictCategory.APPLICANT.value
    return [(u, pid, cat) for (u, pid), cat in sorted(found.items())]


def apply_automatic_recusals(session: Session, round_: Round, *, now: dt.datetime,
                             users: Iterable[Any] | None = None) -> int:
    """Recuse members from their own proposals: the applicant, and the payee when the payee
    e-mail is a member's. Idempotent; a member's own weaker declaration is upgraded.

    Args:
        users: only these users (objects with ``id`` and ``email``: the voter, at cast time);
            default every member of the circle.

    Returns:
        how many conflict rows were written (0 when all were already there).

    Flushes (core statements). Non-members are never recused: they cannot vote anyway, and
    counting them would shrink the eligible-voter figures.
    """
    if users is None:
        u, m = User.__table__, Membership.__table__
        users = list(session.execute(sa.select(u.c.id, u.c.email).join(m, m.c.user_id == u.c.id)
                                     .where(m.c.circle_id == round_.circle_id)))
    else:
        users = [u for u in users if is_circle_member(session, round_.circle_id, u.id)]
    wanted = _automatic_conflicts(session, round_.id, users)
    if not wanted:
        return 0
    c = ConflictOfInterest.__table__
    existing = {(r.user_id, r.proposal_id): r for r in session.execute(
        sa.select(c.c.user_id, c.c.proposal_id, c.c.level, c.c.is_automatic)
        .where(sa.tuple_(c.c.user_id, c.c.proposal_id).in_([(u, p) for u, p, _ in wanted])))}
    missing = [(u, p, cat) for u, p, cat in wanted
               if (u, p) not in existing or not existing[(u, p)].is_automatic
               or existing[(u, p)].level != ConflictLevel.RECUSE.value]
    for user_id, proposal_id, category in missing:
        stmt = _dialect_insert(session, c).values(
            user_id=user_id, proposal_id=proposal_id, level=ConflictLevel.RECUSE.value, reason_category=category,
            reason="", is_automatic=True, declared_at=now)
        session.execute(stmt.on_conflict_do_update(
            index_elements=[c.c.user_id, c.c.proposal_id],
            set_={"level": ConflictLevel.RECUSE.value, "reason_category": category, "is_automatic": True}))
    return len(missing)


def declare_conflict(session: Session, *, member: User, proposal: Proposal, level: ConflictLevel | str,
                     category: ConflictCategory | str, reason: str, now: dt.datetime) -> ConflictOfInterest:
    """A member declares (or changes) a conflict of interest with one proposal.

    Args:
        member: the acting member (a member of the proposal's circle).
        level: ``disclose`` (published, may still vote) or ``recuse`` (may not vote on it).
        category: a ConflictCategory other than the automatic ``applicant``/``payee``.
        reason: the member's words; required for category ``other``.

    Returns:
        the conflict row (a second declaration on the same proposal replaces the first).

    Raises:
        PermissionDenied: not a member of the circle.
        ValidationError: unknown level/category, automatic category, missing reason.
        RuleViolation: the round is already tallied; lowering an automatic recusal.

    Takes the round's exclusive voting lock, so a concurrent cast cannot slip an item for this
    proposal in between; with ``recuse`` it removes the member's ballot item for the proposal
    (the rest of the ballot stands). Flushes.
    """
    try:
        level = ConflictLevel(level)
        category = ConflictCategory(category)
    except ValueError:
        raise ValidationError("Choose a level (disclose or recuse) and a reason category.",
                              field_errors={"level": ["choose one"], "category": ["choose one"]}) from None
    if category.value in AUTOMATIC_CATEGORIES:
        raise ValidationError("That category is assigned automatically.", field_errors={"category": ["not allowed"]})
    reason = (reason or "").strip()
    if category is ConflictCategory.OTHER and not reason:
        raise ValidationError("Say in a few words what the conflict is.", field_errors={"reason": ["required"]})
    round_ = session.get(Round, proposal.round_id)
    if round_ is None:  # pragma: no cover - foreign key
        raise NotFound("That round does not exist.")
    lock_round(session, round_.id, exclusive=True)
    if not is_circle_member(session, round_.circle_id, member.id):
        raise PermissionDenied("Only members of this circle can declare a conflict of interest here.")
    if has_result(session, round_.id):
        raise RuleViolation("This round is closed and tallied; conflicts can no longer be declared.")
    existing = session.scalar(sa.select(ConflictOfInterest).where(
        ConflictOfInterest.user_id == member.id, ConflictOfInterest.proposal_id == proposal.id))
    if existing is not None and existing.is_automatic:
        if level is ConflictLevel.DISCLOSE:
            raise RuleViolation("You are recused from this proposal automatically (you applied for it or are "
                                "its payee); that cannot be lowered.")
        return existing
    if existing is None:
        existing = ConflictOfInterest(user_id=member.id, proposal_id=proposal.id, is_automatic=False)
        session.add(existing)
    existing.level = level.value
    existing.reason_category = category.value
    existing.reason = reason
    existing.declared_at = now
    session.flush()
    if level is ConflictLevel.RECUSE:
        b, i = StoredBallot.__table__, BallotItem.__table__
        session.execute(sa.delete(i).where(
            i.c.proposal_id == proposal.id,
            i.c.ballot_id.in_(sa.select(b.c.id).where(b.c.round_id == round_.id, b.c.voter_id == member.id))))
    return existing


# -- casting ---------------------------------------------------------------------------------------

def _db_refusal(exc: sa.exc.DBAPIError) -> FundcircleError | None:
    text = str(getattr(exc, "orig", exc))
    if "frozen" in text:
        return VotingClosed("Voting in this round is closed; your ballot was not recorded.")
    if "recused" in text:
        return Recused("You are recused from a proposal on this ballot; your ballot was not recorded.")
    return None


def cast_ballot(session: Session, round_: Round, voter: User, choices: Any, now: dt.datetime) -> Receipt:
    """Cast or change ``voter``'s ballot in ``round_``; the last cast counts.

    Args:
        round_: the round (its dates decide the phase at ``now``).
        voter: the acting member.
        choices: the ballot in the round's ballot kind (see ``ballots.normalise_choices``).
        now: the request time (timezone-aware UTC).

    Returns:
        a Receipt with a fresh code (only its hash is stored; an earlier code stops appearing
        in the published list).

    Raises:
        PermissionDenied: the voter is not a member of the round's circle.
        VotingClosed: ``round_.phase_at(now)`` is not voting, or the round already has a result
            (a close won the race).
        Recused: the ballot names a proposal the voter is recused from.
        ValidationError: the ballot's shape, an unknown or ineligible proposal, or the rule's
            ``validate_ballot`` (field errors keyed by proposal id).

    Takes the round's shared voting lock first (the close takes it exclusively), then upserts the
    ballot row on ``(round_id, voter_id)`` and replaces its items, all in the caller's
    transaction. Flushes (core statements); the boundary commits.
    """
    lock_round(session, round_.id, exclusive=False)
    phase = round_.phase_at(now)
    if phase is not Phase.VOTING:
        if phase is Phase.CLOSED:
            raise VotingClosed(f"Voting closed at {round_.voting_close_at:%Y-%m-%d %H:%M} UTC.")
        raise VotingClosed(f"Voting opens at {round_.voting_open_at:%Y-%m-%d %H:%M} UTC.")
    # After the lock: a close that committed before we got it has stored its result.
    if has_result(session, round_.id):
        raise VotingClosed("Voting in this round is closed and the result is published.")
    if not is_circle_member(session, round_.circle_id, voter.id):
        raise PermissionDenied("Only members of this circle can vote in this round.")

    rule = get_rule(round_.rule_id)
    kind = BallotKind(rule.ballot_kind)
    params = round_params(session, round_)
    value = ballot_codec.normalise_choices(kind, choices)

    apply_automatic_recusals(session, round_, now=now, users=[voter])
    recused = {str(pid) for pid in recused_proposal_ids(session, round_.id, voter.id)}
    named = ballot_codec.proposal_ids_of(value)
    if named & recused:
        raise Recused("You are recused from a proposal on this ballot (a declared or automatic conflict of "
                      "interest); leave it out.",
                      field_errors={pid: ["you are recused from this proposal"] for pid in sorted(named & recused)})
    eligible = [p for p in eligible_proposals(session, round_.id) if str(p.id) not in recused]
    unknown = named - {str(p.id) for p in eligible}
    if unknown:
        raise ValidationError("Your ballot names a proposal that is not on this round's ballot.",
                              field_errors={pid: ["not on this ballot"] for pid in sorted(unknown)})
    rule.validate_ballot(Ballot(str(voter.id), value), [_rule_proposal(p) for p in eligible],
                         rule_budget(round_), params)

    code = ballot_codec.new_receipt_code()
    hash_hex = ballot_codec.receipt_hash(code)
    b, i = StoredBallot.__table__, BallotItem.__table__
    upsert = _dialect_insert(session, b).values(
        round_id=round_.id, voter_id=voter.id, ballot_kind=kind.value, receipt_hash=hash_hex,
        cast_at=now, updated_at=now, times_cast=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=[b.c.round_id, b.c.voter_id],
        set_={"ballot_kind": upsert.excluded.ballot_kind, "receipt_hash": upsert.excluded.receipt_hash,
              "updated_at": upsert.excluded.updated_at, "times_cast": b.c.times_cast + 1},
    ).returning(b.c.id, b.c.cast_at, b.c.times_cast)
    items = ballot_codec.items_from_value(kind, value)
    try:
        row = session.execute(upsert).one()
        # the upsert holds the ballot row, so concurrent copies replace items one after another
        session.execute(sa.delete(i).where(i.c.ballot_id == row.id))
        if items:
            session.execute(sa.insert(i), [
                {"ballot_id": row.id, "proposal_id": it.proposal_id, "value": it.value, "response": it.response,
                 "reason": it.reason} for it in items])
    except sa.exc.DBAPIError as exc:
        refusal = _db_refusal(exc)
        if refusal is None:
            raise
        raise refusal from exc
    for obj in list(session.identity_map.values()):
        # the ORM may hold this ballot from an earlier read; core writes bypassed it
        if isinstance(obj, (StoredBallot, BallotItem)):
            session.expire(obj)
    return Receipt(round_id=round_.id, ballot_id=row.id, code=code,
                   receipt_id=ballot_codec.public_receipt_id(hash_hex), cast_at=row.cast_at, updated_at=now,
                   is_change=row.times_cast > 1)


def ballot_of(session: Session, round_id: int, voter_id: int) -> tuple[StoredBallot, Any] | None:
    """The voter's stored ballot and its rule-side value (to prefill the form), or None."""
    stored = session.scalar(sa.select(StoredBallot).where(
        StoredBallot.round_id == round_id, StoredBallot.voter_id == voter_id))
    if stored is None:
        return None
    return stored, ballot_codec.value_from_items(stored.ballot_kind, stored.items)


# -- tallying --------------------------------------------------------------------------------------

def tally_input(session: Session, round_: Round) -> TallyInput:
    """Read everything the round's tally needs, exactly as the close does (also for recounts).

    Proposals: the eligible ones, ``eligible_voters`` = members − members recused from it.
    Ballots: ``ballots.export_ballots`` (anonymous, canonical order, recused and no-longer-eligible
    proposals left out); a ballot the rule no longer accepts (e.g. its only proposal was withdrawn
    during voting) is excluded and listed with the reason. Reads only.
    """
    rule = get_rule(round_.rule_id)
    params = round_params(session, round_)
    budget = rule_budget(round_)
    m, c, p = Membership.__table__, ConflictOfInterest.__table__, Proposal.__table__
    member_ids = set(session.scalars(sa.select(m.c.user_id).where(m.c.circle_id == round_.circle_id)))
    conflicts = session.execute(
        sa.select(c.c.user_id, c.c.proposal_id, c.c.reason_category).join(p, p.c.id == c.c.proposal_id)
        .where(p.c.round_id == round_.id, c.c.level == ConflictLevel.RECUSE.value)).all()
    recused_by_voter: dict[str, set[str]] = {}
    recusal_log: dict[str, Any] = {}
    eligible = eligible_proposals(session, round_.id)
    eligible_ids = {str(x.id) for x in eligible}
    for row in conflicts:
        if row.user_id not in member_ids:
            continue
        recused_by_voter.setdefault(str(row.user_id), set()).add(str(row.proposal_id))
        if str(row.proposal_id) in eligible_ids:
            entry = recusal_log.setdefault(str(row.proposal_id), {"recusals": 0, "categories": {}})
            entry["recusals"] += 1
            entry["categories"][row.reason_category] = entry["categories"].get(row.reason_category, 0) + 1
    proposals = [
        _rule_proposal(x, eligible_voters=len(member_ids) - recusal_log.get(str(x.id), {"recusals": 0})["recusals"])
        for x in eligible]
    exported = ballot_codec.export_ballots(session, round_.id, kind=rule.ballot_kind,
                                           allowed_proposal_ids=eligible_ids, recused=recused_by_voter)
    kept: list[ballot_codec.ExportedBallot] = []
    excluded: dict[str, str] = {}
    for e in exported:
        try:
            rule.validate_ballot(e.ballot, proposals, budget, params)
        except ValidationError as err:
            excluded[e.receipt_id] = err.user_message
            continue
        kept.append(e)
    # renumber so the tallied list reads v1..vn without gaps
    kept = [ballot_codec.ExportedBallot(e.receipt_id, Ballot(f"v{n}", e.ballot.value))
            for n, e in enumerate(kept, start=1)]
    return TallyInput(rule_id=rule.id, params=params, proposals=proposals, budget=budget, exported=kept,
                      excluded=excluded, member_count=len(member_ids), recusal_log=recusal_log)


def run_tally(round_id: int, data: TallyInput) -> Outcome:
    """The pure part: seed from the round id and the ballot digest, then the rule's tally."""
    seed = make_seed(round_id, data.digest)
    return get_rule(data.rule_id).tally(data.proposals, data.ballots, data.budget, data.params, seed)


def close_and_tally(session: Session, round_: Round, now: dt.datetime, actor: User | None = None) -> RoundResult:
    """Close voting, tally the stored ballots, store the result and the awards, earmark them.

    Idempotent: when the round already has a result, that result is returned unchanged.

    Args:
        now: must be at or after ``round_.voting_close_at``.
        actor: the facilitator who closed it (None for the automatic close and the CLI).

    Returns:
        the stored RoundResult (with ``awards``).

    Raises:
        RuleViolation: voting has not closed yet at ``now`` (or the round was never published);
            the rule refused the stored ballots (message names the ballot).

    Takes the round's exclusive voting lock before reading anything, so every cast either
    committed before the ballots are read or is refused afterwards. Writes the result first
    (which freezes the round's ballots, by trigger), then the awards, then asks the ledger to
    earmark them. Earmarking is all-or-nothing for the round and never blocks the result: when the
    pot cannot cover the awards, the result and awards are stored, no earmark is posted, and each
    award carries ``earmark_problem`` until ``earmark_awards`` succeeds. Flushes.
    """
    lock_round(session, round_.id, exclusive=True)
    existing = stored_result(session, round_.id)
    if existing is not None:
        return existing
    if round_.phase_at(now) is not Phase.CLOSED:
        raise RuleViolation(f"Voting in “{round_.title}” closes at {round_.voting_close_at:%Y-%m-%d %H:%M} UTC; "
                            f"it cannot be tallied before.")
    apply_automatic_recusals(session, round_, now=now)
    data = tally_input(session, round_)
    seed = make_seed(round_.id, data.digest)
    try:
        outcome = get_rule(data.rule_id).tally(data.proposals, data.ballots, data.budget, data.params, seed)
    except ValidationError as err:
        raise RuleViolation(f"The stored ballots could not be tallied: {err.user_message}") from err
    outcome_json = outcome.to_json()
    outcome_json["excluded_ballots"] = dict(sorted(data.excluded.items()))
    result = RoundResult(
        round_id=round_.id, rule_id=data.rule_id, params=jsonable(data.params), ballot_digest=data.digest,
        seed=seed, ballot_count=len(data.exported), outcome=outcome_json, trace=outcome_json["trace"],
        member_count=data.member_count, recusal_log=data.recusal_log, tallied_at=now,
        tallied_by_id=actor.id if actor is not None else None)
    session.add(result)
    session.flush()
    for position, (proposal_id, amount_minor) in enumerate(outcome.funded.items(), start=1):
        session.add(Award(round_id=round_.id, proposal_id=int(proposal_id), amount_minor=amount_minor,
                          currency=round_.currency, position=position, created_at=now, earmark_problem=""))
    session.flush()
    session.refresh(result)
    earmark_awards(session, round_, now=now, actor=actor)
    return result


def earmark_awards(session: Session, round_: Round, *, now: dt.datetime, actor: User | None = None) -> list[Award]:
    """Earmark the round's not-yet-earmarked awards in the ledger (pot → earmark), all or none.

    Safe to call again (after the treasurer funded the pot): earmarked awards are skipped and the
    ledger's idempotency key ``award:<round>:<proposal>`` replays. Returns the awards still
    missing an earmark (each with ``earmark_problem`` set); [] when all are earmarked.

    Raises nothing for a pot that is short: that is recorded on the awards. Flushes.
    """
    from fundcircle import ledger

    awards = list(session.scalars(select_awards(round_.id)))
    pending = [a for a in awards if a.earmarked_at is None]
    if not pending:
        return []
    if not hasattr(ledger, "award"):
        for a in pending:
            a.earmark_problem = "The ledger cannot earmark awards yet."
        session.flush()
        return pending
    needed_minor = sum(a.amount_minor for a in pending)
    problem = ""
    try:
        available_minor = ledger.circle_balances(session, round_.circle_id, round_.currency).pot_available_minor
    except FundcircleError as err:
        available_minor, problem = 0, err.user_message
    if not problem and available_minor < needed_minor:
        from fundcircle.ledger.money import format_money

        problem = (f"The pot holds {format_money(available_minor, round_.currency)} but this round's awards need "
                   f"{format_money(needed_minor, round_.currency)}; nothing was earmarked. Fund the pot, then "
                   f"earmark the awards again.")
    if not problem:
        try:
            with session.begin_nested():
                for a in pending:
                    if a.amount_minor > 0:
                        ledger.award(session, round_, a.proposal, a.amount_minor, now=now,
                                     actor_id=actor.id if actor is not None else None)
        except FundcircleError as err:
            problem = err.user_message
    for a in pending:
        if problem:
            a.earmark_problem = problem
        else:
            a.earmarked_at, a.earmark_problem = now, ""
    session.flush()
    if problem:
        log.warning("round %s: awards not earmarked: %s", round_.id, problem)
        return pending
    return []


def select_awards(round_id: int) -> sa.Select[tuple[Award]]:
    return sa.select(Award).where(Award.round_id == round_id).order_by(Award.position)


def recount(session: Session, round_: Round) -> dict[str, Any]:
    """Re-run the round's rule over its stored ballots (exported again) and return the outcome
    JSON: for a tallied round it must equal ``result.outcome`` minus ``excluded_ballots``. Reads only."""
    data = tally_input(session, round_)
    return run_tally(round_.id, data).to_json()


# -- closing due rounds ----------------------------------------------------------------------------

def due_round_ids(session: Session, now: dt.datetime) -> list[int]:
    """Published rounds whose voting closed at or before ``now`` and that have no result yet."""
    r, res = Round.__table__, RoundResult.__table__
    return list(session.scalars(
        sa.select(r.c.id).where(r.c.published_at.is_not(None), r.c.voting_close_at <= now,
                                ~sa.exists().where(res.c.round_id == r.c.id)).order_by(r.c.id)))


def maybe_close_due_rounds(session: Session, now: dt.datetime) -> list[RoundResult]:
    """Close and tally every round whose voting has closed, in the caller's transaction.

    Meant for a dedicated session (see ``run_due_closes``): on SQLite it must be called before the
    session's first statement so the write lock is taken at BEGIN. Returns the new results.
    Raises what ``close_and_tally`` raises. Flushes.
    """
    if session.get_bind().dialect.name == "sqlite":
        _take_write_lock(session)  # before the first read, so the closes below never need a retry
    results = []
    for round_id in due_round_ids(session, now):
        round_ = session.get(Round, round_id)
        if round_ is not None:
            results.append(close_and_tally(session, round_, now))
    return results


def run_due_closes(make_session: Callable[[], Session], now: dt.datetime) -> list[int]:
    """Close every due round, each in its own session and transaction, committing each.

    For the "first request after the close time" hook and for cron: a failing round is logged and
    skipped, so one broken tally never blocks the others (or the request that triggered it).
    Returns the ids of the rounds closed now. Commits (it is its own unit of work).
    """
    probe = make_session()
    try:
        due = due_round_ids(probe, now)
    finally:
        probe.close()
    closed: list[int] = []
    for round_id in due:
        session = make_session()
        try:
            lock_round(session, round_id, exclusive=True)
            round_ = session.get(Round, round_id)
            if round_ is None or has_result(session, round_id):
                session.rollback()
                continue
            close_and_tally(session, round_, now)
            session.commit()
            closed.append(round_id)
        except Exception:  # noqa: BLE001 - logged; the next request or the CLI tries again
            session.rollback()
            log.exception("automatic close of round %s failed", round_id)
        finally:
            session.close()
    return closed


def results_by_round(session: Session, round_ids: Iterable[int]) -> Mapping[int, RoundResult]:
    ids = list(round_ids)
    if not ids:
        return {}
    return {r.round_id: r for r in session.scalars(sa.select(RoundResult).where(RoundResult.round_id.in_(ids)))}
