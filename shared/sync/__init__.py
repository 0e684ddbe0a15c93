"""Layer 4: the sync engine: one target's pipeline, the fan-out, and the per-process services."""
