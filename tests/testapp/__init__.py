"""A test-only Django app: commands the example project must not have, and test helpers."""
