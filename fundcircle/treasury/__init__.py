"""Treasury: Open Collective payouts, reconciliation and the treasurer's dashboard."""
