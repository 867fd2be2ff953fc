"""Declared tie-break orders, ending in a lottery seeded from public values (voting-rules.md §0)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Proposal

TIE_COMPONENTS = ("cost_asc", "cost_desc", "votes_desc", "votes_asc", "id", "lottery")


def make_seed(round_id: str | int, ballot_digest_hex: str) -> str:
    """The public seed of a round: anyone can rebuild it from the round id and the exported ballots."""
    return f"fundcircle/v1|round={round_id}|ballots={ballot_digest_hex}"


def lottery_key(seed: str, proposal_id: str) -> int:
    """L(p) = SHA-256(seed || 0x00 || UTF-8(id)) as a big-endian integer; ascending order."""
    digest = hashlib.sha256(seed.encode("utf-8") + b"\x00" + proposal_id.encode("utf-8")).digest()
    return int.from_bytes(digest, "big")


def parse_tie_order(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in str(text).split(",") if p.strip())
    bad = [p for p in parts if p not in TIE_COMPONENTS]
    if bad:
        raise ValidationError(
            f"tie_order: unknown component(s) {', '.join(bad)}; use {', '.join(TIE_COMPONENTS)}",
            field_errors={"tie_order": ["unknown component"]},
        )
    if not parts or parts[-1] != "lottery":
        parts = tuple(p for p in parts if p != "lottery") + ("lottery",)
    return parts


def tie_key_function(
    tie_order: str, seed: str, votes: Mapping[str, int] | None = None
) -> Callable[[Proposal], tuple]:
    """A sort key for proposals: smaller sorts first (wins the tie)."""
    order = parse_tie_order(tie_order)
    votes = votes or {}
    lottery_cache: dict[str, int] = {}

    def key(p: Proposal) -> tuple:
        out: list = []
        for comp in order:
            if comp == "cost_asc":
                out.append(p.cost_minor)
            elif comp == "cost_desc":
                out.append(-p.cost_minor)
            elif comp == "votes_desc":
                out.append(-votes.get(p.id, 0))
            elif comp == "votes_asc":
                out.append(votes.get(p.id, 0))
            elif comp == "id":
                out.append(p.id)
            else:
                if p.id not in lottery_cache:
                    lottery_cache[p.id] = lottery_key(seed, p.id)
                out.append(lottery_cache[p.id])
        return tuple(out)

    return key
