"""Turning outside records (Stripe events, Open Collective activity) into ledger transactions."""
