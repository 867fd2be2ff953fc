"""Local fake HTTP servers for Open Collective and Stripe: used by the tests and the offline demo."""
