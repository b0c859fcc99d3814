"""api package (Config Ledger)."""
