"""fundcircle: a participatory micro-grant engine."""
