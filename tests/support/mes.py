"""Switches for the mes engine's speed paths, so tests can compare them with the plain exact path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from fundcircle.voting.rules import mes


@contextmanager
def floats_disabled() -> Iterator[None]:
    """Every Add1 step runs the exact engine (no certified float runs, ``mes_float``)."""
    original = mes.complete
    mes.complete = partial(original, floats=False)  # type: ignore[assignment]
    try:
        yield
    finally:
        mes.complete = original  # type: ignore[assignment]
