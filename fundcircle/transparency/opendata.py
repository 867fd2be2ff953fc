"""Open data: what a tallied round and a circle's ledger publish, as files anyone can re-check.

Builders here read the database and return plain values or file text; they know nothing of HTTP
(the views in ``opendata_views.py`` and ``fundcircle export`` call them). Every export is refused
before the round is tallied (``OpenDataNotReady``), and the per-ballot exports (the pabulib file and
the ballot list with receipt ids) are withheld for rounds with fewer ballots than
``OPEN_DATA_MIN_VOTERS`` (``BallotsWithheld``): with three voters, a member who knows how two of
them voted learns the third ballot. Totals (per-proposal votes and scores, the result) stay.

Anonymity of the pabulib file: voter ids are replaced by 1..n, in an order given by
HMAC-SHA256(server secret, round id and receipt id), so the file's order reveals neither database
ids nor the order of casting, yet the same round always exports byte-identical text (cacheable,
diffable). The file carries the round id in META ``fundcircle_round`` so ``fundcircle simulate``
rebuilds the round's public tie-break seed from it and the file's own ballots.

``EXPORTS`` documents every field of every export; the schema page (/data/schema) renders it, and
a test checks that each export emits only documented fields.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.circles.models import Circle, Membership
from fundcircle.errors import FundcircleError, NotFound, RuleViolation
from fundcircle.ledger.models import LedgerAccount, LedgerPosting, LedgerSeal, LedgerTransaction
from fundcircle.proposals.models import Proposal, ProposalStatus, Screening
from fundcircle.rounds.models import Round
from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, BallotKind, jsonable
from fundcircle.voting.models import RoundResult
from fundcircle.voting.registry import get_rule

#: default for the config key OPEN_DATA_MIN_VOTERS
DEFAULT_MIN_VOTERS = 5
#: version of the export layouts below (bumped when a field changes meaning)
EXPORT_VERSION = "fundcircle-opendata/v1"

#: pabulib vote_type for each ballot kind that pabulib can hold
VOTE_TYPE_BY_KIND = {
    BallotKind.APPROVAL: "approval",
    BallotKind.RANKING: "ordinal",
    BallotKind.POINTS: "cumulative",
    BallotKind.SCORES: "scoring",
}

#: why a rule's ballots cannot be written to a .pb file faithfully (also shown on the schema page)
PB_UNSUPPORTED = {
    "consent": "Consent ballots hold a response (consent, concern or objection) and a reason per proposal, and "
               "whether a proposal passes depends on how many members were eligible to respond to it (members "
               "minus recusals). pabulib has no vote type for responses and no per-project electorate, so a "
               ".pb file would not reproduce the result. The JSON files can: the ballot list carries the "
               "responses and reasons, and the result the members and the recusals per proposal (eligible = "
               "members − recusals), the parameters and the seed, so the consent rule re-runs from them.",
    "equal-allocation": "Allocation ballots give amounts of money from a personal share, and funding depends on "
                        "each proposal's minimum and maximum goals. pabulib has neither, so a .pb file would not "
                        "reproduce the result; the ballot list (JSON) carries the allocations.",
    "quadratic-funding": "Allocation ballots are contributions matched from a pool; pabulib has no vote type for "
                         "them, so a .pb file would not reproduce the result; the ballot list (JSON) carries them.",
}


def configured_min_voters(config: Mapping[str, Any]) -> int:
    """The suppression threshold: config ``OPEN_DATA_MIN_VOTERS``, else the environment variable
    ``FUNDCIRCLE_OPEN_DATA_MIN_VOTERS``, else 5. A bad value is a ConfigurationError, not a silent default."""
    import os

    from fundcircle.errors import ConfigurationError

    raw = config.get("OPEN_DATA_MIN_VOTERS")
    if raw is None:
        raw = os.environ.get("FUNDCIRCLE_OPEN_DATA_MIN_VOTERS", "").strip() or DEFAULT_MIN_VOTERS
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"OPEN_DATA_MIN_VOTERS must be a whole number (got {raw!r})") from None
    if value < 1:
        raise ConfigurationError("OPEN_DATA_MIN_VOTERS must be at least 1")
    return value


def pb_unsupported_reason(rule_id: str) -> str:
    """Why this rule's ballots cannot be a faithful .pb file, or "" when they can."""
    if rule_id in PB_UNSUPPORTED:
        return PB_UNSUPPORTED[rule_id]
    try:
        kind = BallotKind(get_rule(rule_id).ballot_kind)
    except NotFound:
        return f"The rule {rule_id!r} is not installed here, so its ballots cannot be exported."
    if kind not in VOTE_TYPE_BY_KIND:
        return (f"The rule {rule_id!r} takes {kind.value} ballots, which pabulib cannot hold; use the ballot list "
                f"(JSON) instead.")
    return ""


class OpenDataNotReady(RuleViolation):
    """The round has not been tallied yet: nothing about its ballots is published before."""


class BallotsWithheld(RuleViolation):
    """Too few ballots to publish them one by one without risking a voter's secrecy."""


class NotExpressible(RuleViolation):
    """The round's rule cannot be written as a pabulib file that reproduces the result."""


# -- loading ---------------------------------------------------------------------------------------

@dataclass
class TalliedRound:
    circle: Circle
    round: Round
    result: RoundResult
    min_voters: int

    @property
    def ballots_published(self) -> bool:
        return self.result.ballot_count >= self.min_voters

    @property
    def withheld_reason(self) -> str:
        return (f"This round had {self.result.ballot_count} ballot{'s' if self.result.ballot_count != 1 else ''}, "
                f"fewer than {self.min_voters}. With so few voters, publishing ballots one by one could reveal "
                f"how someone voted, so the ballot files are withheld; the totals per proposal and the result "
                f"are published.")


def published_circle(session: Session, slug: str) -> Circle:
    circle = session.scalar(sa.select(Circle).where(Circle.slug == slug))
    if circle is None:
        raise NotFound("There is no circle with that address.")
    return circle


def published_round(session: Session, circle: Circle, round_id: int) -> Round:
    """A published round of this circle (drafts are invisible to the public: NotFound)."""
    round_ = session.scalar(sa.select(Round).where(Round.id == round_id, Round.circle_id == circle.id))
    if round_ is None or round_.published_at is None:
        raise NotFound("There is no such round in this circle.")
    return round_


def result_of(session: Session, round_id: int) -> RoundResult | None:
    return session.scalar(sa.select(RoundResult).where(RoundResult.round_id == round_id))


def tallied_round(session: Session, circle: Circle, round_: Round, *, min_voters: int) -> TalliedRound:
    """The round with its stored result; OpenDataNotReady when it has none yet."""
    result = result_of(session, round_.id)
    if result is None:
        raise OpenDataNotReady(
            f"“{round_.title}” has not been tallied yet. Its open data (ballots, results) is published once "
            f"voting has closed and the result is stored; voting closes {round_.voting_close_at:%Y-%m-%d %H:%M} UTC.")
    return TalliedRound(circle=circle, round=round_, result=result, min_voters=min_voters)


# -- results ---------------------------------------------------------------------------------------

def _proposal_rows(session: Session, round_id: int) -> list[Proposal]:
    """Proposals the public can see: submitted and withdrawn (drafts never)."""
    return list(session.scalars(
        sa.select(Proposal).where(Proposal.round_id == round_id, Proposal.status != ProposalStatus.DRAFT.value)
        .order_by(Proposal.id)))


def results_document(session: Session, tr: TalliedRound) -> dict[str, Any]:
    """The round's published result as one JSON-able dict (``results.json``)."""
    round_, result = tr.round, tr.result
    outcome = result.outcome or {}
    awards = {a.proposal_id: a for a in result.awards}
    scores = outcome.get("scores", {})
    rule = get_rule(result.rule_id)
    proposals = []
    for p in _proposal_rows(session, round_.id):
        award = awards.get(p.id)
        recusals = (result.recusal_log or {}).get(str(p.id), {})
        proposals.append({
            "proposal_id": p.id,
            "title": p.title,
            "status": p.status,
            "screening": p.screening,
            "amount_requested_minor": p.amount_requested_minor,
            "currency": p.currency,
            # what the tally read (voting.operations.eligible_proposals); frozen once voting closed
            "on_ballot": p.status == ProposalStatus.SUBMITTED.value and p.screening != Screening.INELIGIBLE.value,
            "score": jsonable(scores.get(str(p.id))),
            "funded": award is not None,
            "amount_awarded_minor": award.amount_minor if award is not None else 0,
            "selection_position": award.position if award is not None else None,
            "recusals": int(recusals.get("recusals", 0)),
            "why": [s["message"] for s in result.trace if s.get("proposal_id") == str(p.id)],
        })
    return {
        "format": EXPORT_VERSION,
        "circle": {"slug": tr.circle.slug, "name": tr.circle.name},
        "round": {"id": round_.id, "title": round_.title, "currency": round_.currency,
                  "budget_minor": round_.budget_minor, "voting_open_at": round_.voting_open_at.isoformat(),
                  "voting_close_at": round_.voting_close_at.isoformat()},
        "rule": {"id": result.rule_id, "name": rule.name, "params": result.params},
        "tallied_at": result.tallied_at.isoformat(),
        "ballot_count": result.ballot_count,
        "member_count": result.member_count,
        "excluded_ballot_count": len(outcome.get("excluded_ballots", {})),
        "ballot_digest": result.ballot_digest,
        "seed": result.seed,
        "funded_total_minor": sum(a.amount_minor for a in result.awards),
        "proposals": proposals,
        "trace": [{"action": s.get("action"), "proposal_id": s.get("proposal_id"), "message": s.get("message")}
                  for s in result.trace],
        "ballots_published": tr.ballots_published,
    }


RESULTS_CSV_COLUMNS = ("proposal_id", "title", "status", "screening", "amount_requested_minor", "currency",
                       "on_ballot", "score", "funded", "amount_awarded_minor", "selection_position", "recusals")


def results_csv(doc: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULTS_CSV_COLUMNS)
    for row in doc["proposals"]:
        writer.writerow([_csv_cell(row[c]) for c in RESULTS_CSV_COLUMNS])
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    # a cell starting with = + - @ is a formula in spreadsheets (CSV injection): prefix a quote
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- ballots (receipt list and pabulib) ------------------------------------------------------------

@dataclass(frozen=True)
class PublishedBallot:
    receipt_id: str
    value: Any


def tallied_ballots(session: Session, tr: TalliedRound) -> tuple[list[Any], list[PublishedBallot]]:
    """(rule proposals, ballots) exactly as the round was tallied; re-read from the frozen ballots and
    checked against the stored ballot digest, so a published file can never differ from the tally."""
    from fundcircle.voting.operations import tally_input

    data = tally_input(session, tr.round)
    if data.digest != tr.result.ballot_digest:
        raise RuleViolation("The stored ballots no longer match the tallied ones (the ballot digest differs); "
                            "the ballot files are withheld until a facilitator checks the round.")
    return data.proposals, [PublishedBallot(e.receipt_id, e.ballot.value) for e in data.exported]


def require_ballots_published(tr: TalliedRound) -> None:
    if not tr.ballots_published:
        raise BallotsWithheld(tr.withheld_reason)


def ballot_value_json(kind: BallotKind | str, value: Any) -> Any:
    """A ballot value as JSON: approval -> sorted ids; ranking -> ids best first; points, scores and
    allocation -> {id: int}; consent -> {id: {"response", "reason"}}."""
    kind = BallotKind(kind)
    if kind is BallotKind.APPROVAL:
        return sorted(value, key=int)
    if kind is BallotKind.RANKING:
        return list(value)
    if kind is BallotKind.CONSENT:
        return {pid: {"response": r.response.value, "reason": r.reason}
                for pid, r in sorted(value.items(), key=lambda kv: int(kv[0]))}
    return {pid: int(v) for pid, v in sorted(value.items(), key=lambda kv: int(kv[0]))}


def ballot_list_document(session: Session, tr: TalliedRound) -> dict[str, Any]:
    """The published ballot list: every tallied ballot with its receipt id (``ballots.json``)."""
    require_ballots_published(tr)
    _proposals, ballots = tallied_ballots(session, tr)
    kind = get_rule(tr.result.rule_id).ballot_kind
    return {
        "format": EXPORT_VERSION,
        "round_id": tr.round.id,
        "rule": tr.result.rule_id,
        "ballot_kind": BallotKind(kind).value,
        "ballot_digest": tr.result.ballot_digest,
        "ballot_count": len(ballots),
        "excluded": [{"receipt_id": rid, "reason": why}
                     for rid, why in sorted((tr.result.outcome or {}).get("excluded_ballots", {}).items())],
        "ballots": [{"receipt_id": b.receipt_id, "ballot": ballot_value_json(kind, b.value)}
                    for b in sorted(ballots, key=lambda b: b.receipt_id)],
    }


def ballot_list_csv(doc: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("receipt_id", "ballot"))
    for row in doc["ballots"]:
        writer.writerow((row["receipt_id"], json.dumps(row["ballot"], ensure_ascii=False, sort_keys=True)))
    return out.getvalue()


def shuffle_key(secret: str | bytes, round_id: int, receipt_id: str) -> bytes:
    """The sort key that orders the .pb file's voters: HMAC-SHA256 under the server secret."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, f"{EXPORT_VERSION}|pb-order|round={round_id}|{receipt_id}".encode(), hashlib.sha256).digest()


#: what each pabulib `rule` word makes `fundcircle simulate` run (cli._rule_from_file), as params
_WORD_PARAMS: dict[str, dict[str, Any]] = {
    "greedy": {},
    "greedy-no-skip": {"skip": "false"},
    "equalshares": {"completion": "none"},
    "equalshares/add1": {},
    "equalshares/add1-comparison": {"comparison": "satisfaction"},
}


def _rule_word(rule_id: str, params: Mapping[str, Any]) -> str | None:
    """The standard pabulib `rule` word, only when simulating it runs exactly these params."""
    word = pabulib.pabulib_rule_word(rule_id, params)
    if word is None or word not in _WORD_PARAMS:
        return None
    rule = get_rule(rule_id)
    try:
        implied = rule.resolve_params(_WORD_PARAMS[word])
    except FundcircleError:  # a word whose params this rule does not take: not a match
        return None
    return word if jsonable(implied) == jsonable(params) else None


def pb_document(session: Session, tr: TalliedRound, *, secret: str | bytes) -> str:
    """The round's anonymised ballots as pabulib ``.pb`` text that ``fundcircle simulate`` re-runs.

    Raises OpenDataNotReady (via ``tallied_round``), BallotsWithheld, NotExpressible.
    """
    require_ballots_published(tr)
    round_, result = tr.round, tr.result
    problem = pb_unsupported_reason(result.rule_id)
    if problem:
        raise NotExpressible(problem)
    rule = get_rule(result.rule_id)
    proposals, ballots = tallied_ballots(session, tr)
    vote_type = VOTE_TYPE_BY_KIND[BallotKind(rule.ballot_kind)]
    params = rule.resolve_params(result.params)
    from fundcircle.voting.operations import rule_budget  # late: operations imports half the app

    budget = rule_budget(round_)
    ordered = sorted(ballots, key=lambda b: shuffle_key(secret, round_.id, b.receipt_id))
    meta = {
        "description": f"{tr.circle.name}: {round_.title}",
        "country": "unknown",
        "unit": tr.circle.name,
        "instance": str(round_.id),
        "subunit": round_.title,
        "date_begin": f"{round_.voting_open_at:%d.%m.%Y}",
        "date_end": f"{round_.voting_close_at:%d.%m.%Y}",
        "language": "en",
        "currency": round_.currency,
        # the public tie-break seed is make_seed(this, digest of the file's ballots)
        "fundcircle_round": str(round_.id),
        "fundcircle_ballot_digest": result.ballot_digest,
    }
    if vote_type == "cumulative":
        sums = [sum(b.value.values()) for b in ballots]
        lows = [v for b in ballots for v in b.value.values()]
        meta["max_sum_points"] = str(max(sums, default=1) or 1)
        if lows and min(lows) < 0:  # quadratic voting with negative votes (opt-in)
            meta["min_points"] = str(min(lows))
            meta["min_sum_points"] = str(min(min(sums), 0))
    word = _rule_word(result.rule_id, params)
    if word is None:
        meta["rule"] = "unknown"
        meta["comment"] = f"#1: fundcircle {result.rule_id} {json.dumps(jsonable(params), sort_keys=True)}"
    else:
        meta["rule"] = word
    election = pabulib.PabulibElection(
        name=f"round-{round_.id}.pb", meta=meta, vote_type=vote_type, proposals=list(proposals),
        ballots=[Ballot(str(n), b.value) for n, b in enumerate(ordered, start=1)], budget=budget)
    text = pabulib.dumps(election, selected=[str(a.proposal_id) for a in result.awards])
    _check_pb_faithful(text, tr, proposals)
    return text


def _check_pb_faithful(text: str, tr: TalliedRound, proposals: Sequence[Any]) -> None:
    """Read the file back: the same ballots (digest) and the same projects and costs, or refuse."""
    from fundcircle.voting.tiebreak import ballot_digest

    loaded = pabulib.load(text.encode("utf-8"), name=f"round-{tr.round.id}.pb")
    if ballot_digest(loaded.ballots) != tr.result.ballot_digest:
        raise NotExpressible("These ballots cannot be written to a pabulib file without changing them "
                             "(e.g. a score outside what the format allows); use the ballot list (JSON).")
    scale = loaded.budget.unit_minor
    from fundcircle.voting.operations import rule_budget

    unit = rule_budget(tr.round).unit_minor
    want = {p.id: p.cost_minor for p in proposals}
    got = {p.id: p.cost_minor * unit // scale for p in loaded.proposals}
    if want != got or loaded.budget.amount_minor * unit // scale != tr.round.budget_minor:
        raise NotExpressible("The projects or the budget would not survive the pabulib file unchanged.")


# -- ledger ----------------------------------------------------------------------------------------

#: transaction kinds whose external reference is public (an Open Collective expense is public there)
PUBLIC_EXTERNAL_SOURCES = frozenset({"opencollective"})


@dataclass(frozen=True)
class LedgerFilter:
    kind: str | None = None
    round_id: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def _ledger_query(circle_id: int, flt: LedgerFilter) -> sa.Select[Any]:
    t, s = LedgerTransaction.__table__, LedgerSeal.__table__
    q = (sa.select(t.c.id, t.c.kind, t.c.effective_on, t.c.recorded_at, t.c.reverses_id, t.c.external_source,
                   t.c.external_id, s.c.seq, s.c.hash)
         .select_from(t.join(s, s.c.transaction_id == t.c.id)).where(t.c.circle_id == circle_id))
    if flt.kind:
        q = q.where(t.c.kind == flt.kind)
    if flt.date_from:
        q = q.where(t.c.effective_on >= flt.date_from)
    if flt.date_to:
        q = q.where(t.c.effective_on <= flt.date_to)
    if flt.round_id is not None:
        p, a = LedgerPosting.__table__, LedgerAccount.__table__
        q = q.where(sa.exists().where(p.c.transaction_id == t.c.id, a.c.id == p.c.account_id,
                                      a.c.key.like(f"{circle_id}:pot:{flt.round_id}:earmarked:%")))
    return q


def ledger_count(session: Session, circle: Circle, flt: LedgerFilter) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(_ledger_query(circle.id, flt).subquery())) or 0)


def ledger_entries(session: Session, circle: Circle, flt: LedgerFilter = LedgerFilter(), *,
                   offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Sealed transactions of the circle, oldest first, with their postings (public fields only:
    no memo, no idempotency key, no actor, no Stripe ids)."""
    q = _ledger_query(circle.id, flt).order_by(LedgerSeal.__table__.c.seq).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    rows = session.execute(q).all()
    if not rows:
        return []
    p, a = LedgerPosting.__table__, LedgerAccount.__table__
    postings: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(
            sa.select(p.c.transaction_id, p.c.amount_minor, p.c.currency, p.c.balance_after_minor, a.c.key, a.c.kind,
                      a.c.normal_side)
            .select_from(p.join(a, a.c.id == p.c.account_id))
            .where(p.c.transaction_id.in_([r.id for r in rows])).order_by(p.c.id)):
        sign = 1 if row.normal_side == "debit" else -1
        postings.setdefault(row.transaction_id, []).append({
            "account": _public_account(row.key),
            "account_kind": row.kind,
            **_account_refs(row.key),
            "amount_minor": int(row.amount_minor),
            "currency": row.currency,
            "balance_after_minor": sign * int(row.balance_after_minor),
        })
    out = []
    for r in rows:
        external = None
        if r.external_source in PUBLIC_EXTERNAL_SOURCES and r.external_id:
            external = f"{r.external_source}:{r.external_id}"
        out.append({
            "seq": int(r.seq),
            "transaction_id": int(r.id),
            "kind": r.kind,
            "effective_on": r.effective_on.isoformat(),
            "recorded_at": _aware(r.recorded_at).isoformat(),
            "reverses_transaction_id": r.reverses_id,
            "external_reference": external,
            "seal_hash": bytes(r.hash).hex(),
            "postings": postings.get(r.id, []),
        })
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _public_account(key: str) -> str:
    """The account key without the circle id prefix (``pot:available``, ``pot:3:earmarked:12``)."""
    return key.split(":", 1)[1] if ":" in key else key


def _account_refs(key: str) -> dict[str, int | None]:
    parts = key.split(":")
    if len(parts) == 5 and parts[1] == "pot" and parts[3] == "earmarked":
        return {"round_id": int(parts[2]), "proposal_id": int(parts[4])}
    return {"round_id": None, "proposal_id": None}


LEDGER_CSV_COLUMNS = ("seq", "transaction_id", "kind", "effective_on", "recorded_at", "reverses_transaction_id",
                      "external_reference", "account", "account_kind", "round_id", "proposal_id", "amount_minor",
                      "currency", "balance_after_minor", "seal_hash")


def ledger_csv(entries: Iterable[Mapping[str, Any]]) -> str:
    """One row per posting (a transaction spans several rows sharing seq and transaction_id)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LEDGER_CSV_COLUMNS)
    for e in entries:
        for leg in e["postings"]:
            merged = {**e, **leg}
            writer.writerow([_csv_cell(merged[c]) for c in LEDGER_CSV_COLUMNS])
    return out.getvalue()


def ledger_document(session: Session, circle: Circle) -> dict[str, Any]:
    from fundcircle import ledger

    head = ledger.head(session, circle.id)
    return {
        "format": EXPORT_VERSION,
        "circle": {"slug": circle.slug, "name": circle.name, "currency": circle.currency},
        "chain_head": {"seq": head.seq, "hash": head.hash_hex},
        "balances": circle_balances(session, circle),
        "transactions": ledger_entries(session, circle),
    }


def circle_balances(session: Session, circle: Circle) -> dict[str, Any]:
    from fundcircle import ledger

    b = ledger.circle_balances(session, circle.id, circle.currency)
    return {"currency": circle.currency, "pot_available_minor": b.pot_available_minor,
            "earmarked_minor": b.earmarked_minor, "paid_out_minor": b.paid_out_minor, "fees_minor": b.fees_minor,
            "suspense_minor": b.suspense_minor}


def member_count(session: Session, circle: Circle) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(Membership)
                              .where(Membership.circle_id == circle.id)) or 0)


# -- receipts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceiptCheck:
    """What the receipt page shows for a code."""

    found: bool
    receipt_id: str = ""
    counted: bool = False
    excluded_reason: str = ""
    ballot_kind: str = ""
    #: (proposal id, title, what the ballot said about it), in ballot order
    choices: tuple[tuple[int, str, str], ...] = ()


def check_receipt(session: Session, tr: TalliedRound, code: str) -> ReceiptCheck:
    """Find the ballot of a receipt code in a tallied round and say how it was counted.

    Matches on the stored SHA-256 of the code (never the code itself), within this round only.
    """
    from fundcircle.voting import ballots as codec
    from fundcircle.voting.models import StoredBallot

    hash_hex = codec.receipt_hash(code)
    stored = session.scalar(sa.select(StoredBallot).where(StoredBallot.round_id == tr.round.id,
                                                          StoredBallot.receipt_hash == hash_hex))
    if stored is None or not hmac.compare_digest(stored.receipt_hash, hash_hex):
        return ReceiptCheck(found=False)
    receipt_id = codec.public_receipt_id(hash_hex)
    excluded = (tr.result.outcome or {}).get("excluded_ballots", {})
    _proposals, ballots = tallied_ballots(session, tr)
    counted = next((b for b in ballots if b.receipt_id == receipt_id), None)
    kind = BallotKind(stored.ballot_kind)
    value = counted.value if counted is not None else codec.value_from_items(kind, stored.items)
    titles = dict(session.execute(sa.select(Proposal.id, Proposal.title).where(Proposal.round_id == tr.round.id)).all())
    return ReceiptCheck(found=True, receipt_id=receipt_id, counted=counted is not None,
                        excluded_reason=excluded.get(receipt_id, "" if counted else "not part of the tally"),
                        ballot_kind=kind.value, choices=tuple(_describe_choices(kind, value, titles)))


def _describe_choices(kind: BallotKind, value: Any, titles: Mapping[int, str]) -> list[tuple[int, str, str]]:
    def title(pid: str) -> str:
        return titles.get(int(pid), f"Proposal #{pid}")

    if kind is BallotKind.APPROVAL:
        return [(int(pid), title(pid), "approved") for pid in sorted(value, key=int)]
    if kind is BallotKind.RANKING:
        return [(int(pid), title(pid), f"ranked {n}") for n, pid in enumerate(value, start=1)]
    if kind is BallotKind.CONSENT:
        return [(int(pid), title(pid), r.response.value + (f": {r.reason}" if r.reason else ""))
                for pid, r in sorted(value.items(), key=lambda kv: int(kv[0]))]
    word = {BallotKind.POINTS: "votes", BallotKind.SCORES: "score", BallotKind.ALLOCATION: "minor units"}[kind]
    return [(int(pid), title(pid), f"{word}: {v}") for pid, v in sorted(value.items(), key=lambda kv: int(kv[0]))]


# -- the documented schema (rendered at /data/schema) ----------------------------------------------

@dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    description: str


@dataclass(frozen=True)
class ExportDoc:
    key: str
    title: str
    filename: str
    media_type: str
    description: str
    fields: tuple[FieldDoc, ...]


def _f(name: str, type_: str, description: str) -> FieldDoc:
    return FieldDoc(name, type_, description)


_MONEY = "integer (minor units)"
_RESULT_PROPOSAL_FIELDS = (
    _f("proposal_id", "integer", "The proposal's id (the same id as on its page and in the API)."),
    _f("title", "string", "The proposal's title."),
    _f("status", "string", "submitted or withdrawn (drafts are never published)."),
    _f("screening", "string", "unscreened, eligible or ineligible (ineligible proposals were not on the ballot)."),
    _f("amount_requested_minor", _MONEY, "What the proposal asked for, in minor units of `currency` (cents)."),
    _f("currency", "string", "ISO 4217 code."),
    _f("on_ballot", "boolean", "Whether the proposal was on the ballot the rule tallied."),
    _f("score", "integer, string or null", "The rule's score for the proposal: approvals, votes, points, consents… "
       "Exact fractions are written as \"p/q\". Null when the proposal was not on the ballot."),
    _f("funded", "boolean", "Whether the rule funded it."),
    _f("amount_awarded_minor", _MONEY, "The amount awarded (0 when not funded)."),
    _f("selection_position", "integer or null", "The order in which the rule selected it (1 = first)."),
    _f("recusals", "integer", "How many members were recused from voting on it (conflicts of interest); the "
       "reasons are published only as categories on the results page."),
)

EXPORTS: tuple[ExportDoc, ...] = (
    ExportDoc("results.json", "Result (JSON)", "round-<id>-results.json", "application/json",
              "The stored result of a tallied round: rule, parameters, the public tie-break seed, totals and, per "
              "proposal, the score and the award, plus the rule's step-by-step explanation.", (
                  _f("format", "string", f"Layout version, currently {EXPORT_VERSION}."),
                  _f("circle.slug, circle.name", "string", "The circle."),
                  _f("round.id, round.title", "integer, string", "The round."),
                  _f("round.currency", "string", "ISO 4217 code of every amount in the file."),
                  _f("round.budget_minor", _MONEY, "The round's budget."),
                  _f("round.voting_open_at, round.voting_close_at", "string (ISO 8601, UTC)", "The voting window."),
                  _f("rule.id, rule.name", "string", "The voting rule (ids are stable; see `fundcircle rules`)."),
                  _f("rule.params", "object", "Every rule parameter with defaults filled in, as tallied."),
                  _f("tallied_at", "string (ISO 8601, UTC)", "When the result was stored."),
                  _f("ballot_count", "integer", "Ballots counted."),
                  _f("member_count", "integer", "Members of the circle at the close (turnout = ballots / members)."),
                  _f("excluded_ballot_count", "integer", "Ballots left out because they were no longer valid (e.g. "
                     "their only proposal was withdrawn during voting); the ballot list names them."),
                  _f("ballot_digest", "string (hex SHA-256)", "Digest of the canonical ballot export "
                     "(fundcircle-ballots/v1); recompute it from the ballot list."),
                  _f("seed", "string", "The public tie-break seed: fundcircle/v1|round=<id>|ballots=<digest>."),
                  _f("funded_total_minor", _MONEY, "Sum of the awards."),
                  *(FieldDoc("proposals[]." + f.name, f.type, f.description) for f in _RESULT_PROPOSAL_FIELDS),
                  _f("proposals[].why", "list of strings", "The rule's explanation sentences about this proposal."),
                  _f("trace[].action, trace[].proposal_id, trace[].message", "string, string or null, string",
                     "Every step of the tally in order (screen, fund, skip, tie, …) with a plain-language sentence."),
                  _f("ballots_published", "boolean", "False when the round had too few ballots to publish them one "
                     "by one (see below); the totals above are published either way."),
              )),
    ExportDoc("results.csv", "Result (CSV)", "round-<id>-results.csv", "text/csv",
              "One row per published proposal, the same fields as proposals[] in results.json (booleans as 1/0, "
              "empty for null). Cells that a spreadsheet would run as a formula are prefixed with an apostrophe.",
              _RESULT_PROPOSAL_FIELDS),
    ExportDoc("ballots.pb", "Anonymised ballots (pabulib .pb)", "round-<id>.pb", "text/plain",
              "The tallied ballots in the pabulib format (pabulib.org), so anyone can study them or re-run the "
              "tally with `fundcircle simulate round-<id>.pb --json`, which reproduces the published selection. "
              "Voters are numbered 1..n in an order derived from a keyed hash (HMAC-SHA256 under the server's "
              "secret) of each ballot's receipt id: neither account ids nor the order of voting can be read from "
              "it. Available for approval, ranking, points and score rules; consent and allocation rules cannot be "
              "written faithfully in this format (see below).", (
                  _f("META description, unit, subunit, instance", "text", "Circle name, round title and round id."),
                  _f("META country", "text", "Always `unknown` (pabulib requires the key)."),
                  _f("META date_begin, date_end", "dd.mm.yyyy", "The voting window."),
                  _f("META currency, budget", "text, decimal", "The budget in whole currency units."),
                  _f("META vote_type", "text", "approval, ordinal (rankings), cumulative (points and quadratic "
                     "votes) or scoring."),
                  _f("META rule", "text", "The pabulib rule word (greedy, equalshares/add1, …) when it means exactly "
                     "the round's rule and parameters, else `unknown`."),
                  _f("META comment", "text", "With rule `unknown`: `#1: fundcircle <rule id> <parameters as JSON>`, "
                     "which `fundcircle simulate` reads."),
                  _f("META fundcircle_round", "integer", "The round id, so the tie-break seed can be rebuilt from it "
                     "and the file's ballots."),
                  _f("META fundcircle_ballot_digest", "hex", "The round's ballot digest; the file's ballots hash to it."),
                  _f("META max_sum_points, min_points, min_sum_points", "integer", "Limits of cumulative files "
                     "(largest points total on a ballot; negative quadratic votes where allowed)."),
                  _f("META num_projects, num_votes", "integer", "Row counts of the sections below."),
                  _f("PROJECTS project_id", "text", "The proposal id."),
                  _f("PROJECTS cost", "decimal", "The amount requested, in currency units."),
                  _f("PROJECTS votes, score", "integer", "Supporters, and the points or Borda total where defined."),
                  _f("PROJECTS name", "text", "The proposal title."),
                  _f("PROJECTS selected", "0 or 1", "1 when the proposal was funded."),
                  _f("VOTES voter_id", "integer", "1..n, anonymous and shuffled (see above)."),
                  _f("VOTES vote", "comma list", "Proposal ids: approved, ranked best first, or given points."),
                  _f("VOTES points", "comma list of integers", "Points, votes or scores aligned with `vote`."),
              )),
    ExportDoc("ballots.json", "Ballot list with receipt ids (JSON)", "round-<id>-ballots.json", "application/json",
              "Every tallied ballot with its public receipt id, so each voter can find their own ballot and anyone "
              "can recount. A voter's receipt id is the first 16 hex digits of SHA-256 of "
              "\"fundcircle-receipt/v1|\" + the receipt code (letters and digits only, upper case); the code "
              "itself is never stored or published.", (
                  _f("format", "string", f"Layout version, currently {EXPORT_VERSION}."),
                  _f("round_id, rule, ballot_kind", "integer, string, string", "The round, its rule and ballot kind."),
                  _f("ballot_digest", "string (hex)", "As in results.json; the listed ballots hash to it."),
                  _f("ballot_count", "integer", "Number of ballots listed."),
                  _f("excluded[].receipt_id, excluded[].reason", "string", "Ballots left out of the tally and why."),
                  _f("ballots[].receipt_id", "string (16 hex)", "The public receipt id of the ballot."),
                  _f("ballots[].ballot", "list or object", "approval: approved proposal ids · ranking: ids best first · "
                     "points, scores, allocation: {proposal id: number} · consent: {proposal id: {response, reason}}."),
              )),
    ExportDoc("ballots.csv", "Ballot list with receipt ids (CSV)", "round-<id>-ballots.csv", "text/csv",
              "The ballot list as CSV: one row per ballot.", (
                  _f("receipt_id", "string (16 hex)", "The public receipt id."),
                  _f("ballot", "JSON text", "The ballot, written as in ballots.json."),
              )),
    ExportDoc("ledger.json", "Ledger (JSON)", "<circle>-ledger.json", "application/json",
              "Every sealed transaction of the circle's double-entry ledger, oldest first, with running balances. "
              "Treasurers' notes, payment processor ids and internal keys are not published.", (
                  _f("format", "string", f"Layout version, currently {EXPORT_VERSION}."),
                  _f("circle.slug, circle.name, circle.currency", "string", "The circle."),
                  _f("chain_head.seq, chain_head.hash", "integer, hex", "The latest seal of this circle's "
                     "transactions; it commits to every earlier transaction of every circle."),
                  _f("balances.currency", "string", "ISO 4217 code of the balances."),
                  _f("balances.*_minor", _MONEY, "Pot available, earmarked (awarded, unpaid), paid out, fees and "
                     "suspense (unmatched outside money), on their natural side."),
                  _f("transactions[].seq", "integer", "Position in the hash chain."),
                  _f("transactions[].transaction_id", "integer", "The transaction id."),
                  _f("transactions[].kind", "string", "contribution, transfer, award, payout, reversal, refund, fee, "
                     "adjustment or opening."),
                  _f("transactions[].effective_on", "date", "When the money moved."),
                  _f("transactions[].recorded_at", "string (ISO 8601, UTC)", "When it was recorded."),
                  _f("transactions[].reverses_transaction_id", "integer or null", "For a reversal: what it reverses."),
                  _f("transactions[].external_reference", "string or null", "The Open Collective expense of a payout "
                     "(opencollective:expense:<id>)."),
                  _f("transactions[].seal_hash", "hex", "The transaction's seal in the hash chain."),
                  _f("transactions[].postings[].account", "string", "pot:available, pot:<round>:earmarked:<proposal>, "
                     "stripe:clearing, oc:host, fees:stripe, fees:oc or suspense."),
                  _f("transactions[].postings[].account_kind", "string", "asset, liability or expense."),
                  _f("transactions[].postings[].round_id, …proposal_id", "integer or null", "For earmarks: the "
                     "award's round and proposal."),
                  _f("transactions[].postings[].amount_minor", _MONEY, "Signed, debit positive: money into the pot "
                     "is a credit (negative) on pot:available."),
                  _f("transactions[].postings[].currency", "string", "ISO 4217 code."),
                  _f("transactions[].postings[].balance_after_minor", _MONEY, "The account's balance after this "
                     "posting, on its natural side (a funded pot is positive)."),
              )),
    ExportDoc("ledger.csv", "Ledger (CSV)", "<circle>-ledger.csv", "text/csv",
              "The ledger as CSV: one row per posting; the rows of one transaction share seq and transaction_id.",
              tuple(_f(c, "", "As in ledger.json (transactions[] and postings[]).") for c in LEDGER_CSV_COLUMNS)),
)
