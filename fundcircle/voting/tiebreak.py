"""Declared tie-break orders, ending in a lottery seeded from public values (voting-rules.md §0)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
    # the lottery hashes the seed's prefix once; each id then costs a copy and one update
    prefix = hashlib.sha256(seed.encode("utf-8") + b"\x00")
    lottery_cache: dict[str, int] = {}

    def lottery(p: Proposal) -> int:
        found = lottery_cache.get(p.id)
        if found is None:
            digest = prefix.copy()
            digest.update(p.id.encode("utf-8"))
            found = lottery_cache[p.id] = int.from_bytes(digest.digest(), "big")
        return found

    component: dict[str, Callable[[Proposal], Any]] = {
        "cost_asc": lambda p: p.cost_minor,
        "cost_desc": lambda p: -p.cost_minor,
        "votes_desc": lambda p: -votes.get(p.id, 0),
        "votes_asc": lambda p: votes.get(p.id, 0),
        "id": lambda p: p.id,
        "lottery": lottery,
    }
    parts = [component[comp] for comp in order]
    if order == ("cost_asc", "votes_desc", "lottery"):  # the default order, without a loop per key
        get = votes.get

        def key(p: Proposal) -> tuple:
            return (p.cost_minor, -get(p.id, 0), lottery(p))
    else:
        def key(p: Proposal) -> tuple:
            return tuple([part(p) for part in parts])

    return key


# --- ballot digest (voting-rules.md §0: the seed's "hex SHA-256 of the canonical ballot export") ---

BALLOT_DIGEST_VERSION = "fundcircle-ballots/v1"


def canonical_ballot_line(value: object) -> str:
    """One ballot's canonical text. The encoding, version ``fundcircle-ballots/v1``, is:

    * approval (a set of ids): ``A`` + JSON list of the ids, sorted;
    * ranking (a tuple, best first): ``R`` + JSON list in ballot order;
    * points / scores / allocation (id -> int): ``M`` + JSON list of ``[id, value]`` sorted by id;
    * consent (id -> ConsentResponse): ``C`` + JSON list of ``[id, response, reason, resolved]`` by id.

    JSON is written with ``ensure_ascii=False`` and separators ``(",", ":")``. Voter ids are not part
    of it: exports use fresh anonymous ids, and the digest must not depend on them.
    """
    import json

    def dump(obj: object) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    if isinstance(value, (set, frozenset)):
        return "A" + dump(sorted(str(v) for v in value))
    if isinstance(value, (tuple, list)):
        return "R" + dump([str(v) for v in value])
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        if items and hasattr(items[0][1], "response"):
            return "C" + dump([[str(k), getattr(v.response, "value", str(v.response)), v.reason, bool(v.resolved)]
                               for k, v in items])
        return "M" + dump([[str(k), int(v)] for k, v in items])
    raise TypeError(f"cannot encode a ballot value of type {type(value).__name__}")


def ballot_digest(ballots: Iterable[object]) -> str:
    """Hex SHA-256 over the canonical ballot export: the version line, then one canonical line per
    ballot (:func:`canonical_ballot_line`), the lines sorted so ballot order does not matter, each
    ending in ``\\n``, all UTF-8. Accepts ``Ballot`` objects or bare ballot values."""
    lines = sorted(canonical_ballot_line(getattr(b, "value", b)) for b in ballots)
    payload = BALLOT_DIGEST_VERSION + "\n" + "".join(line + "\n" for line in lines)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
