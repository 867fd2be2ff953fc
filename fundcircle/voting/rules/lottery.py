"""Verifiable sortition (``lottery``; voting-rules.md §5.6).

Eligible = proposals that survive screening (cost ≤ budget) and have at least
``min_approvals_to_enter`` approvals. Ballots are optional approval sets (an empty ballot is
fine); the lottery runs even with no ballots.

* Zero-cost eligible proposals are funded first, in ascending lottery key order.
* ``uniform``: fund in ascending L(p) = SHA-256(seed ‖ 0x00 ‖ UTF-8(id)) order, skipping misfits
  (or stopping at the first one with ``overflow=stop``).
* ``votes``: weights w_p = approvals. Draw k (k = 1, 2, …) takes
  r = SHA-256(seed ‖ 0x01 ‖ UTF-8(decimal k)) mod W_remaining and walks the cumulative weights of
  the remaining proposals in TIE order (``tie_order``, "votes" = approvals); the first proposal whose
  cumulative weight exceeds r is drawn. Proposals with no approvals have weight 0 and are never drawn.

The seed and every key are published in ``summary`` so anyone can re-derive the order.
Grinding risk: the seed includes the ballot digest, so for lottery-only rounds the caller should
append a value fixed after close (commit–reveal secret or public randomness) to the seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence, Set
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, Budget, Outcome, Param, Proposal, Rule, TraceStep
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, format_money, plural, raise_if_errors, screen_unaffordable,
)
from fundcircle.voting.tiebreak import lottery_key, tie_key_function


def draw_number(seed: str, draw: int) -> int:
    """SHA-256(seed ‖ 0x01 ‖ UTF-8(decimal draw)) as a big-endian integer."""
    digest = hashlib.sha256(seed.encode("utf-8") + b"\x01" + str(draw).encode("utf-8")).digest()
    return int.from_bytes(digest, "big")


def weighted_order(candidates: Sequence[Proposal], weights: Mapping[str, int], tie_order: str,
                   seed: str) -> list[tuple[Proposal, int]]:
    """The votes-weighted draw order: (proposal, draw number r) for every positive-weight proposal."""
    tie_key = tie_key_function(tie_order, seed, weights)
    remaining = sorted((p for p in candidates if weights[p.id] > 0), key=tie_key)
    drawn: list[tuple[Proposal, int]] = []
    draw = 1
    while remaining:
        total_weight = sum(weights[p.id] for p in remaining)
        r = draw_number(seed, draw) % total_weight
        cumulative = 0
        for index, proposal in enumerate(remaining):
            cumulative += weights[proposal.id]
            if r < cumulative:
                drawn.append((remaining.pop(index), r))
                break
        draw += 1
    return drawn


@register
class LotteryRule(Rule):
    id = "lottery"
    name = "Lottery (verifiable random draw)"
    description = (
        "Proposals are drawn at random, and funded in the order drawn until the money runs out. "
        "The draw uses a public seed, so anyone can check it was fair. Depending on the settings, "
        "proposals may need some approvals to enter, and more approvals may mean more chances."
    )
    ballot_kind = BallotKind.APPROVAL
    params = (
        Param("min_approvals_to_enter", int, 0, help="approvals a proposal needs to enter the draw", min_value=0),
        Param("weighting", str, "uniform", help="equal chances, or chances in proportion to approvals",
              choices=("uniform", "votes")),
        Param("overflow", str, "skip", help="when a drawn proposal does not fit: skip it or stop the draw",
              choices=("skip", "stop")),
    )

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        self.resolve_params(params)
        if not isinstance(ballot.value, Set):
            raise ValidationError("A ballot for this rule is the set of proposals you approve of.",
                                  field_errors={"ballot": ["must be a set of proposal ids"]})
        known = {p.id for p in proposals}
        raise_if_errors({str(pid): ["there is no such proposal in this round"] for pid in ballot.value
                         if pid not in known})

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        approvals = {p.id: 0 for p in proposals}
        for ballot in ballots:
            for pid in ballot.value:
                approvals[pid] += 1
        screened, trace = screen_unaffordable(proposals, budget)
        threshold = params["min_approvals_to_enter"]
        eligible = [p for p in screened if approvals[p.id] >= threshold]
        for proposal in screened:
            if approvals[proposal.id] < threshold:
                trace.append(TraceStep("skip", f"Not funded: it had {plural(approvals[proposal.id], 'approval')} and "
                                       f"needed {threshold} to enter the draw.", proposal.id,
                                       {"approvals": approvals[proposal.id]}))
        keys = {p.id: lottery_key(seed, p.id) for p in proposals}
        trace.append(TraceStep("info", f"The draw uses the public seed {seed!r}.", None, {"seed": seed}))
        free = sorted((p for p in eligible if p.cost_minor == 0), key=lambda p: keys[p.id])
        paid = [p for p in eligible if p.cost_minor > 0]
        funded: dict[str, int] = {}
        for proposal in free:
            funded[proposal.id] = 0
            trace.append(TraceStep("fund", "Funded at 0: it costs nothing.", proposal.id, {"cost_minor": 0}))
        if params["weighting"] == "uniform":
            order = [(p, keys[p.id]) for p in sorted(paid, key=lambda p: keys[p.id])]
        else:
            order = weighted_order(paid, approvals, params["tie_order"], seed)
            for proposal in paid:
                if approvals[proposal.id] == 0:
                    trace.append(TraceStep("skip", "Not funded: with no approvals it had no chance in the "
                                           "votes-weighted draw.", proposal.id, {"approvals": 0}))
        funded.update(self._fund_in_order(order, budget, params, trace))
        left_minor = budget.amount_minor - sum(funded.values())
        trace.append(TraceStep("done", f"{plural(len(funded), 'proposal')} funded; "
                               f"{format_money(left_minor, budget)} stays in the pot.", None,
                               {"left_minor": left_minor}))
        return Outcome(rule_id=self.id, params=dict(params), funded=funded, scores=dict(approvals), trace=trace,
                       seed=seed, budget_minor=budget.amount_minor,
                       summary={"ballots": len(ballots), "seed": seed,
                                "keys": {pid: f"{key:064x}" for pid, key in keys.items()},
                                "draw_order": [p.id for p, _ in order]})

    @staticmethod
    def _fund_in_order(order: Sequence[tuple[Proposal, int]], budget: Budget, params: Mapping[str, Any],
                       trace: list[TraceStep]) -> dict[str, int]:
        funded: dict[str, int] = {}
        left_minor = budget.amount_minor
        stopped = False
        for position, (proposal, number) in enumerate(order, start=1):
            data = {"draw": position, "number": f"{number:x}", "cost_minor": proposal.cost_minor}
            if stopped:
                trace.append(TraceStep("skip", f"Not funded: drawn #{position}, after the draw had stopped.",
                                       proposal.id, data))
            elif proposal.cost_minor <= left_minor:
                left_minor -= proposal.cost_minor
                funded[proposal.id] = proposal.cost_minor
                trace.append(TraceStep("fund", f"Funded: drawn #{position}; it costs "
                                       f"{format_money(proposal.cost_minor, budget)}, leaving "
                                       f"{format_money(left_minor, budget)}.", proposal.id,
                                       {**data, "left_minor": left_minor}))
            else:
                stopped = params["overflow"] == "stop"
                then = " The draw stops here." if stopped else ""
                trace.append(TraceStep("skip", f"Not funded: drawn #{position}, but it costs "
                                       f"{format_money(proposal.cost_minor, budget)} and only "
                                       f"{format_money(left_minor, budget)} was left.{then}", proposal.id,
                                       {**data, "left_minor": left_minor}))
        return funded
