"""Ballots between three shapes: what a member sends, the rows we store, the values rules read.

* ``normalise_choices(kind, choices)`` turns what a form or caller gives (proposal ids as int or
  str, consent answers as strings, tuples or ``ConsentResponse``) into the rule-side value of
  ``fundcircle.voting.base.Ballot`` for that ``BallotKind`` (proposal ids as ``str``);
* ``items_from_value`` / ``value_from_items`` convert that value to ``ballot_items`` rows and
  back, losslessly (unit-tested round trips);
* receipt codes: a fresh random code per cast, shown once; only its SHA-256 is stored, and the
  public receipt id printed in the published ballot list is derived from that hash;
* ``export_ballots(session, round_)``: the anonymous, canonically ordered ballots a round is
  tallied from — the same list the close digests and anyone can re-tally.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from fundcircle.errors import ValidationError
from fundcircle.voting.base import Ballot, BallotKind, ConsentKind, ConsentResponse
from fundcircle.voting.tiebreak import canonical_ballot_line

#: kinds that store one integer per proposal in ``ballot_items.value``
INT_MAPPING_KINDS = frozenset({BallotKind.POINTS, BallotKind.SCORES, BallotKind.ALLOCATION})

#: the receipt code's random part: 20 base32 characters = 100 bits, shown as 5 groups of 4
RECEIPT_CODE_CHARS = 20
#: characters of the receipt hash published as the public receipt id (64 bits)
PUBLIC_RECEIPT_ID_CHARS = 16


@dataclass(frozen=True)
class ItemData:
    """One ``ballot_items`` row, before it has a ballot id."""

    proposal_id: int
    value: int | None = None
    response: str | None = None
    reason: str = ""


# -- ids ------------------------------------------------------------------------------------------

def _proposal_key(raw: Any, field: str = "ballot") -> str:
    """A proposal id as rules see it: the decimal string of the database id."""
    if isinstance(raw, bool):
        raise ValidationError("a proposal id must be a number", field_errors={field: ["not a proposal id"]})
    text = str(raw).strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValidationError(f"{raw!r} is not a proposal id", field_errors={field: ["not a proposal id"]})
    return str(int(text))


def _int_value(raw: Any, proposal_id: str) -> int:
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ValidationError("whole numbers only", field_errors={proposal_id: ["a whole number, please"]})
    try:
        return int(str(raw).strip()) if not isinstance(raw, int) else raw
    except ValueError:
        raise ValidationError(f"{raw!r} is not a whole number",
                              field_errors={proposal_id: ["a whole number, please"]}) from None


def _consent_value(raw: Any, proposal_id: str) -> ConsentResponse:
    if isinstance(raw, ConsentResponse):
        return ConsentResponse(raw.response, raw.reason.strip(), raw.resolved)
    reason = ""
    if isinstance(raw, Mapping):
        kind_raw, reason = raw.get("response"), str(raw.get("reason") or "")
    elif isinstance(raw, (tuple, list)) and 1 <= len(raw) <= 2:
        kind_raw, reason = raw[0], str(raw[1]) if len(raw) == 2 else ""
    else:
        kind_raw = raw
    try:
        kind = ConsentKind(getattr(kind_raw, "value", kind_raw))
    except ValueError:
        raise ValidationError(f"{kind_raw!r} is not consent, concern or objection",
                              field_errors={proposal_id: ["choose consent, concern or objection"]}) from None
    return ConsentResponse(kind, reason.strip())


# -- choices -> rule value -------------------------------------------------------------------------

def normalise_choices(kind: BallotKind | str, choices: Any) -> Any:
    """The rule-side ballot value for ``kind`` from what a member sent.

    Args:
        kind: the rule's ballot kind.
        choices: approval: an iterable of proposal ids; points/scores/allocation: a mapping
            proposal id -> int; ranking: a sequence of proposal ids, best first; consent: a mapping
            proposal id -> ConsentResponse | "consent"/"concern"/"objection" | (response, reason)
            | {"response": ..., "reason": ...}. Proposal ids may be ints or decimal strings.

    Returns:
        frozenset[str] / dict[str, int] / tuple[str, ...] / dict[str, ConsentResponse].

    Raises:
        ValidationError: wrong shape, a malformed id, a duplicate in a ranking, a kind that takes
            no ballot. Meaning (limits, budgets, reasons required) is the rule's job.
    """
    kind = BallotKind(kind)
    if kind is BallotKind.APPROVAL:
        if isinstance(choices, (str, bytes, Mapping)) or not isinstance(choices, Iterable):
            raise ValidationError("an approval ballot is a set of proposals")
        return frozenset(_proposal_key(c) for c in choices)
    if kind is BallotKind.RANKING:
        if isinstance(choices, (str, bytes, Mapping, set, frozenset)) or not isinstance(choices, Iterable):
            raise ValidationError("a ranking is an ordered list of proposals")
        ranked = tuple(_proposal_key(c) for c in choices)
        if len(set(ranked)) != len(ranked):
            raise ValidationError("each proposal may appear only once in a ranking",
                                  field_errors={"ballot": ["a proposal is ranked twice"]})
        return ranked
    if kind is BallotKind.NONE:
        raise ValidationError("this round's rule takes no ballot")
    if not isinstance(choices, Mapping):
        raise ValidationError(f"a {kind.value} ballot maps proposals to answers")
    out: dict[str, Any] = {}
    for raw_id, raw_value in choices.items():
        key = _proposal_key(raw_id)
        if key in out:
            raise ValidationError("a proposal appears twice", field_errors={key: ["given twice"]})
        out[key] = _consent_value(raw_value, key) if kind is BallotKind.CONSENT else _int_value(raw_value, key)
    return out


def proposal_ids_of(value: Any) -> set[str]:
    """The proposal ids a rule-side ballot value mentions."""
    if isinstance(value, Mapping):
        return set(value)
    return set(value)


# -- rule value <-> rows ---------------------------------------------------------------------------

def items_from_value(kind: BallotKind | str, value: Any) -> list[ItemData]:
    """The ``ballot_items`` rows of a normalised ballot value (see ``normalise_choices``)."""
    kind = BallotKind(kind)
    if kind is BallotKind.APPROVAL:
        return [ItemData(int(pid), value=1) for pid in sorted(value, key=int)]
    if kind is BallotKind.RANKING:
        return [ItemData(int(pid), value=position) for position, pid in enumerate(value, start=1)]
    if kind is BallotKind.CONSENT:
        return [ItemData(int(pid), response=resp.response.value, reason=resp.reason)
                for pid, resp in sorted(value.items(), key=lambda kv: int(kv[0]))]
    if kind in INT_MAPPING_KINDS:
        return [ItemData(int(pid), value=int(v)) for pid, v in sorted(value.items(), key=lambda kv: int(kv[0]))]
    raise ValidationError(f"ballot kind {kind.value!r} has no items")


@functools.lru_cache(maxsize=65536)
def _id_text(proposal_id: int) -> str:
    """One string object per proposal id: a tally's thousands of ballots then share it, and grouping
    identical ballots compares strings by identity instead of character by character."""
    return str(proposal_id)


def value_from_items(kind: BallotKind | str, items: Iterable[Any]) -> Any:
    """The rule-side ballot value of stored items (objects with proposal_id, value, response, reason)."""
    kind = BallotKind(kind)
    rows = list(items)
    if kind is BallotKind.APPROVAL:
        return frozenset(_id_text(r.proposal_id) for r in rows)
    if kind is BallotKind.RANKING:
        return tuple(_id_text(r.proposal_id) for r in sorted(rows, key=lambda r: r.value))
    if kind is BallotKind.CONSENT:
        return {_id_text(r.proposal_id): ConsentResponse(ConsentKind(r.response), r.reason or "") for r in rows}
    if kind in INT_MAPPING_KINDS:
        return {_id_text(r.proposal_id): int(r.value) for r in rows}
    raise ValidationError(f"ballot kind {kind.value!r} has no items")


def without_proposals(value: Any, excluded: set[str]) -> Any:
    """``value`` with the given proposal ids left out (a ranking keeps its order)."""
    if not excluded:
        return value
    if isinstance(value, frozenset):
        return frozenset(v for v in value if v not in excluded)
    if isinstance(value, tuple):
        return tuple(v for v in value if v not in excluded)
    return {k: v for k, v in value.items() if k not in excluded}


# -- receipts --------------------------------------------------------------------------------------

def new_receipt_code() -> str:
    """A fresh receipt code, e.g. ``K7QF-3M2X-PA9D-W4LE-7HNC`` (100 random bits)."""
    raw = base64.b32encode(secrets.token_bytes(15)).decode("ascii")[:RECEIPT_CODE_CHARS]
    return "-".join(raw[i:i + 4] for i in range(0, RECEIPT_CODE_CHARS, 4))


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def receipt_hash(code: str) -> str:
    """SHA-256 hex of a receipt code (what the database stores); dashes and case do not matter."""
    return hashlib.sha256(("fundcircle-receipt/v1|" + _normalise_code(code)).encode("ascii")).hexdigest()


def public_receipt_id(receipt_hash_hex: str) -> str:
    """The id printed next to a ballot in the published list: a prefix of the stored hash.

    A voter finds their ballot with ``public_receipt_id(receipt_hash(code))``; the code has 100
    random bits, so the published prefix does not let anyone recover it.
    """
    return receipt_hash_hex[:PUBLIC_RECEIPT_ID_CHARS]


# -- export ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportedBallot:
    """One anonymous ballot of a round as published: receipt id and the rule-side ballot."""

    receipt_id: str
    ballot: Ballot


def export_ballots(session: Session, round_id: int, *, kind: BallotKind | str,
                   allowed_proposal_ids: set[str], recused: Mapping[str, set[str]] | None = None
                   ) -> list[ExportedBallot]:
    """The round's stored ballots as anonymous rule ``Ballot``s, in canonical order.

    Items for proposals outside ``allowed_proposal_ids`` (withdrawn or screened out after the cast)
    and, as a second line behind the database trigger, for proposals the voter is recused from
    (``recused``: voter user id as str -> proposal ids) are left out. Ballots are ordered by their
    canonical line (then receipt hash) and numbered ``v1``, ``v2``…, so neither database ids nor
    casting order leak, and the order is reproducible from the published list.

    Reads only; flushes nothing.
    """
    from fundcircle.voting.models import BallotItem, StoredBallot

    b, i = StoredBallot.__table__, BallotItem.__table__
    rows = session.execute(
        sa.select(b.c.id, b.c.voter_id, b.c.receipt_hash, i.c.proposal_id, i.c.value, i.c.response, i.c.reason)
        .select_from(b.outerjoin(i, i.c.ballot_id == b.c.id))
        .where(b.c.round_id == round_id)
        .order_by(b.c.id, i.c.id)
    ).all()
    grouped: dict[int, tuple[int, str, list[Any]]] = {}
    for row in rows:
        entry = grouped.setdefault(row.id, (row.voter_id, row.receipt_hash, []))
        if row.proposal_id is not None:
            entry[2].append(row)
    recused = recused or {}
    keyed: list[tuple[str, str, Any]] = []
    # identical immutable values (approval sets, rankings) are shared, one object per canonical line:
    # a tally groups identical ballots, and then compares them by identity, not element by element
    shared: dict[str, Any] = {}
    for voter_id, hash_hex, items in grouped.values():
        value = value_from_items(kind, items)
        excluded = (proposal_ids_of(value) - allowed_proposal_ids) | recused.get(str(voter_id), set())
        value = without_proposals(value, excluded & proposal_ids_of(value))
        line = canonical_ballot_line(value)
        if isinstance(value, (frozenset, tuple)):
            value = shared.setdefault(line, value)
        keyed.append((line, hash_hex, value))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [ExportedBallot(public_receipt_id(h), Ballot(f"v{n}", value))
            for n, (_line, h, value) in enumerate(keyed, start=1)]


def rule_ballots(exported: Sequence[ExportedBallot]) -> list[Ballot]:
    return [e.ballot for e in exported]
