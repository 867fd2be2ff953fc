"""Helpers shared by the built-in rules (one module, so each helper exists once).

Two families of trace wording live here side by side, because the results page and its tests read
the sentences the rules already write:

* the ranked rules (score, borda, cumulative, quadratic, consent, irv, lottery, equal-allocation,
  quadratic-funding) print money with the currency (:func:`format_money`, a ``Budget``) and counts
  plainly (:func:`plural`);
* the approval rules (approval-greedy, mes, phragmen) print money in major units without currency,
  exact to the cent (:func:`format_units`, a ``unit_minor``) and counts with thousands separators
  (:func:`plural_thousands`).

Tie-break "votes" for the ranked rules: the number of *supporters* of a proposal, i.e. ballots that
give it a positive value (a positive score, points or votes; a place on a ranking; a consent).
The rank value itself (total, points...) is already equal inside a tie, so supporters is the
informative second key.
"""

from __future__ import annotations

import os
from collections import Counter, _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd
from operator import attrgetter, itemgetter
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.tiebreak import parse_tie_order, tie_key_function

try:  # optional exact accelerator (LGPL); Fraction is the fallback and gives identical results
    from gmpy2 import mpq as _mpq
except ImportError:  # pragma: no cover - depends on the environment
    _mpq = None


def number_type() -> Callable[..., Any]:
    """The exact rational type of the mes and phragmen engines: gmpy2's mpq when available, else
    Fraction (``FUNDCIRCLE_EXACT=fraction`` forces Fraction). Both are exact: same results."""
    if _mpq is not None and os.environ.get("FUNDCIRCLE_EXACT", "").lower() != "fraction":
        return _mpq
    return Fraction


def to_fraction(value: Any) -> Fraction:
    """An exact rational (mpq, Fraction, int) as a Fraction. Their numerator and denominator are
    already in lowest terms with a positive denominator, so no gcd is taken again."""
    if value.__class__ is Fraction:
        return value
    return _coprime_fraction(int(value.numerator), int(value.denominator))


_coprime_fraction: Callable[[int, int], Fraction] = getattr(Fraction, "_from_coprime_ints", None) or (
    lambda numerator, denominator: Fraction(numerator, denominator, _normalize=False))  # Python 3.11


# === ranked rules (score, borda, cumulative, quadratic, consent, ...) ================================

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



# === approval rules (approval-greedy, mes, phragmen) ============================================

MIN_APPROVALS_PARAM = Param("min_approvals", int, 1, help="fewest proposals a ballot must approve", min_value=0)
MAX_APPROVALS_PARAM = Param("max_approvals", int, None, optional=True, min_value=1,
                            help="most proposals a ballot may approve (empty = no limit)")


def format_units(amount_minor: int | Fraction, unit_minor: int) -> str:
    """An amount in major units for people: '1,234', '12.34' (exact rounding half up, display only)."""
    digits = str(unit_minor)
    decimals = len(digits) - 1 if digits.strip("0") == "1" else 2
    if amount_minor.__class__ is int:  # the common case, in integers: floor(amount·10^d/unit + 1/2)
        if amount_minor % unit_minor:
            decimals = max(decimals, 2)
        rounded = (2 * amount_minor * 10**decimals + unit_minor) // (2 * unit_minor)
    else:  # a rational: floor(amount·10^d/unit + 1/2) on its numerator and denominator, no Fraction arithmetic
        value = amount_minor if hasattr(amount_minor, "denominator") else Fraction(amount_minor)
        numerator, denominator = int(value.numerator), int(value.denominator) * unit_minor
        if numerator % denominator:
            decimals = max(decimals, 2)
        rounded = (2 * numerator * 10**decimals + denominator) // (2 * denominator)  # half up
    sign = "-" if rounded < 0 else ""
    whole, part = divmod(abs(rounded), 10**decimals)
    text = f"{whole:,}"
    return f"{sign}{text}.{part:0{decimals}d}" if decimals else f"{sign}{text}"


def plural_thousands(count: int, word: str) -> str:
    """'1 voter', '6,586 voters'."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


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
        raise ValidationError(f"Please approve at least {plural_thousands(low, 'proposal')} (this ballot approves "
                              f"{len(value)}).", field_errors={"ballot": [f"at least {low}"]})
    if high is not None and len(value) > high:
        raise ValidationError(f"Please approve at most {plural_thousands(high, 'proposal')} (this ballot approves "
                              f"{len(value)}).", field_errors={"ballot": [f"at most {high}"]})


def validate_approval_ballots(rule: Rule, ballots: Sequence[Ballot], proposals: Sequence[Proposal],
                              budget: Budget, params: Mapping[str, Any]) -> list[Ballot]:
    """Every ballot checked (the error names the first bad ballot's voter); empty ballots allowed by
    min_approvals=0 are abstentions and are left out of the returned list (and so out of n)."""
    return approval_ballots(rule, ballots, proposals, budget, params)[0]


def approval_ballots(rule: Rule, ballots: Sequence[Ballot], proposals: Sequence[Proposal], budget: Budget,
                     params: Mapping[str, Any]) -> tuple[list[Ballot], Counter[frozenset[str]]]:
    """:func:`validate_approval_ballots`, and the valid ballots' identical approval sets with their
    counts, in order of first appearance.

    The checks depend on the value only, and elections repeat the same few ballots thousands of
    times, so the distinct values are checked, all at once. Any problem sends the ballots through
    the one-by-one check, which raises for the first bad ballot in ballot order, naming its voter."""
    try:
        counts = Counter(map(attrgetter("value"), ballots))
    except TypeError:  # an unhashable value (a mutable set is fine, a list is not): one by one
        counts = None
    if counts is not None:
        known = frozenset(p.id for p in proposals)
        low, high = params.get("min_approvals", 1), params.get("max_approvals")
        abstentions = counts.pop(frozenset(), 0)
        # the checks of validate_approval_ballot, on all distinct values at once at C speed; the ids
        # are checked through the support index, which screen and the engines need anyway
        if (abstentions and low > 0) or not set(map(type, counts)) <= {frozenset} or (counts and (
                min(map(len, counts)) < low or (high is not None and max(map(len, counts)) > high))) or (
                not support_index(counts).keys() <= known):
            counts = None
        elif params.get("max_ballot_cost") is not None:
            try:
                for value in counts:
                    rule.validate_ballot(Ballot("", value), proposals, budget, params)
            except ValidationError:
                counts = None
    if counts is None:
        valid = _validate_one_by_one(rule, ballots, proposals, budget, params)
        return valid, approval_groups(valid)
    # the caller's list itself when nothing is left out: a tally only reads it (and a copy of
    # thousands of pointers is one more young list for every garbage collection during the tally)
    if abstentions:
        return [b for b in ballots if b.value], counts
    return (ballots if ballots.__class__ is list else list(ballots)), counts  # type: ignore[return-value]


def _validate_one_by_one(rule: Rule, ballots: Sequence[Ballot], proposals: Sequence[Proposal], budget: Budget,
                         params: Mapping[str, Any]) -> list[Ballot]:
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


def approval_groups(ballots: Sequence[Ballot]) -> Counter[frozenset[str]]:
    """Identical approval sets with their number of ballots, in order of first appearance."""
    return Counter(v if v.__class__ is frozenset else frozenset(v) for v in map(attrgetter("value"), ballots))


def support_index(groups: Mapping[frozenset[str], int]) -> dict[str, tuple[list[int], list[tuple[int, int]], int]]:
    """For each approved id: the indices (in ``groups`` order) of its supporting groups of one
    ballot, its heavier supporting groups with their weights, and its number of supporters.

    It is the one pass over every (group, approval) pair that :func:`screen` (the votes) and
    :class:`ApprovalGroups` (the supporters) both need, so it is kept on the Counter (when it can
    hold attributes) and reused while the Counter's contents are unchanged. Callers must not modify
    the lists."""
    keys, weights = list(groups), list(groups.values())
    cached = getattr(groups, "_fc_support", None)
    if cached is not None and cached[0] == keys and cached[1] == weights:
        return cached[2]
    single: dict[str, list[int]] = {}
    heavy: dict[str, list[tuple[int, int]]] = {}
    add_single: dict[str, Callable[[int], None]] = {}
    add_heavy: dict[str, Callable[[tuple[int, int]], None]] = {}
    for g, (approvals, count) in enumerate(zip(keys, weights)):
        if count == 1:
            for pid in approvals:
                try:
                    add_single[pid](g)
                except KeyError:  # first time this id is seen
                    single[pid], heavy[pid] = [g], []
                    add_single[pid], add_heavy[pid] = single[pid].append, heavy[pid].append
        else:
            entry = (g, count)
            for pid in approvals:
                try:
                    add_heavy[pid](entry)
                except KeyError:
                    single[pid], heavy[pid] = [], [entry]
                    add_single[pid], add_heavy[pid] = single[pid].append, heavy[pid].append
    weight_of = itemgetter(1)
    index = {pid: (found, heavy[pid], len(found) + sum(map(weight_of, heavy[pid]))) for pid, found in single.items()}
    try:
        groups._fc_support = (keys, weights, index)  # type: ignore[attr-defined]
    except AttributeError:  # a plain dict of groups: nothing to keep it on
        pass
    return index


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
    #: identical approval sets of ``ballots`` with their counts (see :func:`approval_groups`)
    groups: Counter[frozenset[str]] = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return len(self.ballots)


def screen(proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget, seed: str,
           tie_order: str, groups: Counter[frozenset[str]] | None = None) -> Screening:
    """§0 steps (1) and (2): drop c_p > B; fund supported zero-cost proposals at 0. Unsupported
    proposals cannot be bought by any approval rule, so they leave here too (with a sentence).
    ``groups`` (from :func:`approval_ballots`) saves grouping the ballots again, and its support
    index (:func:`support_index`) counting the votes."""
    if groups is None:
        groups = approval_groups(ballots)
    support = support_index(groups)
    votes = {p.id: support[p.id][2] if p.id in support else 0 for p in proposals}
    unit = budget.unit_minor
    trace: list[TraceStep] = []
    candidates: list[Proposal] = []
    free: list[Proposal] = []
    for p in proposals:
        if p.cost_minor > budget.amount_minor:
            trace.append(TraceStep("screen", f"Not funded: it costs {format_units(p.cost_minor, unit)}, more than "
                                   f"the whole budget of {format_units(budget.amount_minor, unit)}.", p.id,
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
        trace.append(TraceStep("fund", f"Funded: it costs nothing and {plural_thousands(votes[p.id], 'voter')} "
                               f"approved it.", p.id, {"votes": votes[p.id], "amount_minor": 0}))
    return Screening(candidates, free, votes, ballots if ballots.__class__ is list else list(ballots), trace, groups)


def no_approval_ballots_outcome(rule_id: str, params: dict[str, Any], budget: Budget, seed: str) -> Outcome:
    """The approval rules' outcome when no (non-empty) ballot was cast."""
    return Outcome(rule_id, params, {}, {}, [TraceStep("stop", "Nothing was funded: no ballots were cast.")],
                   seed=seed, budget_minor=budget.amount_minor, summary={"n": 0, "reason": "no ballots"})


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


# === exact engines (mes, phragmen) ================================================================


class ApprovalGroups:
    """Approval ballots grouped for the mes and phragmen engines, prepared once per tally.

    Ballots with the same approvals among the candidates form one group with a weight (the number of
    ballots). Each candidate's supporting groups are kept twice: all of them (``supporters``), and
    split into groups of one ballot and heavier groups with their weights, so that counting which
    budget class (mes) or load class (phragmen) the supporters are in runs in ``collections.Counter``
    at C speed for the single ballots (:meth:`class_weights`).
    """

    def __init__(self, candidates: Sequence[Proposal], groups: Mapping[frozenset[str], int] | Sequence[Ballot]) -> None:
        self.candidates = list(candidates)
        if not isinstance(groups, Mapping):
            groups = approval_groups(groups)
        index = self._index = {p.id: i for i, p in enumerate(self.candidates)}
        support = support_index(groups)
        if not support.keys() <= index.keys():  # some approve non-candidates: drop those, merging the groups
            candidate_ids = frozenset(index)   # that become equal
            merged: dict[frozenset[str], int] = {}
            for value, count in groups.items():
                key = value & candidate_ids
                merged[key] = merged.get(key, 0) + count
            groups = merged
            support = support_index(groups)
        #: each group's approved candidates (ids), and its weight
        self.group_approvals = list(groups)
        self.group_weight = list(groups.values())
        nobody: tuple[list[int], list[tuple[int, int]], int] = ([], [], 0)
        rows = [support.get(p.id, nobody) for p in self.candidates]
        # the index's own lists, not copies: read-only here and in every engine (the index may be
        # shared with screen and other engines built from the same groups)
        self.single_supporters = [row[0] for row in rows]
        self.heavy_supporters = [row[1] for row in rows]
        first = itemgetter(0)
        self.supporters = [row[0] + list(map(first, row[1])) for row in rows]
        self.weight = [row[2] for row in rows]
        self._neighbours: dict[int, list[int]] = {}

    def neighbours(self, p: int) -> list[int]:
        """Candidates sharing a supporter with p (their prices change when p is bought); built on first use."""
        found = self._neighbours.get(p)
        if found is None:
            ids = frozenset().union(*map(self.group_approvals.__getitem__, self.supporters[p]))
            found = self._neighbours[p] = sorted(map(self._index.__getitem__, ids - {self.candidates[p].id}))
        return found

    def class_weights(self, p: int, class_of: list[int]) -> Counter[int]:
        """Weight of p's supporters in each class of ``class_of`` other than class 0."""
        counts: Counter[int] = Counter.__new__(Counter)  # Counter() costs more than the counting here
        _count_elements(counts, map(class_of.__getitem__, self.single_supporters[p]))
        for g, w in self.heavy_supporters[p]:
            counts[class_of[g]] += w
        counts.pop(0, None)
        return counts


class ExactSum:
    """Σ value·weight of exact rationals, kept as one integer over the lcm of the denominators seen:
    adding a term costs integer work only, and the fraction is reduced once, when read. (After many
    purchases budgets have denominators of hundreds of digits that share most of their factors;
    adding them as fractions would reduce the running total after every term.)"""

    __slots__ = ("numerator", "denominator")

    def __init__(self) -> None:
        self.numerator, self.denominator = 0, 1

    def add(self, values: Iterable[Any], weights: Iterable[int]) -> None:
        total, den = self.numerator, self.denominator
        for value, weight in zip(values, weights):
            d = value.denominator
            if den % d:
                grown = den // gcd(den, d) * d
                total *= grown // den
                den = grown
            total += value.numerator * (den // d) * weight
        self.numerator, self.denominator = total, den
