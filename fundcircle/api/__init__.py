"""Read-only JSON API (/api/v1) and open-data downloads."""
