"""explain(): the results page's "why" per proposal, from real tallies of several rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from fundcircle.voting.base import Ballot, Budget, ConsentKind, ConsentResponse, Outcome, Proposal, TraceStep
from fundcircle.voting.explain import explain
from fundcircle.voting.registry import all_rules, get_rule

PROPOSALS = [Proposal("1", 50_000, "Garden"), Proposal("2", 80_000, "Fridge"), Proposal("3", 120_000, "Bikes"),
             Proposal("4", 300_000, "Hall")]
TITLES = {p.id: p.title for p in PROPOSALS}
IDS = [p.id for p in PROPOSALS]
BUDGET = Budget(200_000, "EUR", 100)


def tally(rule_id: str, values: Sequence[Any], params: dict[str, Any] | None = None) -> Outcome:
    rule = get_rule(rule_id)
    ballots = [Ballot(f"v{n}", v) for n, v in enumerate(values, start=1)]
    return rule.tally(PROPOSALS, ballots, BUDGET, rule.resolve_params(params or {}), "round-1:seed")


def explained(outcome: Outcome) -> dict:
    # the stored form (JSON) is what the results page reads
    return explain(IDS, outcome.funded, outcome.to_json()["trace"], TITLES)


def assert_consistent(outcome: Outcome) -> dict:
    ex = explained(outcome)
    assert list(ex) == IDS
    trace_sentences = {s.message for s in outcome.trace}
    for pid, e in ex.items():
        assert e.is_funded == (pid in outcome.funded)
        assert e.amount_minor == outcome.funded.get(pid, 0)
        assert e.summary.startswith("Funded") == e.is_funded, e.summary
        assert e.summary in e.details
        # every detail sentence comes from the trace (titles put in for ids where a step names another)
        for sentence in e.details:
            assert sentence in trace_sentences or "“" in sentence, sentence
    return ex


def test_approval_greedy_funds_by_votes_and_explains_the_misfit() -> None:
    outcome = tally("approval-greedy", [frozenset({"1", "2"}), frozenset({"2", "3"}), frozenset({"3"}),
                                        frozenset({"1", "3"})])
    ex = assert_consistent(outcome)
    assert outcome.funded == {"3": 120_000, "1": 50_000}
    assert ex["3"].selection_position == 1 and ex["1"].selection_position == 2
    assert ex["3"].summary == "Funded: 3 voters approved it; it costs 1,200.00, leaving 800.00."
    assert ex["2"].summary == "Not funded: 2 voters approved it, but it needed 800.00 and only 300.00 was left."
    assert ex["2"].selection_position is None and ex["2"].amount_minor == 0
    assert "more than the whole budget" in ex["4"].summary


def test_mes_explains_supporters_running_out_of_money() -> None:
    outcome = tally("mes", [frozenset({"1", "2"}), frozenset({"2", "3"}), frozenset({"3"}), frozenset({"1", "3"})])
    ex = assert_consistent(outcome)
    assert ex["1"].is_funded and "each paid at most" in ex["1"].summary
    assert not ex["2"].is_funded and "supporters had only" in ex["2"].summary


def test_quadratic_ranks_by_votes() -> None:
    outcome = tally("quadratic", [{"1": 3, "2": 4}, {"3": 9}, {"2": 1}])
    ex = assert_consistent(outcome)
    assert ex["3"].summary.startswith("Funded: ranked #1 with 9 votes")
    assert ex["1"].summary.startswith("Not funded: ranked #3 with 3 votes")


def test_score_tie_names_the_other_proposal_by_title() -> None:
    outcome = tally("score", [{"1": 5, "2": 3, "3": 1, "4": 0}, {"1": 2, "2": 3, "3": 5, "4": 1}])
    ex = assert_consistent(outcome)
    tie = [d for d in ex["3"].details if d.startswith("Tied with")]
    assert tie == ["Tied with “Fridge” (both have 6); “Fridge” goes first because it costs less."]
    # the decisive step comes after the tie note
    assert ex["3"].summary.startswith("Not funded: ranked #3") and ex["3"].details[-1] == ex["3"].summary


def test_irv_gives_votes_per_round_and_explains_the_runner_up() -> None:
    outcome = tally("irv", [("1", "2"), ("2", "1"), ("3", "2"), ("2",), ("3",)])
    ex = assert_consistent(outcome)
    assert outcome.funded == {"2": 80_000}
    assert ex["2"].votes_by_round == (2, 3)
    assert ex["1"].votes_by_round == (1,)
    assert ex["1"].summary == "Not funded: eliminated in round 1 with the fewest votes (1)."
    # no step names the runner-up: the explanation says who won and where it stood
    assert ex["3"].summary == "Not funded: “Fridge” won the count; this proposal had 2 votes in the last round."
    assert any(d.startswith("Wins in round 2") for d in ex["2"].details)


def test_consent_objection_concern_and_pass() -> None:
    c = ConsentKind
    outcome = tally("consent", [
        {"1": ConsentResponse(c.CONSENT), "2": ConsentResponse(c.OBJECTION, "too costly"),
         "3": ConsentResponse(c.CONCERN, "timing")},
        {"1": ConsentResponse(c.CONSENT), "3": ConsentResponse(c.CONSENT)},
    ])
    ex = assert_consistent(outcome)
    assert ex["2"].summary == "Not funded: 1 member objected and the objection was not resolved."
    assert ex["3"].is_funded
    assert ex["3"].details[0] == "Concern recorded (it does not block): timing"
    assert any(d.startswith("Passed:") for d in ex["3"].details)


def test_no_ballots_uses_the_round_level_reason() -> None:
    outcome = tally("approval-greedy", [])
    ex = assert_consistent(outcome)
    assert {e.summary for e in ex.values()} == {"Nothing was funded: no ballots were cast."}


@pytest.mark.parametrize("rule_id", ["approval-greedy", "mes", "phragmen", "borda", "cumulative"])
def test_every_rule_with_simple_ballots_is_explained_consistently(rule_id: str) -> None:
    rule = get_rule(rule_id)
    kind = rule.ballot_kind.value
    if kind == "approval":
        values: list[Any] = [frozenset({"1", "2"}), frozenset({"2"}), frozenset({"3", "1"})]
    elif kind == "ranking":
        values = [("1", "2", "3"), ("2", "1", "3"), ("3", "2", "1")]
    else:
        credits = rule.resolve_params({}).get("points", 10) or 10
        values = [{"1": credits}, {"2": credits}, {"2": credits}]
    assert_consistent(tally(rule_id, values))


def test_a_step_overridden_at_round_level_is_not_shown_as_the_reason() -> None:
    # e.g. Equal Shares funds "1", then a comparison keeps the most-votes-first outcome instead
    trace = [TraceStep("fund", "Funded: 2 voters approved it; each paid at most 250.00.", "1"),
             TraceStep("info", "Comparison: 3 voters prefer the most-votes-first outcome and 1 prefer Equal "
                               "Shares, so the most-votes-first outcome is used.")]
    ex = explain(["1", "2"], {"2": 80_000}, trace, TITLES)
    assert ex["1"].summary.startswith("Not funded in the end: Comparison: 3 voters prefer")
    assert ex["2"].summary == "Funded: the rule selected it."


def test_unknown_proposal_ids_in_the_trace_are_ignored_and_object_steps_work() -> None:
    trace = [TraceStep("skip", "Not funded: nobody approved it.", "1"), TraceStep("fund", "Funded.", "99")]
    ex = explain(["1"], {}, trace)
    assert ex["1"].summary == "Not funded: nobody approved it." and ex["1"].details == (ex["1"].summary,)


def test_all_installed_rules_are_known() -> None:
    # guards the parametrised list above against a renamed rule id
    ids = {r.id for r in all_rules()}
    assert {"approval-greedy", "mes", "quadratic", "consent", "irv", "score"} <= ids
