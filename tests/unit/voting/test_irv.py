"""irv: majority, transfers, exhausted ballots, elimination ties (§2.1 step 4), §2.2 edges."""

from __future__ import annotations

from fundcircle.voting import Ballot, Budget, Proposal, get_rule
from fundcircle.voting.tiebreak import lottery_key

SEED = "fundcircle/v1|round=3|ballots=00"
PROPOSALS = [Proposal("a", 500), Proposal("b", 400), Proposal("c", 300), Proposal("d", 200), Proposal("x", 9000)]


def tally(ballots, proposals=PROPOSALS, seed=SEED, **params):
    rule = get_rule("irv")
    return rule.tally(proposals, [Ballot(f"v{i}", tuple(b)) for i, b in enumerate(ballots)], Budget(1000),
                      rule.resolve_params(params), seed)


def eliminated(outcome):
    return [s.proposal_id for s in outcome.trace if s.action == "eliminate"]


def test_first_round_majority_wins():
    outcome = tally(["ab", "ab", "ba"])
    assert outcome.funded == {"a": 500}
    assert outcome.summary["winner"] == "a"
    assert eliminated(outcome) == []


def test_transfers_decide_the_winner():
    # round 1: a 2, b 2, c 1, d 0 -> d out; round 2 -> c out, its ballot goes to b: b 3 of 5 wins.
    outcome = tally(["ab", "ab", "ba", "ba", "cb"])
    assert outcome.summary["rounds"][-1] == {"a": 2, "b": 3}
    assert outcome.funded == {"b": 400}


def test_only_one_proposal_is_eliminated_per_round():
    # d has no votes, so d goes first (alone), then c.
    outcome = tally(["ab", "ab", "ba", "ba", "cb"])
    assert eliminated(outcome) == ["d", "c"]
    assert [r["d"] for r in outcome.summary["rounds"][:1]] == [0]


def test_tie_for_fewest_in_the_first_round_goes_to_the_highest_lottery_key():
    proposals = [Proposal(i, 100) for i in "abcde"]
    ballots = ["a", "a", "a", "a", "b", "b", "c", "dc", "eb"]
    # round 1: a 4, b 2, c 1, d 1, e 1 -> tie d/c/e for fewest with no earlier round: lottery.
    outcome = tally([b for b in ballots], proposals=proposals)
    first = eliminated(outcome)[0]
    tied = {"c", "d", "e"}
    assert first == max(tied, key=lambda pid: lottery_key(SEED, pid))
    assert outcome.trace[[s.action for s in outcome.trace].index("eliminate")].data["decided_by"] == "lottery"


def test_earlier_round_breaks_a_later_tie():
    # round 1: a 4, b 3, c 2, d 1 -> d out, its ballot goes to c: a 4, b 3, c 3.
    # round 2: b and c tie on 3; in round 1 c had fewer (2 < 3), so c is eliminated, not b.
    proposals = [Proposal(i, 100) for i in "abcd"]
    ballots = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "dc"]
    for seed in ("s1", "s2", "s3", "s4"):  # independent of the lottery
        outcome = tally(ballots, proposals=proposals, seed=seed)
        assert eliminated(outcome)[:2] == ["d", "c"]
        step = [s for s in outcome.trace if s.action == "eliminate"][1]
        assert step.data["decided_by"] == "round 1"


def test_exhausted_ballots_do_not_count_toward_the_majority():
    # round 1: a 2, b 2, c 1 (c's ballot ranks only c). d 0 out, then c out: its ballot exhausts.
    # round 3: a 2, b 2 of 4 counted: no majority; tie for fewest, equal in every earlier round ->
    # the lottery eliminates one and the other wins as the last one standing.
    outcome = tally(["a", "a", "b", "b", "c"])
    third = outcome.summary["rounds"][2]
    assert third == {"a": 2, "b": 2}
    assert [s.data["counted"] for s in outcome.trace if s.action == "round"] == [5, 5, 4, 2]
    loser = max(("a", "b"), key=lambda pid: lottery_key(SEED, pid))
    winner = ({"a", "b"} - {loser}).pop()
    assert list(outcome.funded) == [winner]


def test_unaffordable_is_struck_from_ballots():
    outcome = tally(["xa", "xa", "b"])
    assert outcome.funded == {"a": 500}
    assert any("struck from every ballot" in m for m in outcome.why("x"))
    outcome = tally(["xa", "xa", "b"], exclude_unaffordable=False)
    assert outcome.summary["winner"] == "x" and outcome.funded == {}


def test_single_voter_zero_cost_winner_and_no_ballots():
    assert tally(["cba"]).funded == {"c": 300}
    free = [Proposal("f", 0), Proposal("g", 100)]
    assert tally(["fg", "f"], proposals=free).funded == {"f": 0}
    outcome = tally([])
    assert outcome.funded == {} and outcome.trace[-1].data["reason"] == "no ballots"
