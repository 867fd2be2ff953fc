"""``approval-greedy``: fund the most-approved proposals first, skipping what no longer fits
(voting-rules.md §2.1; pabulib ``greedy``).

This module also holds the approval-ballot helpers the other approval rules (``mes``,
``phragmen``) share: ballot validation, the screening of §0 and money formatting for traces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.tiebreak import tie_key_function

MIN_APPROVALS_PARAM = Param("min_approvals", int, 1, help="fewest proposals a ballot must approve", min_value=0)
MAX_APPROVALS_PARAM = Param("max_approvals", int, None, optional=True, min_value=1,
                            help="most proposals a ballot may approve (empty = no limit)")


# --- money in sentences ----------------------------------------------------------------------


def format_money(amount_minor: int | Fraction, unit_minor: int) -> str:
    """An amount in major units for people: '1,234', '12.34' (exact rounding half up, display only)."""
    value = Fraction(amount_minor) / unit_minor
    decimals = len(str(unit_minor)) - 1 if str(unit_minor).strip("0") == "1" else 2
    if value.denominator != 1:
        decimals = max(decimals, 2)
    scaled = value * 10**decimals
    rounded = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)  # half up
    sign = "-" if rounded < 0 else ""
    whole, part = divmod(abs(rounded), 10**decimals)
    text = f"{whole:,}"
    return f"{sign}{text}.{part:0{decimals}d}" if decimals else f"{sign}{text}"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# --- ballots ---------------------------------------------------------------------------------



def check_approval_bounds(params: Mapping[str, Any]) -> None:
    """Cross-check of MIN_APPROVALS_PARAM and MAX_APPROVALS_PARAM, shared by the approval rules."""
    if params["max_approvals"] is not None and params["max_approvals"] < params["min_approvals"]:
        raise ValidationError("max_approvals must be at least min_approvals",
                              field_errors={"max_approvals": ["below min_approvals"]})

def validate_approval_ballot(ballot: Ballot, proposals: Sequence[Proposal], params: Mapping[str, Any],
                             known: set[str] | frozenset[str] | None = None) -> None:
    """An approval ballot is a set of known proposal ids within [min_approvals, max_approvals].
    ``known`` (the proposal ids) may be passed in when checking many ballots."""
    value = ballot.value
    if not isinstance(value, (set, frozenset)):
        raise ValidationError("An approval ballot is a set of proposals.", field_errors={"ballot": ["not a set"]})
    if known is None:
        known = {p.id for p in proposals}
    unknown = sorted(str(v) for v in value if v not in known)
    if unknown:
        raise ValidationError(f"This ballot names proposals that are not in the round: {', '.join(unknown)}.",
                              field_errors={u: ["unknown proposal"] for u in unknown})
    low, high = params.get("min_approvals", 1), params.get("max_approvals")
    if len(value) < low:
        raise ValidationError(f"Please approve at least {plural(low, 'proposal')} (this ballot approves "
                              f"{len(value)}).", field_errors={"ballot": [f"at least {low}"]})
    if high is not None and len(value) > high:
        raise ValidationError(f"Please approve at most {plural(high, 'proposal')} (this ballot approves "
                              f"{len(value)}).", field_errors={"ballot": [f"at most {high}"]})


def validate_approval_ballots(rule: Rule, ballots: Sequence[Ballot], proposals: Sequence[Proposal],
                              budget: Budget, params: Mapping[str, Any]) -> list[Ballot]:
    """Every ballot checked (the error names the voter); empty ballots allowed by min_approvals=0 are
    abstentions and are left out of the returned list (and so out of n)."""
    valid = []
    known = frozenset(p.id for p in proposals)
    # the shared approval checks run with the id set built once; a rule with more checks than
    # those (approval-greedy's max_ballot_cost) gets its own validate_ballot called too
    extra_checks = params.get("max_ballot_cost") is not None
    for ballot in ballots:
        try:
            validate_approval_ballot(ballot, proposals, params, known)
            if extra_checks:
                rule.validate_ballot(ballot, proposals, budget, params)
        except ValidationError as exc:
            raise ValidationError(f"ballot of voter {ballot.voter_id!r}: {exc.user_message}",
                                  field_errors=exc.field_errors) from None
        if ballot.value:
            valid.append(ballot)
    return valid


# --- screening (§0) --------------------------------------------------------------------------


@dataclass
class Screening:
    """What is left after §0's screening, with the trace of what was removed and why."""

    #: proposals the rule's own loop decides on (cost > 0, cost <= B, supported, eligible), input order
    candidates: list[Proposal]
    #: supported zero-cost proposals, funded at 0 outside the loop
    free: list[Proposal]
    votes: dict[str, int]
    #: valid non-empty ballots
    ballots: list[Ballot]
    trace: list[TraceStep] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ballots)


def screen(proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget, seed: str,
           tie_order: str) -> Screening:
    """§0 steps (1) and (2): drop c_p > B; fund supported zero-cost proposals at 0. Unsupported
    proposals cannot be bought by any approval rule, so they leave here too (with a sentence)."""
    votes = {p.id: 0 for p in proposals}
    for ballot in ballots:
        for pid in ballot.value:
            votes[pid] += 1
    unit = budget.unit_minor
    trace: list[TraceStep] = []
    candidates: list[Proposal] = []
    free: list[Proposal] = []
    for p in proposals:
        if p.cost_minor > budget.amount_minor:
            trace.append(TraceStep("screen", f"Not funded: it costs {format_money(p.cost_minor, unit)}, more than "
                                   f"the whole budget of {format_money(budget.amount_minor, unit)}.", p.id,
                                   {"cost_minor": p.cost_minor, "budget_minor": budget.amount_minor}))
        elif votes[p.id] == 0:
            trace.append(TraceStep("skip", "Not funded: nobody approved it.", p.id, {"votes": 0}))
        elif p.cost_minor == 0:
            free.append(p)
        else:
            candidates.append(p)
    key = tie_key_function(tie_order, seed, votes)
    free.sort(key=key)
    for p in free:
        trace.append(TraceStep("fund", f"Funded: it costs nothing and {plural(votes[p.id], 'voter')} approved it.",
                               p.id, {"votes": votes[p.id], "amount_minor": 0}))
    return Screening(candidates, free, votes, list(ballots), trace)


def no_ballots_outcome(rule_id: str, params: dict[str, Any], budget: Budget, seed: str) -> Outcome:
    return Outcome(rule_id, params, {}, {}, [TraceStep("stop", "Nothing was funded: no ballots were cast.")],
                   seed=seed, budget_minor=budget.amount_minor, summary={"n": 0, "reason": "no ballots"})


# --- the rule --------------------------------------------------------------------------------


def greedy_order(candidates: Sequence[Proposal], votes: Mapping[str, int], order: str,
                 tie_key: Any) -> list[Proposal]:
    """Candidates by (-votes, TIE) or (-votes/cost, TIE): the greedy visiting order."""
    if order == "votes_per_cost":
        return sorted(candidates, key=lambda p: (-Fraction(votes[p.id], p.cost_minor), tie_key(p)))
    return sorted(candidates, key=lambda p: (-votes[p.id], tie_key(p)))


def greedy_select(ordered: Sequence[Proposal], budget_minor: int, skip: bool = True) -> list[Proposal]:
    """Take proposals in order while they fit (``skip=False``: stop at the first misfit)."""
    chosen, spent = [], 0
    for p in ordered:
        if spent + p.cost_minor <= budget_minor:
            chosen.append(p)
            spent += p.cost_minor
        elif not skip:
            break
    return chosen


@register
class ApprovalGreedy(Rule):
    id = "approval-greedy"
    name = "Approval voting, most votes first"
    description = ("Approve every proposal you like. Proposals are funded in order of how many people "
                   "approved them; a proposal that no longer fits the money left is skipped and the next "
                   "one is tried.")
    ballot_kind = BallotKind.APPROVAL
    params = (
        MIN_APPROVALS_PARAM,
        MAX_APPROVALS_PARAM,
        Param("max_ballot_cost", int, None, optional=True, min_value=0,
              help="most a ballot's approved proposals may cost together, in minor units (empty = no limit)"),
        Param("order", str, "votes", choices=("votes", "votes_per_cost"),
              help="rank by votes, or by votes per unit of cost"),
        Param("skip", bool, True, help="skip a proposal that does not fit and go on (false: stop there)"),
        Param("min_votes", int, 0, min_value=0, help="proposals with fewer votes are not eligible"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_approval_bounds(params)

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        validate_approval_ballot(ballot, proposals, params)
        limit = params.get("max_ballot_cost")
        if limit is not None:
            costs = {p.id: p.cost_minor for p in proposals}
            total = sum(costs[pid] for pid in ballot.value)
            if total > limit:
                raise ValidationError(
                    f"The proposals you approved cost {format_money(total, budget.unit_minor)} together; "
                    f"the limit is {format_money(limit, budget.unit_minor)}.",
                    field_errors={"ballot": ["over the cost limit"]})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = dict(params)
        valid = validate_approval_ballots(self, ballots, proposals, budget, params)
        if not valid:
            return no_ballots_outcome(self.id, params, budget, seed)
        screening = screen(proposals, valid, budget, seed, params["tie_order"])
        votes, unit, trace = screening.votes, budget.unit_minor, list(screening.trace)
        funded = {p.id: 0 for p in screening.free}
        eligible = []
        for p in screening.candidates:
            if votes[p.id] < params["min_votes"]:
                trace.append(TraceStep("screen", f"Not funded: {plural(votes[p.id], 'vote')}, below the minimum of "
                                       f"{params['min_votes']:,}.", p.id, {"votes": votes[p.id]}))
            else:
                eligible.append(p)
        tie_key = tie_key_function(params["tie_order"], seed, votes)
        ordered = greedy_order(eligible, votes, params["order"], tie_key)
        spent, stopped = 0, False
        for p in ordered:
            left = budget.amount_minor - spent
            data = {"votes": votes[p.id], "cost_minor": p.cost_minor, "left_minor": left}
            if stopped:
                trace.append(TraceStep("skip", "Not funded: the rule stops at the first proposal that does not fit.",
                                       p.id, data))
            elif p.cost_minor <= left:
                spent += p.cost_minor
                funded[p.id] = p.cost_minor
                trace.append(TraceStep("fund", f"Funded: {plural(votes[p.id], 'voter')} approved it; it costs "
                                       f"{format_money(p.cost_minor, unit)}, leaving "
                                       f"{format_money(left - p.cost_minor, unit)}.", p.id, data))
            else:
                stopped = not params["skip"]
                trace.append(TraceStep("skip", f"Not funded: {plural(votes[p.id], 'voter')} approved it, but it "
                                       f"needed {format_money(p.cost_minor, unit)} and only "
                                       f"{format_money(left, unit)} was left.", p.id, data))
        scores: dict[str, int | Fraction] = dict(votes) if params["order"] == "votes" else {
            p.id: Fraction(votes[p.id], p.cost_minor) if p.cost_minor else Fraction(votes[p.id]) for p in proposals}
        return Outcome(self.id, params, funded, scores, trace, seed=seed, budget_minor=budget.amount_minor,
                       summary={"n": screening.n, "spent_minor": spent + 0})
