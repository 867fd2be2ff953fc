"""Score voting (``score``), plus the shared machinery of the "rank by a number, fund greedily"
rules (score, borda, cumulative, quadratic, consent's overflow).

The shared helpers live here rather than in a ``_common`` module only because of file ownership
in the first commit; they are public, documented and used by sibling rule modules.

Tie-break "votes" for these rules: the number of *supporters* of a proposal, i.e. ballots that
give it a positive value (a positive score, points or votes; a place on a ranking; a consent).
The rank value itself (total, points...) is already equal inside a tie, so supporters is the
informative second key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.tiebreak import parse_tie_order, tie_key_function

RankValue = int | Fraction

# --- formatting for trace messages (display only; never used for a decision) ---------------------


def format_money(amount_minor: int, budget: Budget) -> str:
    """``1250`` with unit_minor 100 -> ``"12.50 EUR"``; whole-unit currencies print no decimals."""
    unit_minor = budget.unit_minor
    digits = str(unit_minor)
    is_power_of_ten = digits[0] == "1" and set(digits[1:]) <= {"0"}
    if not is_power_of_ten:
        return f"{amount_minor} minor units of {budget.currency}"
    decimals = len(digits) - 1
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), unit_minor)
    if decimals == 0:
        return f"{sign}{whole:,} {budget.currency}"
    return f"{sign}{whole:,}.{frac:0{decimals}d} {budget.currency}"


def format_fraction(value: RankValue, decimals: int = 2) -> str:
    """An exact number shown with a few decimals, rounded half up with integer arithmetic."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    scale = 10**decimals
    scaled = (abs(value) * scale * 2 + 1) // 2  # round half up on the magnitude
    sign = "-" if value < 0 else ""
    whole, frac = divmod(int(scaled), scale)
    return f"{sign}{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".")


def plural(count: int, word: str, plural_word: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural_word or word + 's')}"


TIE_REASONS = {
    "cost_asc": "it costs less",
    "cost_desc": "it costs more",
    "votes_desc": "more members supported it",
    "votes_asc": "fewer members supported it",
    "id": "its id sorts first",
    "lottery": "the public lottery (seeded from the round and its ballots) put it first",
}


# --- screening (voting-rules.md §0) ------------------------------------------------------------


def screen_unaffordable(proposals: Sequence[Proposal], budget: Budget) -> tuple[list[Proposal], list[TraceStep]]:
    """Step (1) of §0: drop every proposal that costs more than the whole budget, and log it."""
    kept: list[Proposal] = []
    trace: list[TraceStep] = []
    for proposal in proposals:
        if proposal.cost_minor > budget.amount_minor:
            trace.append(TraceStep(
                "screen",
                f"Not funded: it asks for {format_money(proposal.cost_minor, budget)}, more than the whole "
                f"budget of {format_money(budget.amount_minor, budget)}.",
                proposal.id,
                {"cost_minor": proposal.cost_minor, "budget_minor": budget.amount_minor},
            ))
        else:
            kept.append(proposal)
    return kept, trace


def no_ballots_outcome(rule: Rule, params: Mapping[str, Any], budget: Budget, seed: str,
                       trace: list[TraceStep] | None = None) -> Outcome:
    """§0: with no (non-abstaining) ballots a ballot rule funds nothing, reason "no ballots"."""
    steps = list(trace or [])
    steps.append(TraceStep("stop", "Nothing was funded: no ballots were cast.", None,
                           {"reason": "no ballots", "left_minor": budget.amount_minor}))
    return Outcome(rule_id=rule.id, params=dict(params), funded={}, scores={}, trace=steps, seed=seed,
                   budget_minor=budget.amount_minor, summary={"ballots": 0})


# --- ballot checks shared by the rules ---------------------------------------------------------


def raise_if_errors(field_errors: dict[str, list[str]], what: str = "Your ballot") -> None:
    """One ValidationError listing every problem, with field_errors keyed by proposal id."""
    if not field_errors:
        return
    sentences = [f"{key}: {'; '.join(messages)}" for key, messages in field_errors.items()]
    raise ValidationError(f"{what} cannot be accepted. " + " ".join(sentences), field_errors=field_errors)


def check_int_mapping(ballot: Ballot, proposals: Sequence[Proposal], noun: str) -> dict[str, int]:
    """The ballot value must map known proposal ids to whole numbers; returns it as a dict."""
    if not isinstance(ballot.value, Mapping):
        raise ValidationError(f"A ballot for this rule gives a number of {noun} per proposal.",
                              field_errors={"ballot": ["must map proposal ids to numbers"]})
    known = {p.id for p in proposals}
    errors: dict[str, list[str]] = {}
    values: dict[str, int] = {}
    for proposal_id, amount in ballot.value.items():
        if proposal_id not in known:
            errors.setdefault(str(proposal_id), []).append("there is no such proposal in this round")
        elif isinstance(amount, bool) or not isinstance(amount, int):
            errors.setdefault(proposal_id, []).append(f"{noun} must be a whole number")
        else:
            values[proposal_id] = amount
    raise_if_errors(errors)
    return values


def check_ballots(rule: Rule, ballots: Sequence[Ballot], proposals: Sequence[Proposal], budget: Budget,
                  params: Mapping[str, Any]) -> None:
    """The tally re-validates every ballot (cheap, and it keeps the budget guarantees even if a bad
    ballot slipped into storage) and refuses two ballots from one voter."""
    seen: set[str] = set()
    for ballot in ballots:
        if ballot.voter_id in seen:
            raise ValidationError(f"Voter {ballot.voter_id!r} has more than one ballot in this tally.",
                                  field_errors={"ballots": [f"duplicate voter {ballot.voter_id}"]})
        seen.add(ballot.voter_id)
        try:
            rule.validate_ballot(ballot, proposals, budget, params)
        except ValidationError as err:
            raise ValidationError(f"Ballot of voter {ballot.voter_id!r}: {err.user_message}",
                                  field_errors=err.field_errors) from None


# --- ranking and greedy funding ----------------------------------------------------------------


def deciding_component(tie_order: str, key_a: tuple, key_b: tuple) -> str:
    """The first tie-order component on which two tie keys differ (the lottery always differs)."""
    for component, a, b in zip(parse_tie_order(tie_order), key_a, key_b):
        if a != b:
            return component
    return "lottery"


def rank_proposals(candidates: Sequence[Proposal], rank_values: Mapping[str, RankValue],
                   supporters: Mapping[str, int], tie_order: str, seed: str) -> list[Proposal]:
    """Order by (-rank value, TIE): the selection order of every greedy rule here."""
    tie_key = tie_key_function(tie_order, seed, supporters)
    return sorted(candidates, key=lambda p: (-rank_values[p.id], tie_key(p)))


def tie_steps(ranked: Sequence[Proposal], rank_values: Mapping[str, RankValue], supporters: Mapping[str, int],
              tie_order: str, seed: str, describe: Callable[[str], str]) -> dict[str, TraceStep]:
    """For each proposal that follows one with the same rank value, a step saying what broke the tie."""
    tie_key = tie_key_function(tie_order, seed, supporters)
    steps: dict[str, TraceStep] = {}
    for before, after in zip(ranked, ranked[1:]):
        if rank_values[before.id] != rank_values[after.id]:
            continue
        component = deciding_component(tie_order, tie_key(before), tie_key(after))
        steps[after.id] = TraceStep(
            "tie",
            f"Tied with {before.id} (both have {format_fraction(rank_values[after.id])}); {before.id} goes "
            f"first because "
            f"{TIE_REASONS[component]}.",
            after.id,
            {"tied_with": before.id, "deciding_component": component},
        )
    return steps


def fund_greedily(ranked: Sequence[Proposal], rank_values: Mapping[str, RankValue],
                  supporters: Mapping[str, int], budget: Budget, params: Mapping[str, Any], seed: str,
                  describe: Callable[[str], str]) -> tuple[dict[str, int], list[TraceStep]]:
    """Fund proposals in ``ranked`` order, skipping any that no longer fit.

    Zero-cost proposals are funded first at 0 (§0 screening step 2); they never change the money
    left. Returns (funded amounts in selection order, trace).
    """
    tie_order = params["tie_order"]
    ties = tie_steps(ranked, rank_values, supporters, tie_order, seed, describe)
    funded: dict[str, int] = {}
    trace: list[TraceStep] = []
    left_minor = budget.amount_minor
    for proposal in ranked:
        if proposal.cost_minor == 0:
            funded[proposal.id] = 0
            trace.append(TraceStep("fund", f"Funded at 0: it costs nothing and it had {describe(proposal.id)}.",
                                   proposal.id, {"score": rank_values[proposal.id], "cost_minor": 0,
                                                 "left_minor": left_minor}))
    position = 0
    for proposal in ranked:
        if proposal.cost_minor == 0:
            continue
        position += 1
        if proposal.id in ties:
            trace.append(ties[proposal.id])
        data = {"rank": position, "score": rank_values[proposal.id], "supporters": supporters.get(proposal.id, 0),
                "cost_minor": proposal.cost_minor, "left_before_minor": left_minor}
        if proposal.cost_minor <= left_minor:
            left_minor -= proposal.cost_minor
            funded[proposal.id] = proposal.cost_minor
            trace.append(TraceStep(
                "fund",
                f"Funded: ranked #{position} with {describe(proposal.id)}; it costs "
                f"{format_money(proposal.cost_minor, budget)}, leaving {format_money(left_minor, budget)}.",
                proposal.id, {**data, "left_minor": left_minor}))
        else:
            trace.append(TraceStep(
                "skip",
                f"Not funded: ranked #{position} with {describe(proposal.id)}, but it costs "
                f"{format_money(proposal.cost_minor, budget)} and only {format_money(left_minor, budget)} was left.",
                proposal.id, {**data, "left_minor": left_minor}))
    return funded, trace


def unsupported_steps(proposals: Sequence[Proposal], eligible_ids: set[str],
                      reason: Callable[[str], str]) -> list[TraceStep]:
    """A "not funded" step for every screened proposal that did not enter the ranking."""
    return [TraceStep("skip", f"Not funded: {reason(p.id)}.", p.id, {}) for p in proposals
            if p.id not in eligible_ids]


def count_supporters(values: Sequence[Mapping[str, int]]) -> dict[str, int]:
    """Ballots giving each proposal a positive value."""
    supporters: dict[str, int] = {}
    for value in values:
        for proposal_id, amount in value.items():
            if amount > 0:
                supporters[proposal_id] = supporters.get(proposal_id, 0) + 1
    return supporters


def greedy_outcome(rule: Rule, proposals: Sequence[Proposal], rank_values: Mapping[str, RankValue],
                   supporters: Mapping[str, int], eligible: Callable[[str], bool], budget: Budget,
                   params: Mapping[str, Any], seed: str, describe: Callable[[str], str],
                   not_eligible_reason: Callable[[str], str], ballots_counted: int,
                   pre_trace: Sequence[TraceStep] = ()) -> Outcome:
    """Screen, rank the eligible proposals by (-value, TIE), fund greedily: the whole shape of
    quadratic, score, borda and cumulative."""
    screened, trace = screen_unaffordable(proposals, budget)
    trace = list(pre_trace) + trace
    candidates = [p for p in screened if eligible(p.id)]
    ranked = rank_proposals(candidates, rank_values, supporters, params["tie_order"], seed)
    funded, fund_trace = fund_greedily(ranked, rank_values, supporters, budget, params, seed, describe)
    trace += fund_trace
    trace += unsupported_steps(screened, {p.id for p in candidates}, not_eligible_reason)
    left_minor = budget.amount_minor - sum(funded.values())
    trace.append(TraceStep("done", f"{plural(len(funded), 'proposal')} funded for "
                           f"{format_money(sum(funded.values()), budget)}; {format_money(left_minor, budget)} "
                           f"stays in the pot.", None, {"left_minor": left_minor}))
    return Outcome(rule_id=rule.id, params=dict(params), funded=funded,
                   scores={p.id: rank_values.get(p.id, 0) for p in proposals}, trace=trace, seed=seed,
                   budget_minor=budget.amount_minor,
                   summary={"ballots": ballots_counted, "ranking": [p.id for p in ranked]})


# --- rounding exact shares to minor units -------------------------------------------------------


def round_shares(ideal: Mapping[str, Fraction], lottery: Callable[[str], int]) -> dict[str, int]:
    """Floor each exact share; hand the leftover units (⌊Σ ideal⌋ − Σ floors) out one each by largest
    remainder, ties by ascending lottery key. No share ever exceeds its ceiling, and the result sums
    to ⌊Σ ideal⌋, so rounding never spends more than the exact shares do."""
    floors = {key: value.numerator // value.denominator for key, value in ideal.items()}
    leftover = int(sum(ideal.values(), Fraction(0))) - sum(floors.values())
    by_remainder = sorted((key for key in ideal if ideal[key] != floors[key]),
                          key=lambda key: (-(ideal[key] - floors[key]), lottery(key)))
    assert 0 <= leftover <= len(by_remainder)  # the leftover is below the count of non-integer shares
    for key in by_remainder[:leftover]:
        floors[key] += 1
    return floors


# --- the score rule ----------------------------------------------------------------------------


@register
class ScoreRule(Rule):
    """Score voting (voting-rules.md §2.1 ``score``; Loomio's score poll).

    Each voter rates any proposals they like with a whole number in [min_score, max_score]; an
    unrated proposal adds nothing and has no rater. Proposals are ranked by total (or, with
    ``rank_by=average``, by the exact mean over their raters, needing ``min_raters``) and funded
    greedily, skipping misfits. A proposal is only funded with a total (or average) above zero:
    a zero score is no support. An empty ballot is an abstention.
    """

    id = "score"
    name = "Score voting"
    description = (
        "Give each proposal you have an opinion on a score (by default from 0 to 5). "
        "Proposals are ranked by their total score and funded from the top until the money runs out; "
        "a proposal too expensive for what is left is skipped."
    )
    ballot_kind = BallotKind.SCORES
    params = (
        Param("min_score", int, 0, help="lowest score a voter can give"),
        Param("max_score", int, 5, help="highest score a voter can give"),
        Param("rank_by", str, "total", help="rank by total score or by average over raters",
              choices=("total", "average")),
        Param("min_raters", int, 1, help="with rank_by=average, raters a proposal needs", min_value=1),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["min_score"] >= params["max_score"]:
            raise ValidationError("min_score must be lower than max_score",
                                  field_errors={"min_score": ["must be lower than max_score"]})

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        scores = check_int_mapping(ballot, proposals, "score")
        low, high = params["min_score"], params["max_score"]
        errors = {pid: [f"score {score} is outside {low}..{high}"] for pid, score in scores.items()
                  if not low <= score <= high}
        raise_if_errors(errors)

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        counted = [dict(b.value) for b in ballots if b.value]  # empty ballot = abstention
        if not counted:
            return no_ballots_outcome(self, params, budget, seed)
        totals: dict[str, int] = {p.id: 0 for p in proposals}
        raters: dict[str, int] = {p.id: 0 for p in proposals}
        for value in counted:
            for proposal_id, score in value.items():
                totals[proposal_id] += score
                raters[proposal_id] += 1
        by_average = params["rank_by"] == "average"
        rank_values: dict[str, RankValue] = {
            pid: (Fraction(totals[pid], raters[pid]) if raters[pid] else Fraction(0)) if by_average else totals[pid]
            for pid in totals
        }
        supporters = count_supporters(counted)

        def eligible(pid: str) -> bool:
            enough_raters = raters[pid] >= params["min_raters"] if by_average else raters[pid] > 0
            return enough_raters and rank_values[pid] > 0

        def describe(pid: str) -> str:
            if by_average:
                return (f"an average score of {format_fraction(rank_values[pid])} from "
                        f"{plural(raters[pid], 'rater')}")
            return f"a total score of {totals[pid]} from {plural(raters[pid], 'rater')}"

        def not_eligible(pid: str) -> str:
            if raters[pid] == 0:
                return "nobody rated it"
            if by_average and raters[pid] < params["min_raters"]:
                return (f"only {plural(raters[pid], 'member')} rated it and it needs at least "
                        f"{params['min_raters']}")
            return f"its score ({describe(pid)}) is not above zero"

        return greedy_outcome(self, proposals, rank_values, supporters, eligible, budget, params, seed,
                              describe, not_eligible, len(counted))
