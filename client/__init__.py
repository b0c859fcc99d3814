"""client package (Config Ledger)."""
