"""Instant-runoff voting (``irv``; voting-rules.md §2.1): one winner, funded at its cost.

(1) With ``exclude_unaffordable``, proposals costing more than the budget are struck from every
ballot. (2) Each non-exhausted ballot counts for its highest continuing proposal. (3) A proposal
wins with more than half of that round's counted ballots, or as the last one standing. (4)
Otherwise exactly one proposal with the fewest votes is eliminated; a tie for fewest goes to the
fewest votes in the latest earlier round where the tied proposals differ (repeating further back
while some stay tied), then the *highest* lottery key is eliminated. (5) No ballot left: no
winner.

IRV's elimination tie rule is fixed by the reference, so ``tie_order`` is accepted (every rule
takes it) but only its final lottery is used. With ``exclude_unaffordable=false`` an unaffordable
proposal stays in the count; if it wins, nothing is funded (never over budget).
``scores`` holds each proposal's votes in the last round it took part in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules.borda import check_ranked_bounds, check_ranking
from fundcircle.voting.rules._common import check_ballots, format_money, no_ballots_outcome, plural
from fundcircle.voting.tiebreak import lottery_key


def count_round(rankings: Sequence[tuple[str, ...]], continuing: set[str]) -> tuple[dict[str, int], int]:
    """Votes of each continuing proposal this round, and the number of non-exhausted ballots."""
    votes = {pid: 0 for pid in continuing}
    counted = 0
    for ranking in rankings:
        top = next((pid for pid in ranking if pid in continuing), None)
        if top is not None:
            votes[top] += 1
            counted += 1
    return votes, counted


def choose_elimination(votes: Mapping[str, int], history: Sequence[Mapping[str, int]], seed: str) -> tuple[str, str]:
    """The one proposal to eliminate, and what decided it ("fewest", "earlier round k", "lottery")."""
    fewest = min(votes.values())
    tied = sorted(pid for pid, count in votes.items() if count == fewest)
    if len(tied) == 1:
        return tied[0], "fewest"
    reason = "lottery"
    for round_index in range(len(history) - 1, -1, -1):
        earlier = history[round_index]
        earlier_counts = {pid: earlier.get(pid, 0) for pid in tied}
        if len(set(earlier_counts.values())) > 1:
            least = min(earlier_counts.values())
            tied = [pid for pid in tied if earlier_counts[pid] == least]
            reason = f"round {round_index + 1}"
            if len(tied) == 1:
                return tied[0], reason
    # highest lottery key loses: the lottery order is ascending, so the last one is eliminated
    return max(tied, key=lambda pid: lottery_key(seed, pid)), "lottery"


@register
class IrvRule(Rule):
    id = "irv"
    name = "Ranked choice (instant runoff, one winner)"
    description = (
        "Rank the proposals in order of preference. If no proposal is the first choice of more than half "
        "of the voters, the one with fewest first choices is dropped and its voters' next choices count "
        "instead, until one proposal has a majority. Only that one proposal is funded."
    )
    ballot_kind = BallotKind.RANKING
    params = (
        Param("min_ranked", int, 1, help="fewest proposals a ballot ranks", min_value=1),
        Param("max_ranked", int, None, help="most proposals a ballot ranks", min_value=1, optional=True),
        Param("exclude_unaffordable", bool, True, help="strike proposals costing more than the budget first"),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_ranked_bounds(params)

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        check_ranking(ballot, proposals, params["min_ranked"], params["max_ranked"])

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        if not ballots:
            return no_ballots_outcome(self, params, budget, seed)
        trace: list[TraceStep] = []
        continuing = {p.id for p in proposals}
        by_id = {p.id: p for p in proposals}
        if params["exclude_unaffordable"]:
            for proposal in proposals:
                if proposal.cost_minor > budget.amount_minor:
                    continuing.discard(proposal.id)
                    trace.append(TraceStep(
                        "screen", f"Not funded: it costs {format_money(proposal.cost_minor, budget)}, more than the "
                        f"budget of {format_money(budget.amount_minor, budget)}, so it was struck from every ballot.",
                        proposal.id, {"cost_minor": proposal.cost_minor}))
        rankings = [tuple(b.value) for b in ballots]
        history: list[dict[str, int]] = []  # counts of the rounds before the current one
        rounds: list[dict[str, int]] = []
        scores: dict[str, int] = {p.id: 0 for p in proposals}
        winner: str | None = None
        while continuing:
            votes, counted = count_round(rankings, continuing)
            round_number = len(history) + 1
            scores.update(votes)
            rounds.append(votes)
            trace.append(TraceStep("round", f"Round {round_number}: {plural(counted, 'ballot')} counted; "
                                   + ", ".join(f"{pid} {votes[pid]}" for pid in sorted(votes, key=lambda k: (-votes[k], k)))
                                   + ".", None, {"round": round_number, "votes": votes, "counted": counted}))
            if counted == 0:
                trace.append(TraceStep("stop", "No winner: every ballot is exhausted.", None, {"round": round_number}))
                break
            leader = max(sorted(votes), key=lambda pid: votes[pid])
            if 2 * votes[leader] > counted or len(continuing) == 1:
                winner = leader
                how = ("more than half of the counted ballots" if 2 * votes[leader] > counted
                       else "it is the last proposal standing")
                trace.append(TraceStep("win", f"Wins in round {round_number} with {votes[leader]} of {counted} "
                                       f"ballots: {how}.", leader, {"round": round_number, "votes": votes[leader]}))
                break
            eliminated, decided_by = choose_elimination(votes, history, seed)
            tie_note = "" if decided_by == "fewest" else (
                " (tied for fewest; eliminated by the lottery)" if decided_by == "lottery"
                else f" (tied for fewest; it had fewer votes in {decided_by})")
            trace.append(TraceStep("eliminate", f"Not funded: eliminated in round {round_number} with the fewest "
                                   f"votes ({votes[eliminated]}){tie_note}.", eliminated,
                                   {"round": round_number, "votes": votes[eliminated], "decided_by": decided_by}))
            history.append(votes)
            continuing.discard(eliminated)
        funded: dict[str, int] = {}
        if winner is not None:
            cost_minor = by_id[winner].cost_minor
            if cost_minor <= budget.amount_minor:
                funded[winner] = cost_minor
                trace.append(TraceStep("fund", f"Funded: the winner gets {format_money(cost_minor, budget)}.", winner,
                                       {"cost_minor": cost_minor,
                                        "left_minor": budget.amount_minor - cost_minor}))
            else:
                trace.append(TraceStep("skip", f"Not funded: it won, but it costs "
                                       f"{format_money(cost_minor, budget)}, more than the budget.", winner,
                                       {"cost_minor": cost_minor}))
        return Outcome(rule_id=self.id, params=dict(params), funded=funded, scores=scores, trace=trace, seed=seed,
                       budget_minor=budget.amount_minor,
                       summary={"ballots": len(ballots), "winner": winner, "rounds": rounds})
