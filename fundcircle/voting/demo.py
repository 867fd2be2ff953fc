"""This package's part of the demo circle (called by fundcircle.demo.seed_demo, after the
deliberation demo has declared its conflicts): some members have already voted in the two rounds
that are in their voting week, so the round pages show turnout, and a member who signs in (Lucía,
Priya or Amara have not voted yet) can vote in a consent round and a quadratic round right away.
The closed autumn round's ballots and tally are seeded by fundcircle/demo.py itself, before the
ledger and treasury parts that build on its awards.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fundcircle.voting import operations as ops

if TYPE_CHECKING:
    from fundcircle.demo import DemoContext

#: consent responses by member: proposal title -> "consent" | ("concern" | "objection", reason)
WINTER_BALLOTS: dict[str, dict[str, Any]] = {
    "tomasz@riverside.example": {
        "Warm Wednesdays at the community hall": "consent",
        "Homework club laptops": "consent",
        "Stairwell murals with Grundschule Nord": ("concern", "The paint must be safe for indoor stairwells; "
                                                              "please ask the housing association which they allow."),
    },
    "hannah@riverside.example": {
        "Warm Wednesdays at the community hall": "consent",
        "Homework club laptops": ("concern", "Three years of support should include replacing a broken battery."),
        "Repair café, winter season": "consent",
        "Stairwell murals with Grundschule Nord": "consent",
    },
    "mei@riverside.example": {
        "Warm Wednesdays at the community hall": "consent",
        "Repair café, winter season": "consent",
    },
    "jonas@riverside.example": {
        "Warm Wednesdays at the community hall": "consent",
        "Homework club laptops": "consent",
        "Repair café, winter season": "consent",
    },
}

#: quadratic votes by member (100 credits: v votes cost v²): proposal title -> votes
PLAY_BALLOTS: dict[str, dict[str, int]] = {
    "jonas@riverside.example": {"Board game library for the youth club": 6, "Half-term theatre workshop for children": 8},
    "yusuf@riverside.example": {"Open-air cinema night at Lindenpark": 9, "Street piano under the railway bridge": 4},
    "mei@riverside.example": {"Street piano under the railway bridge": 7, "Half-term theatre workshop for children": 7},
    "tomasz@riverside.example": {"Board game library for the youth club": 5, "Open-air cinema night at Lindenpark": 5,
                                 "Half-term theatre workshop for children": 5, "Street piano under the railway bridge": 5},
}


def seed_demo(ctx: DemoContext) -> None:
    """Cast the early ballots in the rounds that are voting now. Flushes; the caller commits."""
    _cast_all(ctx, "winter", WINTER_BALLOTS, hours_ago=20)
    _cast_all(ctx, "play", PLAY_BALLOTS, hours_ago=30)


def _cast_all(ctx: DemoContext, round_key: str, ballots: dict[str, dict[str, Any]], hours_ago: int) -> None:
    round_ = ctx.rounds.get(round_key)
    if round_ is None:
        return
    by_title = {row.title: row.id for row in ops.eligible_proposals(ctx.session, round_.id)}
    for n, (email, choices) in enumerate(ballots.items()):
        voter = ctx.users[email]
        recused = ops.recused_proposal_ids(ctx.session, round_.id, voter.id)
        ballot = {by_title[title]: value for title, value in choices.items()
                  if title in by_title and by_title[title] not in recused}
        if ballot:
            when = ctx.now - dt.timedelta(hours=hours_ago - 3 * n)
            ops.cast_ballot(ctx.session, round_, voter, ballot, when)
