"""Contributions: money into a circle's pot through Stripe Checkout, and Stripe's webhooks."""
