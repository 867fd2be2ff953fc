"""Quadratic funding (``quadratic-funding``; voting-rules.md §5.1): a matching pool over members'
own contributions.

Ballot: member i's total contribution c_{i,p} (minor units, own money) per proposal; one ballot per
member, so contributions are aggregated before any square root. Contributions below
``min_contribution`` (applied to that aggregate) are not matched. The budget is the matching pool.

Replayable integer square roots at K = ``sqrt_scale``: r_{i,p} = isqrt(c_{i,p}·K²) and
S̃_p = (Σ_i r_{i,p})² − Σ_i r_{i,p}², an integer that is exactly 0 for a single donor (S_p = S̃_p/K²).

* ``linear``: match_p = pool · S̃_p / Σ S̃ (spends the whole pool whenever any S̃ > 0).
* ``clr``: match_p = α · S_p with α = min(1, pool/Σ S) (``saturation=cap_alpha``, the unspent pool
  stays in the pot) or α = pool/Σ S (``spend_pool``).
* ``pairwise``: S̃_p = Σ_{i≠j} k_ij r_{i,p} r_{j,p}, k_ij = M·K²/(M·K² + Σ_q r_{i,q} r_{j,q}) with
  M = ``pairwise_m`` (minor units, required), visiting only pairs that share a proposal; then scaled
  like ``clr``.

Cap (``cap_share`` · pool, floored to minor units, and/or ``cap_amount_minor``): clip every match
above it and spread the excess over the uncapped proposals in proportion to their current match,
until nothing exceeds it; if every matched proposal is capped the rest stays in the pool. The exact
matches are then rounded to minor units: floors, then the leftover cents by largest remainder, then
ascending lottery key.

``Outcome.funded`` holds the **match** (the money the pot pays), in (−match, TIE) order with
"votes" = contributors; the members' own contributions are in ``summary["contributions_minor"]``
and both together in ``summary["total_minor"]``. ``scores`` holds S_p = S̃_p/K² exactly. The
request's cost is not a cap on the match (the reference is silent; Gitcoin does not cap either).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import combinations
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, check_int_mapping, format_fraction, format_money, plural, raise_if_errors, round_shares,
)
from fundcircle.voting.tiebreak import lottery_key, tie_key_function

Contributions = dict[str, dict[str, int]]  # proposal id -> voter id -> amount_minor


def scaled_roots(contributions: Contributions, sqrt_scale: int) -> dict[str, dict[str, int]]:
    """r_{i,p} = isqrt(c_{i,p}·K²): √c to 1/K precision, identical on every machine."""
    return {pid: {voter: math.isqrt(amount * sqrt_scale * sqrt_scale) for voter, amount in by_voter.items()}
            for pid, by_voter in contributions.items()}


def liberal_radical_subsidy(roots: Mapping[str, int]) -> int:
    """S̃ = (Σ r)² − Σ r² = Σ_{i≠j} r_i r_j: never negative, exactly 0 for one donor."""
    return sum(roots.values()) ** 2 - sum(r * r for r in roots.values())


def pairwise_subsidies(roots: Mapping[str, Mapping[str, int]], pairwise_m_minor: int,
                       sqrt_scale: int) -> dict[str, Fraction]:
    """Buterin's pairwise-bounded subsidy, visiting only pairs that co-fund a proposal."""
    by_voter: dict[str, dict[str, int]] = {}
    for pid, by_donor in roots.items():
        for voter, root in by_donor.items():
            by_voter.setdefault(voter, {})[pid] = root
    m_scaled = pairwise_m_minor * sqrt_scale * sqrt_scale
    overlap: dict[tuple[str, str], int] = {}

    def pair_overlap(a: str, b: str) -> int:
        if (a, b) not in overlap:
            shared = by_voter[a].keys() & by_voter[b].keys()
            overlap[(a, b)] = sum(by_voter[a][q] * by_voter[b][q] for q in shared)
        return overlap[(a, b)]

    subsidies: dict[str, Fraction] = {}
    for pid, by_donor in roots.items():
        total = Fraction(0)
        for a, b in combinations(sorted(by_donor), 2):
            k = Fraction(m_scaled, m_scaled + pair_overlap(a, b))
            total += 2 * k * by_donor[a] * by_donor[b]  # both ordered pairs (i, j) and (j, i)
        subsidies[pid] = total
    return subsidies


def apply_cap(matches: dict[str, Fraction], cap_minor: int, budget: Budget) -> tuple[dict[str, Fraction], list[TraceStep]]:
    """Clip and redistribute until no match exceeds the cap (Gitcoin's Python calculator loops)."""
    matches = dict(matches)
    capped: set[str] = set()
    steps: list[TraceStep] = []
    while True:
        over = sorted(pid for pid in matches if pid not in capped and matches[pid] > cap_minor)
        if not over:
            return matches, steps
        excess = sum((matches[pid] - cap_minor for pid in over), Fraction(0))
        for pid in over:
            matches[pid] = Fraction(cap_minor)
            steps.append(TraceStep("cap", f"Its match was capped at {format_money(cap_minor, budget)}.", pid,
                                   {"cap_minor": cap_minor}))
        capped.update(over)
        receivers = [pid for pid in matches if pid not in capped and matches[pid] > 0]
        if not receivers:
            steps.append(TraceStep("info", f"Every matched proposal is capped, so "
                                   f"{format_fraction(excess)} minor units stay in the pool.", None,
                                   {"unspent": excess}))
            return matches, steps
        base = sum((matches[pid] for pid in receivers), Fraction(0))
        for pid in receivers:
            matches[pid] += excess * matches[pid] / base
        steps.append(TraceStep("redistribute", f"The {format_fraction(excess)} minor units above the cap were "
                               f"spread over {plural(len(receivers), 'uncapped proposal')} in proportion to their "
                               f"match.", None, {"excess": excess, "receivers": receivers}))


@register
class QuadraticFundingRule(Rule):
    id = "quadratic-funding"
    name = "Quadratic funding (matching pool)"
    description = (
        "Give some of your own money to the proposals you care about, and the circle's pool adds a match. "
        "The match rewards how many members give, more than how much: ten small gifts attract far more "
        "matching money than one large gift."
    )
    ballot_kind = BallotKind.ALLOCATION
    params = (
        Param("mode", str, "linear", help="how the pool is shared", choices=("linear", "clr", "pairwise")),
        Param("cap_share", Fraction, None, help="most one proposal's match may be, as a share of the pool",
              min_value=Fraction(0), max_value=Fraction(1), optional=True),
        Param("cap_amount_minor", int, None, help="most one proposal's match may be, in minor units",
              min_value=0, optional=True),
        Param("saturation", str, "cap_alpha", help="clr/pairwise: cap_alpha never pays more than the full "
              "subsidy; spend_pool always spends the pool", choices=("cap_alpha", "spend_pool")),
        Param("min_contribution", int, 0, help="a member's total to a proposal below this is not matched "
              "(minor units)", min_value=0),
        Param("pairwise_m", int, None, help="pairwise mode: damping constant M in minor units", min_value=1,
              optional=True),
        Param("sqrt_scale", int, 10**6, help="square roots are taken as isqrt(c·K²) with this K", min_value=1),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["mode"] == "pairwise" and params["pairwise_m"] is None:
            raise ValidationError("mode=pairwise needs pairwise_m (the damping constant, in minor units)",
                                  field_errors={"pairwise_m": ["required with mode=pairwise"]})

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        amounts = check_int_mapping(ballot, proposals, "contribution")
        raise_if_errors({pid: ["a contribution cannot be negative"] for pid, amount in amounts.items() if amount < 0})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        pool_minor = budget.amount_minor
        sqrt_scale = params["sqrt_scale"]
        given: Contributions = {p.id: {} for p in proposals}
        for ballot in ballots:
            for pid, amount_minor in dict(ballot.value).items():
                if amount_minor > 0:
                    given[pid][ballot.voter_id] = amount_minor
        matched = {pid: {v: a for v, a in by_voter.items() if a >= params["min_contribution"]}
                   for pid, by_voter in given.items()}
        trace = [TraceStep("info", f"Matching pool {format_money(pool_minor, budget)}; square roots are taken "
                           f"at scale K = {sqrt_scale}.", None, {"sqrt_scale": sqrt_scale, "pool_minor": pool_minor})]
        trace += self._below_minimum_steps(given, matched, params, budget)
        subsidies = self._subsidies(matched, params)
        total_subsidy = sum(subsidies.values(), Fraction(0))
        ideal = self._ideal_matches(subsidies, total_subsidy, pool_minor, params, trace)
        cap_minor = self._cap_minor(params, pool_minor)
        if cap_minor is not None and ideal:
            ideal, cap_steps = apply_cap(ideal, cap_minor, budget)
            trace += cap_steps
        match_minor = round_shares(ideal, lambda pid: lottery_key(seed, pid))
        scores = {pid: Fraction(s) / (sqrt_scale * sqrt_scale) for pid, s in subsidies.items()}
        funded = self._order_and_explain(proposals, given, match_minor, scores, budget, params, seed, trace)
        spent_minor = sum(funded.values())
        if spent_minor > pool_minor:  # impossible by construction (Σ floors ≤ ⌊Σ exact⌋ ≤ pool)
            raise AssertionError("quadratic-funding would overspend the pool")
        trace.append(TraceStep("done", f"{format_money(spent_minor, budget)} of the pool was matched; "
                               f"{format_money(pool_minor - spent_minor, budget)} stays in the pot.", None,
                               {"left_minor": pool_minor - spent_minor}))
        contributions_minor = {pid: sum(by_voter.values()) for pid, by_voter in given.items()}
        return Outcome(rule_id=self.id, params=dict(params), funded=funded, scores=scores, trace=trace, seed=seed,
                       budget_minor=pool_minor,
                       summary={"ballots": len(ballots), "sqrt_scale": sqrt_scale,
                                "contributions_minor": contributions_minor,
                                "total_minor": {pid: contributions_minor[pid] + funded.get(pid, 0)
                                                for pid in contributions_minor},
                                "exact_match": {pid: value for pid, value in ideal.items()}})

    @staticmethod
    def _below_minimum_steps(given: Contributions, matched: Contributions, params: Mapping[str, Any],
                             budget: Budget) -> list[TraceStep]:
        steps = []
        for pid in given:
            left_out = len(given[pid]) - len(matched[pid])
            if left_out:
                steps.append(TraceStep("info", f"{plural(left_out, 'contribution')} below the minimum of "
                                       f"{format_money(params['min_contribution'], budget)} "
                                       f"{'is' if left_out == 1 else 'are'} not matched.", pid,
                                       {"unmatched_contributions": left_out}))
        return steps

    @staticmethod
    def _subsidies(matched: Contributions, params: Mapping[str, Any]) -> dict[str, Fraction]:
        roots = scaled_roots(matched, params["sqrt_scale"])
        if params["mode"] == "pairwise":
            return pairwise_subsidies(roots, params["pairwise_m"], params["sqrt_scale"])
        return {pid: Fraction(liberal_radical_subsidy(by_voter)) for pid, by_voter in roots.items()}

    @staticmethod
    def _ideal_matches(subsidies: Mapping[str, Fraction], total_subsidy: Fraction, pool_minor: int,
                       params: Mapping[str, Any], trace: list[TraceStep]) -> dict[str, Fraction]:
        """Exact matches before the cap and rounding; empty when there is nothing to match."""
        if total_subsidy == 0:
            trace.append(TraceStep("stop", "No match: no proposal has two or more members giving to it, so the "
                                   "pool is untouched.", None, {"total_subsidy": 0}))
            return {}
        scale_sq = params["sqrt_scale"] ** 2
        if params["mode"] == "linear":
            return {pid: pool_minor * s / total_subsidy for pid, s in subsidies.items() if s > 0}
        alpha = Fraction(pool_minor * scale_sq) / total_subsidy  # pool / Σ S
        if params["saturation"] == "cap_alpha":
            alpha = min(alpha, Fraction(1))
        trace.append(TraceStep("info", f"Each proposal receives α = {format_fraction(alpha, 4)} of its full "
                               f"subsidy.", None, {"alpha": alpha}))
        return {pid: alpha * s / scale_sq for pid, s in subsidies.items() if s > 0}

    @staticmethod
    def _cap_minor(params: Mapping[str, Any], pool_minor: int) -> int | None:
        caps = []
        if params["cap_share"] is not None:
            share = params["cap_share"] * pool_minor
            caps.append(share.numerator // share.denominator)  # floored, so rounding can never pass it
        if params["cap_amount_minor"] is not None:
            caps.append(params["cap_amount_minor"])
        return min(caps) if caps else None

    @staticmethod
    def _order_and_explain(proposals: Sequence[Proposal], given: Contributions, match_minor: Mapping[str, int],
                           scores: Mapping[str, Fraction], budget: Budget, params: Mapping[str, Any], seed: str,
                           trace: list[TraceStep]) -> dict[str, int]:
        contributors = {pid: len(by_voter) for pid, by_voter in given.items()}
        tie_key = tie_key_function(params["tie_order"], seed, contributors)
        funded: dict[str, int] = {}
        for proposal in sorted(proposals, key=lambda p: (-match_minor.get(p.id, 0), tie_key(p))):
            pid = proposal.id
            raised = format_money(sum(given[pid].values()), budget)
            amount_minor = match_minor.get(pid, 0)
            data = {"match_minor": amount_minor, "contributors": contributors[pid], "subsidy": scores[pid]}
            if amount_minor > 0:
                funded[pid] = amount_minor
                trace.append(TraceStep("fund", f"Gets {format_money(amount_minor, budget)} from the matching pool "
                                       f"on top of {raised} given by {plural(contributors[pid], 'member')} "
                                       f"(match score {format_fraction(scores[pid])}).", pid, data))
            elif contributors[pid] == 0:
                trace.append(TraceStep("skip", "No match: nobody gave money to it.", pid, data))
            elif scores[pid] == 0:
                trace.append(TraceStep("skip", f"No match: {raised} came from a single member (or only one "
                                       f"contribution reached the minimum), and matching rewards several givers.",
                                       pid, data))
            else:
                trace.append(TraceStep("skip", "No match: its share of the pool rounded down to nothing.", pid, data))
        return funded
