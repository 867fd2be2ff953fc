"""The hash chain: canonical encoding v1 and ``hash = SHA-256(prev_hash ‖ canonical_bytes)``.

Canonical encoding v1 (reference §1.10): UTF-8 JSON, sorted keys, no whitespace, integers only,
ISO dates; the fields are exactly ``v, seq, key, kind, effective_on, reverses, postings``:

- ``v``: 1
- ``seq``: the seal's sequence number (1, 2, …, gapless)
- ``key``: the transaction's idempotency key
- ``kind``: the transaction kind
- ``effective_on``: ``YYYY-MM-DD``
- ``reverses``: the *seq* of the transaction this one reverses, or ``null``. (The seq, not the
  database id: seqs are what the published chain is made of, so anyone holding an export can
  check the link; ids are an internal detail and may have gaps.)
- ``postings``: ``[account_key, currency, amount_minor]`` triples sorted ascending (by key, then
  currency, then amount), amounts signed debit-positive.

Strings are emitted as UTF-8 (no ``\\u`` escapes for non-ASCII). For seq 1 ``prev_hash`` is empty.
A different encoding would be ``v: 2`` for *new* rows; old rows are never re-hashed.

``canonical_bytes`` is the reference implementation (``json.dumps``); ``canonical_bytes_fast``
builds the same bytes by hand for ``verify`` over millions of rows, and a test holds them equal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _encode_str  # C; what json.dumps(ensure_ascii=False) uses

ENCODING_VERSION = 1

PostingTriple = tuple[str, str, int]


def canonical_bytes(*, seq: int, key: str, kind: str, effective_on: dt.date, reverses: int | None,
                    postings: Iterable[PostingTriple]) -> bytes:
    """The canonical v1 encoding of one sealed transaction (see the module docstring)."""
    body = {
        "v": ENCODING_VERSION,
        "seq": int(seq),
        "key": key,
        "kind": kind,
        "effective_on": effective_on.isoformat(),
        "reverses": None if reverses is None else int(reverses),
        "postings": [[a, c, int(m)] for a, c, m in sorted(postings)],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_dumps = json.JSONEncoder(ensure_ascii=False).encode


def json_string(text: str) -> str:
    """``text`` as a JSON string literal exactly as ``canonical_bytes`` writes it."""
    return _dumps(text)


def canonical_bytes_fast(seq: int, key_json: str, kind_json: str, effective_on_iso: str,
                         reverses: int | None, sorted_posting_json: Sequence[str]) -> bytes:
    """Same bytes as ``canonical_bytes``, from pre-encoded parts (hot loop of ``verify``).

    ``sorted_posting_json`` are ``'["<account>","<cur>",<amount>]'`` strings in the sorted order
    of their triples.
    """
    return (
        f'{{"effective_on":"{effective_on_iso}","key":{key_json},"kind":{kind_json},'
        f'"postings":[{",".join(sorted_posting_json)}],'
        f'"reverses":{"null" if reverses is None else reverses},"seq":{seq},"v":1}}'
    ).encode("utf-8")


def sorted_posting_json(postings: Iterable[PostingTriple]) -> list[str]:
    """The ``[account_key, currency, amount_minor]`` JSON fragments of ``postings`` in canonical
    (sorted) order, as ``canonical_bytes`` and ``request_digest`` write them."""
    return [f"[{_encode_str(a)},{_encode_str(c)},{int(m)}]" for a, c, m in sorted(postings)]


def request_digest_fast(*, kind: str, effective_on_iso: str, posting_json: Sequence[str],
                        circle_id: int | None, reverses_id: int | None) -> bytes:
    """Same bytes as ``request_digest`` from pre-encoded postings (the hot path of ``post()``);
    a property test holds the two equal."""
    circle = "null" if circle_id is None else int(circle_id)
    reverses = "null" if reverses_id is None else int(reverses_id)
    body = (f'{{"circle":{circle},"effective_on":"{effective_on_iso}","kind":{_encode_str(kind)},'
            f'"postings":[{",".join(posting_json)}],"reverses":{reverses}}}')
    return hashlib.sha256(body.encode("utf-8")).digest()


def chain_hash(prev_hash: bytes | None, canonical: bytes) -> bytes:
    """SHA-256 over the previous hash (empty at seq 1) followed by the canonical bytes."""
    return hashlib.sha256((prev_hash or b"") + canonical).digest()


def request_digest(*, kind: str, effective_on: dt.date, postings: Iterable[PostingTriple],
                   circle_id: int | None = None, reverses_id: int | None = None) -> bytes:
    """SHA-256 of the canonical *request* (kind, effective date, sorted postings, the circle and
    what it reverses): two calls with the same idempotency key are the same request iff this is
    equal. Memo and actor are deliberately left out: a retry by another treasurer with a
    different note is still the same money movement."""
    body = {
        "kind": kind,
        "effective_on": effective_on.isoformat(),
        "circle": circle_id,
        "reverses": reverses_id,
        "postings": [[a, c, int(m)] for a, c, m in sorted(postings)],
    }
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).digest()
