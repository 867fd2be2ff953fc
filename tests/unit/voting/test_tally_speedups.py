"""What the approval tallies' speed-ups rely on, checked directly: ballots loaded from one pabulib
file share one frozenset per distinct approval set, and the tie keys (with their shortcuts for the
default order and the seed's hashed prefix) are exactly the declared components and lottery, and
the mes trace's one-pass money of unfunded projects is the engine's."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.rules._common import approval_ballots, screen
from fundcircle.voting.rules.mes import MesEngine, MethodOfEqualShares, _supporters_money, complete
from fundcircle.voting.tiebreak import TIE_COMPONENTS, lottery_key, tie_key_function
from tests.support.elections import approval_elections

FILE = '''META
key;value
description;test
country;Nowhere
unit;Town
instance;2024
num_projects;3
num_votes;4
budget;100
vote_type;approval
rule;greedy
date_begin;01.01.2024
date_end;2024
PROJECTS
project_id;cost;votes
a;50;3
b;40;3
c;70;1
VOTES
voter_id;vote
v1;a,b
v2;b,a
v3;a
v4;b,c
'''


def test_identical_approval_sets_share_one_frozenset() -> None:
    ballots = pabulib.load(FILE.encode(), "t.pb").ballots
    assert ballots[0].value == ballots[1].value == frozenset({"a", "b"})
    assert ballots[0].value is ballots[1].value
    assert len({id(b.value) for b in ballots}) == 3


def _expected_key(order: tuple[str, ...], seed: str, votes: dict[str, int], p: Proposal) -> tuple:
    value = {"cost_asc": p.cost_minor, "cost_desc": -p.cost_minor, "votes_desc": -votes.get(p.id, 0),
             "votes_asc": votes.get(p.id, 0), "id": p.id, "lottery": lottery_key(seed, p.id)}
    return tuple(value[c] for c in order)


def test_tie_keys_are_the_declared_components() -> None:
    proposals = [Proposal(f"p{i}ł", cost) for i, cost in enumerate((5, 3, 5, 0, 3))]
    votes = {"p0ł": 2, "p1ł": 7, "p3ł": 1}
    seed = "fundcircle/v1|round=ż|ballots=00"
    for size in (1, 2, 3):
        for components in itertools.permutations([c for c in TIE_COMPONENTS if c != "lottery"], size):
            order = (*components, "lottery")
            key = tie_key_function(",".join(order), seed, votes)
            assert [key(p) for p in proposals] == [_expected_key(order, seed, votes, p) for p in proposals]
    default = tie_key_function("cost_asc,votes_desc,lottery", seed, votes)
    assert [default(p) for p in proposals] == [
        _expected_key(("cost_asc", "votes_desc", "lottery"), seed, votes, p) for p in proposals]


@settings(max_examples=60, deadline=None)
@given(approval_elections(max_projects=7, max_cost_minor=40, max_voters=12),
       st.sampled_from(["none", "add1"]))
def test_trace_money_of_unfunded_projects_is_each_ones_supporters_money(election, completion) -> None:
    """The mes trace sums every unfunded project's supporters' money in one pass; each sum must be
    the engine's own, exactly (ballots repeat, so groups of one ballot and heavier groups both occur)."""
    proposals, ballots, budget_minor = election
    ballots = ballots + ballots[: len(ballots) // 2]
    ballots = [Ballot(str(v), b.value) for v, b in enumerate(ballots)]
    budget = Budget(budget_minor, "EUR", 1)
    rule = MethodOfEqualShares()
    params = rule.resolve_params({"completion": completion})
    _, groups = approval_ballots(rule, ballots, proposals, budget, params)
    screening = screen(proposals, ballots, budget, "seed", params["tie_order"], groups)
    n = screening.n
    engine = MesEngine(screening.candidates, screening.groups, "cost",
                       tie_key_function(params["tie_order"], "seed", screening.votes), n)
    done = complete(engine, budget_minor, budget_minor, n, completion)
    unfunded = [p for p in range(len(engine.candidates)) if p not in done.result.bought]
    assert _supporters_money(engine, done.result, unfunded) == [
        engine.supporters_money(p, done.result) for p in unfunded]


def test_ballots_are_slotted_and_a_tally_reads_the_callers_list_without_copying_it() -> None:
    """A tally reads every ballot's value once: a slotted ballot is one small block, and the list of
    thousands of ballots is not copied when nothing is left out (abstentions are)."""
    ballot = Ballot("v1", frozenset({"a"}))
    assert not hasattr(ballot, "__dict__")
    proposals = [Proposal("a", 10), Proposal("b", 20)]
    ballots = [ballot, Ballot("v2", frozenset({"a", "b"}))]
    rule = MethodOfEqualShares()
    params = rule.resolve_params({})
    valid, _ = approval_ballots(rule, ballots, proposals, Budget(30, "EUR", 1), params)
    assert valid is ballots
    assert screen(proposals, valid, Budget(30, "EUR", 1), "seed", params["tie_order"]).ballots is ballots
    with_empty = [*ballots, Ballot("v3", frozenset())]
    valid, _ = approval_ballots(rule, with_empty, proposals, Budget(30, "EUR", 1), {**params, "min_approvals": 0})
    assert valid == ballots and valid is not with_empty
