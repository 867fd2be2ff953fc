"""Switches for the mes engine's speed paths, so tests can compare them with the plain exact path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from fundcircle.voting.rules import mes


@contextmanager
def complete_with(**options: Any) -> Iterator[None]:
    """Every tally in the block calls ``mes.complete`` with these options (``resume``, ``floats``)."""
    original = mes.complete
    mes.complete = partial(original, **options)  # type: ignore[assignment]
    try:
        yield
    finally:
        mes.complete = original  # type: ignore[assignment]


def floats_disabled() -> Any:
    """Every Add1 step runs the exact engine (no certified float runs, ``mes_float``)."""
    return complete_with(floats=False)
