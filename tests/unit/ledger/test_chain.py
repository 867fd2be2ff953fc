"""The canonical encoding v1 and the hash chain, against golden vectors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fundcircle.ledger.chain import (
    canonical_bytes,
    canonical_bytes_fast,
    chain_hash,
    json_string,
    request_digest,
    request_digest_fast,
    sorted_posting_json,
)

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "ledger_golden_v1.json"


def _golden() -> list[dict]:  # type: ignore[type-arg]
    return json.loads(GOLDEN.read_text(encoding="utf-8"))["transactions"]


def test_golden_vectors_v1() -> None:
    """The fixed mini-ledger encodes and chains to exactly the published bytes and hashes.

    If this fails, the encoding changed: old rows must keep v1; a new encoding is v2 for new rows.
    """
    prev: bytes | None = None
    entries = _golden()
    assert len(entries) >= 5
    for entry in entries:
        canon = canonical_bytes(seq=entry["seq"], key=entry["key"], kind=entry["kind"],
                                effective_on=dt.date.fromisoformat(entry["effective_on"]),
                                reverses=entry["reverses"], postings=[tuple(p) for p in entry["postings"]])
        assert canon == entry["canonical"].encode("utf-8")
        assert (prev.hex() if prev else None) == entry["prev_hash"]
        digest = chain_hash(prev, canon)
        assert digest.hex() == entry["hash"]
        assert digest == hashlib.sha256((prev or b"") + canon).digest()
        prev = digest


def test_canonical_encoding_is_compact_sorted_utf8() -> None:
    canon = canonical_bytes(seq=7, key="manual:Café", kind="contribution", effective_on=dt.date(2026, 1, 2),
                            reverses=None, postings=[("b", "EUR", -1), ("a", "EUR", 1)])
    assert canon == ('{"effective_on":"2026-01-02","key":"manual:Café","kind":"contribution",'
                     '"postings":[["a","EUR",1],["b","EUR",-1]],"reverses":null,"seq":7,"v":1}').encode()


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30)


@given(seq=st.integers(1, 10**12), key=_text, kind=_text, day=st.dates(),
       reverses=st.none() | st.integers(1, 10**9),
       postings=st.lists(st.tuples(_text, st.sampled_from(["EUR", "JPY", "KWD"]),
                                   st.integers(-(2**63) + 1, 2**63 - 1)), min_size=0, max_size=5))
def test_fast_encoder_equals_reference(seq: int, key: str, kind: str, day: dt.date, reverses: int | None,
                                       postings: list[tuple[str, str, int]]) -> None:
    """verify() uses the hand-built encoder; it must produce byte-identical output."""
    reference = canonical_bytes(seq=seq, key=key, kind=kind, effective_on=day, reverses=reverses, postings=postings)
    fast = canonical_bytes_fast(seq, json_string(key), json_string(kind), day.isoformat(), reverses,
                                [f"[{json_string(a)},\"{c}\",{m}]" for a, c, m in sorted(postings)])
    assert fast == reference


def test_request_digest_ignores_leg_order_but_not_amounts() -> None:
    day = dt.date(2026, 11, 21)
    a = request_digest(kind="award", effective_on=day, postings=[("x", "EUR", 5), ("y", "EUR", -5)])
    b = request_digest(kind="award", effective_on=day, postings=[("y", "EUR", -5), ("x", "EUR", 5)])
    c = request_digest(kind="award", effective_on=day, postings=[("x", "EUR", 6), ("y", "EUR", -6)])
    d = request_digest(kind="award", effective_on=day, postings=[("x", "EUR", 5), ("y", "EUR", -5)], circle_id=2)
    assert a == b
    assert len({a, c, d}) == 3


@given(kind=_text, day=st.dates(), circle=st.none() | st.integers(1, 10**9), reverses=st.none() | st.integers(1, 10**9),
       postings=st.lists(st.tuples(_text, st.sampled_from(["EUR", "JPY", "KWD"]),
                                   st.integers(-(2**63) + 1, 2**63 - 1)), min_size=0, max_size=5))
def test_fast_request_digest_equals_reference(kind: str, day: dt.date, circle: int | None, reverses: int | None,
                                              postings: list[tuple[str, str, int]]) -> None:
    """post() hashes requests with the hand-built encoder; stored digests were made by the
    reference, so a difference would turn every replay of an old request into a conflict."""
    reference = request_digest(kind=kind, effective_on=day, postings=postings, circle_id=circle, reverses_id=reverses)
    fast = request_digest_fast(kind=kind, effective_on_iso=day.isoformat(), posting_json=sorted_posting_json(postings),
                               circle_id=circle, reverses_id=reverses)
    assert fast == reference


def test_sorted_posting_json_feeds_the_fast_canonical_encoder() -> None:
    postings = [("b\u2028", "EUR", -1), ("a\"\\\n", "EUR", 1)]
    fast = canonical_bytes_fast(3, json_string("k"), json_string("award"), "2026-01-02", 1,
                                sorted_posting_json(postings))
    assert fast == canonical_bytes(seq=3, key="k", kind="award", effective_on=dt.date(2026, 1, 2), reverses=1,
                                   postings=postings)
