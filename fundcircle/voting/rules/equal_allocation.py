"""Equal personal shares (``equal-allocation``, Cobudget-style; voting-rules.md §5.5).

Each eligible member gets the same share s and allocates amounts ≥ 0 to proposals with Σ ≤ s
(each within ``max_per_member_per_proposal``). The tally does not depend on ballot order:

* T_p = Σ_i a_{i,p}. If T_p > max_goal, every contribution is scaled by max_goal/T_p (floored;
  leftover cents by largest remainder, then the voter's lottery key) and the excess refunded.
* p is funded iff T_p > 0 and min(T_p, max_goal) ≥ min_goal. With ``stretch`` it gets
  min(T_p, max_goal); without, exactly min_goal (contributions scaled down the same way).
* Unfunded proposals refund everything; unspent shares and the division remainder stay in the pot.

Goals come from ``Proposal.min_goal_minor`` / ``max_goal_minor`` (None = the cost). Screening:
max_goal 0 and min_goal > budget are screened out (money given to them is refunded).

The share: ``share`` when set, else ⌊B/members⌋ with ``members`` (the number of eligible members;
the operations layer should pass it), else ⌊B/ballots cast⌋ (empty ballots count: those members
abstained and their share stays in the pot). In that last case ``validate_ballot`` can only check
Σ ≤ B and the tally re-checks every ballot against the share. Either way Σ shares ≤ B, so the
outcome can never exceed the budget. ``funded`` is ordered by (−T_p, TIE) with "votes" = the
number of contributors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, check_int_mapping, format_money, no_ballots_outcome, plural, raise_if_errors, round_shares,
)
from fundcircle.voting.tiebreak import lottery_key, tie_key_function


def goals_minor(proposal: Proposal) -> tuple[int, int]:
    """(min goal, max goal) in minor units; a missing goal means the cost."""
    min_goal = proposal.cost_minor if proposal.min_goal_minor is None else proposal.min_goal_minor
    max_goal = proposal.cost_minor if proposal.max_goal_minor is None else proposal.max_goal_minor
    if min_goal < 0 or max_goal < min_goal:
        raise ValidationError(f"Proposal {proposal.id!r} has goals {min_goal}..{max_goal}: the minimum goal must "
                              f"be at least 0 and at most the maximum goal.",
                              field_errors={proposal.id: ["min goal above max goal"]})
    return min_goal, max_goal


def declared_share_minor(params: Mapping[str, Any], budget: Budget) -> int | None:
    """The share known before anyone votes: ``share``, or ⌊B/members⌋; None if neither is set."""
    if params["share"] is not None:
        return params["share"]
    if params["members"] is not None:
        return budget.amount_minor // params["members"]
    return None


def scale_contributions(contributions: Mapping[str, int], target_minor: int, seed: str) -> dict[str, int]:
    """Contributions scaled so they sum to ``target_minor`` (≤ their sum), each floored, leftover
    cents by largest remainder then the voter's lottery key."""
    total_minor = sum(contributions.values())
    ideal = {voter: Fraction(amount * target_minor, total_minor) for voter, amount in contributions.items()}
    return round_shares(ideal, lambda voter: lottery_key(seed, voter))


@register
class EqualAllocationRule(Rule):
    id = "equal-allocation"
    name = "Equal shares to spend (Cobudget style)"
    description = (
        "Every member gets the same share of the pot to spend. Give parts of your share to the proposals "
        "you want. A proposal is funded if members together reach its minimum goal; money above its "
        "maximum goal, and money given to proposals that miss their goal, goes back to the pot."
    )
    ballot_kind = BallotKind.ALLOCATION
    params = (
        Param("share", int, None, help="each member's share in minor units (default: budget ÷ members)",
              min_value=0, optional=True),
        Param("members", int, None, help="eligible members, for the default share (default: ballots cast)",
              min_value=1, optional=True),
        Param("max_per_member_per_proposal", int, None, help="most one member may give one proposal (minor units)",
              min_value=1, optional=True),
        Param("stretch", bool, True, help="pay up to the maximum goal (false: pay exactly the minimum goal)"),
    )

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        amounts = check_int_mapping(ballot, proposals, "amount")
        cap = params["max_per_member_per_proposal"]
        errors: dict[str, list[str]] = {}
        for proposal_id, amount_minor in amounts.items():
            if amount_minor < 0:
                errors.setdefault(proposal_id, []).append("an amount cannot be negative")
            elif cap is not None and amount_minor > cap:
                errors.setdefault(proposal_id, []).append(f"at most {format_money(cap, budget)} per proposal")
        raise_if_errors(errors)
        share_minor = declared_share_minor(params, budget)
        limit_minor = budget.amount_minor if share_minor is None else share_minor
        spent_minor = sum(amounts.values())
        if spent_minor > limit_minor:
            raise ValidationError(f"You gave {format_money(spent_minor, budget)} but your share is "
                                  f"{format_money(limit_minor, budget)}.",
                                  field_errors={"ballot": ["more than your share"]})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        share_minor = self._share_for_tally(params, budget, len(ballots))
        check_ballots(self, ballots, proposals, budget, {**params, "share": share_minor})
        if not any(any(dict(b.value).values()) for b in ballots):
            return no_ballots_outcome(self, params, budget, seed)
        trace = [TraceStep("info", f"Each member's share was {format_money(share_minor, budget)}.", None,
                           {"share_minor": share_minor, "ballots": len(ballots)})]
        given = self._contributions(proposals, ballots)
        totals = {p.id: sum(given[p.id].values()) for p in proposals}
        supporters = {pid: len(by_voter) for pid, by_voter in given.items()}
        tie_key = tie_key_function(params["tie_order"], seed, supporters)
        funded: dict[str, int] = {}
        kept: dict[str, dict[str, int]] = {}
        for proposal in sorted(proposals, key=lambda p: (-totals[p.id], tie_key(p))):
            amount_minor, steps, kept_by_voter = self._decide(proposal, given[proposal.id], budget, params, seed)
            trace += steps
            if amount_minor is not None:
                funded[proposal.id] = amount_minor
                kept[proposal.id] = kept_by_voter
        spent_minor = sum(funded.values())
        if spent_minor > budget.amount_minor:  # impossible while Σ shares ≤ B; never publish it
            raise AssertionError("equal-allocation would overspend")
        trace.append(TraceStep("done", f"{plural(len(funded), 'proposal')} funded for "
                               f"{format_money(spent_minor, budget)}; "
                               f"{format_money(budget.amount_minor - spent_minor, budget)} stays in the pot.", None,
                               {"left_minor": budget.amount_minor - spent_minor}))
        return Outcome(rule_id=self.id, params=dict(params), funded=funded, scores=dict(totals), trace=trace,
                       seed=seed, budget_minor=budget.amount_minor,
                       summary={"ballots": len(ballots), "share_minor": share_minor, "kept_minor": kept,
                                "refund_minor": self._refunds(given, kept)})

    @staticmethod
    def _share_for_tally(params: Mapping[str, Any], budget: Budget, ballots_cast: int) -> int:
        """The share, checked so that every member's share together fits the pot."""
        if params["members"] is not None and ballots_cast > params["members"]:
            raise ValidationError(f"{ballots_cast} ballots but only {params['members']} members.",
                                  field_errors={"members": ["fewer than the ballots cast"]})
        share_minor = declared_share_minor(params, budget)
        if share_minor is None:
            share_minor = budget.amount_minor // max(ballots_cast, 1)
        members = max(ballots_cast, params["members"] or 0)
        if share_minor * members > budget.amount_minor:
            raise ValidationError(f"{members} shares of {format_money(share_minor, budget)} are more than the pot "
                                  f"of {format_money(budget.amount_minor, budget)}.",
                                  field_errors={"share": ["shares exceed the pot"]})
        return share_minor

    @staticmethod
    def _contributions(proposals: Sequence[Proposal], ballots: Sequence[Ballot]) -> dict[str, dict[str, int]]:
        given: dict[str, dict[str, int]] = {p.id: {} for p in proposals}
        for ballot in ballots:
            for proposal_id, amount_minor in dict(ballot.value).items():
                if amount_minor > 0:
                    given[proposal_id][ballot.voter_id] = amount_minor
        return given

    @staticmethod
    def _refunds(given: Mapping[str, Mapping[str, int]], kept: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
        """Per voter: everything given minus everything kept by funded proposals."""
        refunds: dict[str, int] = {}
        for proposal_id, by_voter in given.items():
            for voter, amount_minor in by_voter.items():
                back = amount_minor - kept.get(proposal_id, {}).get(voter, 0)
                if back:
                    refunds[voter] = refunds.get(voter, 0) + back
        return dict(sorted(refunds.items()))

    @staticmethod
    def _decide(proposal: Proposal, contributions: Mapping[str, int], budget: Budget, params: Mapping[str, Any],
                seed: str) -> tuple[int | None, list[TraceStep], dict[str, int]]:
        """(amount paid or None, steps, contribution kept per voter) for one proposal."""
        min_goal, max_goal = goals_minor(proposal)
        raised_minor = sum(contributions.values())
        money = lambda amount: format_money(amount, budget)  # noqa: E731
        data = {"raised_minor": raised_minor, "min_goal_minor": min_goal, "max_goal_minor": max_goal,
                "contributors": len(contributions)}
        refund_note = f" {money(raised_minor)} is refunded." if raised_minor else ""
        if max_goal == 0:
            return None, [TraceStep("screen", f"Not funded: it asks for nothing (maximum goal 0).{refund_note}",
                                    proposal.id, data)], {}
        if min_goal > budget.amount_minor:
            return None, [TraceStep("screen", f"Not funded: its minimum goal of {money(min_goal)} is more than the "
                                    f"whole pot of {money(budget.amount_minor)}.{refund_note}", proposal.id, data)], {}
        if raised_minor == 0:
            return None, [TraceStep("skip", "Not funded: nobody gave money to it.", proposal.id, data)], {}
        reachable_minor = min(raised_minor, max_goal)
        if reachable_minor < min_goal:
            return None, [TraceStep("skip", f"Not funded: {plural(len(contributions), 'member')} gave "
                                    f"{money(raised_minor)}, short of its minimum goal of {money(min_goal)}; "
                                    f"everything is refunded.", proposal.id, data)], {}
        paid_minor = reachable_minor if params["stretch"] else min_goal
        steps: list[TraceStep] = []
        kept_by_voter = dict(contributions)
        if paid_minor < raised_minor:
            kept_by_voter = scale_contributions(contributions, paid_minor, seed)
            goal_word = "maximum" if params["stretch"] else "minimum"
            steps.append(TraceStep("scale", f"It raised {money(raised_minor)}, more than its {goal_word} goal of "
                                   f"{money(paid_minor)}: every contribution is scaled by "
                                   f"{paid_minor}/{raised_minor} and {money(raised_minor - paid_minor)} is refunded.",
                                   proposal.id, {**data, "paid_minor": paid_minor}))
        steps.append(TraceStep("fund", f"Funded with {money(paid_minor)} from {plural(len(contributions), 'member')} "
                               f"(minimum goal {money(min_goal)}, maximum goal {money(max_goal)}).", proposal.id,
                               {**data, "paid_minor": paid_minor}))
        return paid_minor, steps, kept_by_voter
