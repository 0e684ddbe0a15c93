"""Layer 3: the per-target push ledger (ordering and the record of what was pushed)."""
