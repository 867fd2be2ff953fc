"""Consent decision-making (``consent``; voting-rules.md §5.3): a pass/fail test per proposal,
not a ranking.

Each eligible member responds to a proposal with ``consent``, ``concern`` or ``objection``
(a ``ConsentResponse``; concerns and objections need a reason when ``require_reason``). A
proposal **passes** when no objection to it is still open (``resolved=False``) and it has at least
⌈quorum · eligible⌉ responses. Concerns never block; they are copied into the trace (and from
there into the award's review criteria). The state machine itself (versions, amendments,
objection resolution with actor and time) lives in the database side; this rule sees the current
version's responses only.

Decisions where the reference is silent:

* **Eligible members** of a proposal = ``Proposal.eligible_voters`` when the caller sets it (members
  minus declared conflicts; the operations layer should always set it). When it is ``None`` the
  rule cannot know the membership, so it falls back to the number of ballots cast in the round,
  empty ballots ("no response") included. More responses than eligible members is an error.
* A positive quorum always needs at least one response, so a proposal with nobody eligible or no
  ballots never passes unless ``quorum = 0`` (§2.2: "nothing passes unless quorum = 0").
* Money: if everything that passed fits the budget it is all funded; otherwise ``overflow=greedy``
  funds by (−consents, TIE) skipping misfits, and ``overflow=none`` funds nothing and reports
  "over budget" to the facilitator. Tie "votes" = consents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from fundcircle.errors import ValidationError
from fundcircle.voting.base import (
    Ballot, BallotKind, Budget, ConsentKind, ConsentResponse, Outcome, Param, Proposal, Rule, TraceStep,
)
from fundcircle.voting.registry import register
from fundcircle.voting.rules._common import (
    check_ballots, format_money, fund_greedily, plural, raise_if_errors, rank_proposals, screen_unaffordable,
)


@dataclass
class ProposalResponses:
    """Everything the members said about one proposal."""

    consents: int = 0
    concern_reasons: list[str] = field(default_factory=list)
    open_objection_reasons: list[str] = field(default_factory=list)
    resolved_objection_reasons: list[str] = field(default_factory=list)

    @property
    def responses(self) -> int:
        return (self.consents + len(self.concern_reasons) + len(self.open_objection_reasons)
                + len(self.resolved_objection_reasons))


def required_responses(quorum: Fraction, eligible: int) -> int:
    """⌈quorum · eligible⌉ in integers; a positive quorum needs at least one response."""
    needed = -((-quorum.numerator * eligible) // quorum.denominator)
    return max(needed, 1) if quorum > 0 else needed


def collect_responses(proposals: Sequence[Proposal], ballots: Sequence[Ballot]) -> dict[str, ProposalResponses]:
    collected = {p.id: ProposalResponses() for p in proposals}
    for ballot in ballots:
        for proposal_id, answer in ballot.value.items():
            entry = collected[proposal_id]
            if answer.response is ConsentKind.CONSENT:
                entry.consents += 1
            elif answer.response is ConsentKind.CONCERN:
                entry.concern_reasons.append(answer.reason.strip())
            elif answer.resolved:
                entry.resolved_objection_reasons.append(answer.reason.strip())
            else:
                entry.open_objection_reasons.append(answer.reason.strip())
    for entry in collected.values():  # sorted: the outcome must not depend on ballot order
        entry.concern_reasons.sort()
        entry.open_objection_reasons.sort()
        entry.resolved_objection_reasons.sort()
    return collected


@register
class ConsentRule(Rule):
    id = "consent"
    name = "Consent"
    description = (
        "For each proposal, say whether you consent (you can live with it), have a concern, or object "
        "because it would harm the circle; concerns and objections need a reason. A proposal passes when "
        "enough members have responded and no objection is left unresolved."
    )
    ballot_kind = BallotKind.CONSENT
    params = (
        Param("quorum", Fraction, Fraction(1, 2), help="share of eligible members who must respond",
              min_value=Fraction(0), max_value=Fraction(1)),
        Param("require_reason", bool, True, help="concerns and objections must give a reason"),
        Param("overflow", str, "greedy", help="when what passed costs more than the budget: fund by consents "
              "(greedy) or fund nothing and ask the facilitator (none)", choices=("greedy", "none")),
    )

    def validate_ballot(self, ballot: Ballot, proposals: Sequence[Proposal], budget: Budget,
                        params: Mapping[str, Any]) -> None:
        params = self.resolve_params(params)
        if not isinstance(ballot.value, Mapping):
            raise ValidationError("A consent ballot gives one response per proposal.",
                                  field_errors={"ballot": ["must map proposal ids to responses"]})
        known = {p.id for p in proposals}
        errors: dict[str, list[str]] = {}
        for proposal_id, answer in ballot.value.items():
            if proposal_id not in known:
                errors.setdefault(str(proposal_id), []).append("there is no such proposal in this round")
            elif not isinstance(answer, ConsentResponse) or not isinstance(answer.response, ConsentKind):
                errors.setdefault(proposal_id, []).append("respond with consent, concern or objection")
            elif (params["require_reason"] and answer.response is not ConsentKind.CONSENT
                  and not answer.reason.strip()):
                errors.setdefault(proposal_id, []).append(f"a {answer.response.value} needs a reason")
        raise_if_errors(errors)

    def tally(self, proposals: Sequence[Proposal], ballots: Sequence[Ballot], budget: Budget,
              params: Mapping[str, Any], seed: str) -> Outcome:
        params = self.resolve_params(params)
        check_ballots(self, ballots, proposals, budget, params)
        screened, trace = screen_unaffordable(proposals, budget)
        collected = collect_responses(proposals, ballots)
        passed: list[Proposal] = []
        for proposal in screened:
            verdict = self._judge(proposal, collected[proposal.id], len(ballots), params["quorum"])
            trace.extend(verdict[1])
            if verdict[0]:
                passed.append(proposal)
        consents = {pid: entry.consents for pid, entry in collected.items()}
        funded, money_trace, over_budget = self._fund(passed, consents, budget, params, seed)
        trace += money_trace
        return Outcome(rule_id=self.id, params=dict(params), funded=funded, scores=dict(consents), trace=trace,
                       seed=seed, budget_minor=budget.amount_minor,
                       summary={"ballots": len(ballots), "passed": [p.id for p in passed],
                                "over_budget": over_budget,
                                "concerns": {pid: e.concern_reasons for pid, e in collected.items()
                                             if e.concern_reasons}})

    @staticmethod
    def _judge(proposal: Proposal, entry: ProposalResponses, ballots_cast: int,
               quorum: Fraction) -> tuple[bool, list[TraceStep]]:
        """Pass or not, with the steps that explain it."""
        eligible = proposal.eligible_voters if proposal.eligible_voters is not None else ballots_cast
        if entry.responses > eligible:  # the caller's data disagree with itself; never guess
            raise ValidationError(f"Proposal {proposal.id!r} has {entry.responses} responses but only {eligible} "
                                  f"eligible members.", field_errors={proposal.id: ["more responses than eligible"]})
        required = required_responses(quorum, eligible)
        data = {"consents": entry.consents, "concerns": len(entry.concern_reasons),
                "open_objections": len(entry.open_objection_reasons),
                "resolved_objections": len(entry.resolved_objection_reasons),
                "responses": entry.responses, "eligible": eligible, "required": required}
        steps = [TraceStep("concern", f"Concern recorded (it does not block): {reason}", proposal.id,
                           {"reason": reason}) for reason in entry.concern_reasons]
        steps += [TraceStep("resolved", f"An objection was resolved and no longer blocks: {reason}", proposal.id,
                            {"reason": reason}) for reason in entry.resolved_objection_reasons]
        open_count = len(entry.open_objection_reasons)
        if open_count:
            resolved_word = "the objection was" if open_count == 1 else "the objections were"
            steps.append(TraceStep("block", f"Not funded: {plural(open_count, 'member')} objected and "
                                   f"{resolved_word} not resolved.", proposal.id,
                                   {**data, "objections": list(entry.open_objection_reasons)}))
            return False, steps
        if entry.responses < required:
            steps.append(TraceStep("no_quorum", f"Not funded: only {entry.responses} of {eligible} eligible "
                                   f"members responded, and the quorum needs {required}.", proposal.id, data))
            return False, steps
        steps.append(TraceStep("pass", f"Passed: {entry.responses} of {eligible} eligible members responded "
                               f"(quorum {required}), {plural(entry.consents, 'consent')}, and no objection is "
                               f"open.", proposal.id, data))
        return True, steps

    @staticmethod
    def _fund(passed: Sequence[Proposal], consents: Mapping[str, int], budget: Budget, params: Mapping[str, Any],
              seed: str) -> tuple[dict[str, int], list[TraceStep], bool]:
        """Fund what passed: all of it if it fits, else by the overflow policy."""
        if not passed:
            return {}, [TraceStep("done", "No proposal passed, so nothing was funded.", None,
                                  {"left_minor": budget.amount_minor})], False
        total_minor = sum(p.cost_minor for p in passed)
        ranked = rank_proposals(passed, consents, consents, params["tie_order"], seed)
        over_budget = total_minor > budget.amount_minor

        def describe(pid: str) -> str:
            return plural(consents[pid], "consent")

        if over_budget and params["overflow"] == "none":
            return {}, [TraceStep("stop", f"Over budget: the proposals that passed cost "
                                  f"{format_money(total_minor, budget)} together but only "
                                  f"{format_money(budget.amount_minor, budget)} is available, so nothing is funded "
                                  f"until the facilitator decides.", None,
                                  {"passed_cost_minor": total_minor, "left_minor": budget.amount_minor})], True
        steps: list[TraceStep] = []
        if over_budget:
            steps.append(TraceStep("info", f"The proposals that passed cost {format_money(total_minor, budget)} "
                                   f"together, more than the {format_money(budget.amount_minor, budget)} available, "
                                   f"so they are funded by number of consents until the money runs out.", None,
                                   {"passed_cost_minor": total_minor}))
        funded, fund_steps = fund_greedily(ranked, consents, consents, budget, params, seed, describe)
        return funded, steps + fund_steps, over_budget
