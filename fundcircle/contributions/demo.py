"""This package's part of the demo circle (called by fundcircle.demo.seed_demo)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fundcircle.demo import DemoContext


def seed_demo(ctx: DemoContext) -> None:
    """Nothing yet: filled in by the package's own work."""
