"""Tables of this package (built by its migration)."""
