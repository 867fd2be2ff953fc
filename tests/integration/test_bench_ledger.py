"""bench/ledger.py still runs end to end (at toy sizes): its figures back the ledger README and the
issue notes, so a bench that rots silently would leave claims nobody can re-measure. Timings are
not checked here; the bench is not a timed test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ledger.py"


def _run(tmp_path: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH), "--workdir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_posts_with_every_layer(tmp_path: Path) -> None:
    out = _run(tmp_path, "--only", "posts", "--posts", "500", "--probe-layers")
    for line in ("anchor: raw sqlite3 insert+commit", "post() via public API", "floor: the posts' SQL alone",
                 "ratio <= 12.4x", "post(), 10 per commit",
                 "anchor: one-row insert + commit", "the posts' SQL from sqlite3",
                 "partial unique indexes (bench-only)", "2 KB pages (bench-only)",
                 "+ SQLAlchemy Connection begin/commit", "+ ORM Session begin/commit instead",
                 "post() on a Connection (bench-only shim)", "post() + session.commit() (the target)"):
        assert line in out, f"{line!r} missing from:\n{out}"
    assert "verify (" not in out


def test_verify_small_ledger(tmp_path: Path) -> None:
    out = _run(tmp_path, "--only", "verify", "--transactions", "2000")
    assert "anchor: bare SHA-256 chain + scan" in out
    assert "verify() full recompute + invariants" in out
    assert "target <= 2x" in out
