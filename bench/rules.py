"""Benchmark: our exact ``mes`` against pabutools 1.2.3 (GPL, test-only) in one process.

Same semantics on both sides: pabutools' ``voter_budget_increment=1`` is our
``completion=add1-exhaustive``; pabutools' plain ``method_of_equal_shares`` is our
``completion=none``. Also times our official ``completion=add1`` (no pabutools equivalent in one
call) and measures our peak memory with tracemalloc (in a separate, untimed run).

Instances: Wieliczka 2023 (shared/data/pabulib) and a seeded synthetic 300 projects × 20,000 voters,
about 5 approvals each, budget ⅓ of the total cost (voting-rules.md §4.2).

pabutools' Add1 on the synthetic instance takes ~10 min and ~12 GB, so by default it runs plain MES
there only; ``--pabutools-synthetic-add1`` runs the long one, ``--skip-pabutools-synthetic`` skips
pabutools on it, ``--skip-pabutools`` skips pabutools everywhere, ``--quick`` shrinks the synthetic
instance to 100 × 5,000.

    /work/venv/bin/python bench/rules.py [--quick] [--skip-pabutools-synthetic] [--pabutools-synthetic-add1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fundcircle.voting import pabulib
from fundcircle.voting.base import Ballot, Budget, Proposal
from fundcircle.voting.registry import get_rule
from fundcircle.voting.rules.mes import number_type
from fundcircle.voting.tiebreak import ballot_digest, make_seed, tie_key_function

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FUNDCIRCLE_PABULIB_DIR") or REPO_ROOT / ".." / "shared" / "data" / "pabulib")
WIELICZKA = "Poland_Wieliczka_2023_Green_Budget.pb"
TARGET_RATIO = 100
TARGET_WIELICZKA_ADD1_S = 0.5
TARGET_PEAK_MB = 200


def synthetic(projects: int, voters: int, seed: int = 2024) -> tuple[list[Proposal], list[Ballot], Budget]:
    """Seeded: costs 5,000..200,000; popularity skewed (weights 1/rank^0.7); 3..7 approvals per voter."""
    rng = random.Random(seed)
    proposals = [Proposal(f"p{i}", rng.randrange(5_000, 200_001, 100)) for i in range(projects)]
    weights = [1 / (rank + 1) ** 0.7 for rank in range(projects)]
    ballots = []
    for v in range(voters):
        k = rng.randint(3, 7)
        chosen: set[str] = set()
        while len(chosen) < k:
            chosen.add(proposals[rng.choices(range(projects), weights)[0]].id)
        ballots.append(Ballot(str(v), frozenset(chosen)))
    total = sum(p.cost_minor for p in proposals)
    return proposals, ballots, Budget(total // 3, "PLN", 1)


def ours(proposals: list[Proposal], ballots: list[Ballot], budget: Budget, seed: str, **params: Any):
    rule = get_rule("mes")
    return rule.tally(proposals, ballots, budget, rule.resolve_params(params), seed)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def peak_mb(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def pabutools_mes(proposals: list[Proposal], ballots: list[Ballot], budget: Budget, seed: str,
                  increment: int | None) -> tuple[set[str], float]:
    """pabutools on the same election (screened as ours: cost <= B, supported), same tie order."""
    from pabutools.election import ApprovalBallot, ApprovalProfile, Cost_Sat, Instance, Project
    from pabutools.rules import method_of_equal_shares
    from pabutools.tiebreaking import TieBreakingRule

    start = time.perf_counter()
    votes: dict[str, int] = {p.id: 0 for p in proposals}
    for b in ballots:
        for pid in b.value:
            votes[pid] += 1
    kept = [p for p in proposals if p.cost_minor <= budget.amount_minor and votes[p.id] > 0]
    projects = {p.id: Project(p.id, p.cost_minor) for p in kept}
    instance = Instance(projects.values(), budget_limit=budget.amount_minor)
    profile = ApprovalProfile([ApprovalBallot([projects[pid] for pid in b.value if pid in projects])
                               for b in ballots], instance=instance)
    key = tie_key_function("cost_asc,votes_desc,lottery", seed, votes)
    by_name = {p.id: p for p in kept}
    tie = TieBreakingRule(lambda _i, _p, project: key(by_name[project.name]))
    result = method_of_equal_shares(instance, profile, sat_class=Cost_Sat, tie_breaking=tie,
                                    voter_budget_increment=increment)
    return {p.name for p in result}, time.perf_counter() - start


def report(label: str, seconds: float, extra: str = "") -> None:
    print(f"  {label:<46} {seconds:9.3f} s {extra}")


def bench_instance(title: str, proposals: list[Proposal], ballots: list[Ballot], budget: Budget,
                   pabutools_modes: list[str], targets: bool) -> list[str]:
    """Runs and prints one instance; returns the list of failed checks."""
    failures: list[str] = []
    seed = make_seed(f"bench:{title}", ballot_digest(ballots))
    print(f"\n{title}: {len(proposals)} projects, {len(ballots):,} ballots, budget {budget.amount_minor:,}")
    plain, t_plain = timed(lambda: ours(proposals, ballots, budget, seed, completion="none"))
    report("ours mes completion=none", t_plain, f"({len(plain.selected)} projects, {plain.cost_minor:,})")
    early, t_early = timed(lambda: ours(proposals, ballots, budget, seed, completion="add1-exhaustive"))
    report("ours mes completion=add1-exhaustive", t_early,
           f"({len(early.selected)} projects, {early.cost_minor:,}, {early.summary['runs']} runs)")
    official, t_official = timed(lambda: ours(proposals, ballots, budget, seed, completion="add1"))
    report("ours mes completion=add1 (official)", t_official,
           f"({len(official.selected)} projects, {official.cost_minor:,}, {official.summary['runs']} runs)")
    peak = peak_mb(lambda: ours(proposals, ballots, budget, seed, completion="add1"))
    print(f"  {'ours peak memory (tracemalloc, add1)':<46} {peak:9.1f} MB"
          f"  [target < {TARGET_PEAK_MB} MB: {'ok' if peak < TARGET_PEAK_MB else 'MISSED'}]")
    if peak >= TARGET_PEAK_MB:
        failures.append(f"{title}: peak memory {peak:.1f} MB")
    if targets:
        ok = t_official < TARGET_WIELICZKA_ADD1_S
        print(f"  target: official add1 < {TARGET_WIELICZKA_ADD1_S} s: {'ok' if ok else 'MISSED'}")
        if not ok:
            failures.append(f"{title}: official add1 took {t_official:.3f} s")
    for mode in pabutools_modes:
        increment = 1 if mode == "add1-exhaustive" else None
        ours_result, ours_seconds = (early, t_early) if increment else (plain, t_plain)
        selected, seconds = pabutools_mes(proposals, ballots, budget, seed, increment)
        agree = selected == set(ours_result.selected)
        ratio = seconds / ours_seconds if ours_seconds else float("inf")
        report(f"pabutools mes ({'voter_budget_increment=1' if increment else 'plain'})", seconds,
               f"-> outcomes {'agree' if agree else 'DIFFER'}; ratio pabutools/ours = {ratio:,.0f}x"
               f" [target >= {TARGET_RATIO}x: {'ok' if ratio >= TARGET_RATIO else 'MISSED'}]")
        if not agree:
            failures.append(f"{title}: pabutools {mode} outcome differs")
        if ratio < TARGET_RATIO:
            failures.append(f"{title}: {mode} ratio {ratio:.0f}x")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="synthetic instance 100 x 5,000 instead of 300 x 20,000")
    parser.add_argument("--skip-pabutools", action="store_true", help="time ours only")
    parser.add_argument("--skip-pabutools-synthetic", action="store_true", help="no pabutools on the synthetic one")
    parser.add_argument("--pabutools-synthetic-add1", action="store_true",
                        help="also run pabutools' Add1 on the synthetic instance (~10 min, ~12 GB)")
    args = parser.parse_args(argv)
    print(f"exact arithmetic: {number_type().__module__}.{number_type().__name__}; python {sys.version.split()[0]}")
    failures: list[str] = []
    path = DATA_DIR / WIELICZKA
    if path.is_file():
        election = pabulib.load(path)
        modes = [] if args.skip_pabutools else ["add1-exhaustive", "none"]
        failures += bench_instance("Wieliczka 2023", election.proposals, election.ballots, election.budget, modes,
                                   targets=True)
    else:
        print(f"\n{path} not found: Wieliczka skipped")
    size = (100, 5_000) if args.quick else (300, 20_000)
    proposals, ballots, budget = synthetic(*size)
    modes = []
    if not (args.skip_pabutools or args.skip_pabutools_synthetic):
        modes = ["none"] + (["add1-exhaustive"] if args.pabutools_synthetic_add1 else [])
        if not args.pabutools_synthetic_add1:
            print("\n(pabutools runs plain MES only on the synthetic instance; its Add1 there takes ~10 min and "
                  "~12 GB: pass --pabutools-synthetic-add1 to run it)")
    failures += bench_instance(f"synthetic {size[0]} x {size[1]:,}", proposals, ballots, budget, modes,
                               targets=False)
    print("\nchecks: " + ("all met" if not failures else "; ".join(failures)))
    return 1 if any("differs" in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
