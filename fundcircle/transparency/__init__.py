"""Transparency pages: what each circle decided, why, and where every unit of money went (no login)."""
