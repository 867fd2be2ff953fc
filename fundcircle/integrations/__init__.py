"""Clients for outside services (Open Collective, Stripe); local fake servers live in ``fakes``."""
