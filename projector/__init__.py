"""projector package (Config Ledger)."""
