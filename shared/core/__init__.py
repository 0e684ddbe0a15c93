"""Layer 1: the product's vocabulary (config, errors, results, retry, redaction, logs). Imports nothing above it."""
